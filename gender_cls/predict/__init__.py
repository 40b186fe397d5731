"""Scoring images with a trained model: the `Predictor`, runners (Keras, LiteRT, ONNX), the input
spec, TTA, Grad-CAM, annotation, export and the Ray batch engine."""
