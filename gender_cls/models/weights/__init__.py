"""Readers of foreign weight files (PyTorch pickles, dlib `.dat`) and the code that ports them into
built Keras networks, apart from the builders."""
