"""gender_cls: Keras 3 transfer learning for image classification (gender of faces by default)."""

__version__ = "0.1.0"
