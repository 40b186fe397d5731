"""Face verification: the embedding model and its losses, training it, the `Verifier` (load, enrol
a gallery, match) and its evaluation."""
