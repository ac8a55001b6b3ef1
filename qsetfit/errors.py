"""The one error type qsetfit raises at its boundaries."""


class QSetFitError(ValueError):
    """A problem the user can fix: the message names the argument, the value and the fix."""
