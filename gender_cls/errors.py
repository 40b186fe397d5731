"""The error type for bad input: the CLI prints its one-line message and exits with code 2."""


class UserError(ValueError):
    """Bad input from the user; the message names the path or option and the fix."""
