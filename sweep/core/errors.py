class SweepError(Exception):
    """A user-facing error: the CLI prints its one-line message and exits with code 2."""
