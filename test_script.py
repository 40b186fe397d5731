#!/usr/bin/env python
"""Evaluate a trained model on a labelled test folder: `python test_script.py --help`."""

from gender_cls.cli import evaluate_command

if __name__ == "__main__":
    evaluate_command()
