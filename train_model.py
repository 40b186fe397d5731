#!/usr/bin/env python
"""Train an image classifier: `python train_model.py --help`."""

from gender_cls.cli import train_command

if __name__ == "__main__":
    train_command()
