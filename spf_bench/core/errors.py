"""User-facing errors.

Every failure a user can cause (bad input, absent weights, unknown names) is raised as an
:class:`SpfError` whose message is one sentence naming the culprit. The command-line
entry points print that sentence and exit non-zero instead of showing a stack trace.
"""


class SpfError(Exception):
    """An error caused by the user's input or environment, explained in one sentence."""


class WeightsMissingError(SpfError):
    """Weights a network needs are not on disk."""


class WeightsCorruptError(SpfError):
    """A weights file exists but cannot be read as the network's checkpoint."""
