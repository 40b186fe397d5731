"""Evaluating a model on a labelled folder: computing the figures, writing their files, the HTML
report, fairness by group and recalibration."""
