"""`python -m gender_cls train|evaluate|predict|export`."""

from gender_cls.cli import main

main()
