"""The one exception type for user mistakes.

Anything raised as a :class:`GrokpipeError` is the user's to fix (a bad value, a missing or
foreign file). The CLI prints it as one line and exits 2; every other exception is a bug and
keeps its traceback.
"""


class GrokpipeError(Exception):
    """A mistake in what the user asked for, reported as one line."""
