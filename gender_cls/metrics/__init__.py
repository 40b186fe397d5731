"""Numbers from scores: classification metrics, the threshold sweep and temperature calibration
(NumPy and scikit-learn only)."""
