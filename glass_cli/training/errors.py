"""The trainer's one error type."""

from glass_cli.errors import GlassError


class TrainError(GlassError):
    """A run that cannot start or continue; one line naming the file and the reason."""
