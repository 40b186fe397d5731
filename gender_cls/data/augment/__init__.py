"""Changing images: shared geometry, augmentation in the tf.data pipeline and inside the model, and
the probe distortions."""
