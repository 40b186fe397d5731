"""Training a classifier: the run and its folder, phases, inputs, checks before work, callbacks,
the feature cache, recipes and option precedence, the LR finder, tf.distribute and JAX
processes."""
