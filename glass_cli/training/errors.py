"""The trainer's one error type."""


class TrainError(Exception):
    """A run that cannot start or continue; one line naming the file and the reason."""
