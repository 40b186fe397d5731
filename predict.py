#!/usr/bin/env python
"""Predict images with a trained model: `python predict.py --help`."""

from gender_cls.cli import predict_command

if __name__ == "__main__":
    predict_command()
