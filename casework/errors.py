"""One rooted hierarchy for everything the domain refuses."""


class CaseworkError(Exception):
    """Root of the domain's errors; the message is one line for the user."""


class InvalidInput(CaseworkError):
    """A request, catalog or divisions file that cannot be taken as it is."""


class IllegalTransition(CaseworkError):
    """A change the case's state machine does not allow (or one made by a non-owner)."""
