"""One rooted hierarchy for everything the domain refuses."""


class CaseworkError(Exception):
    """Root of the domain's errors; the message is one line for the user, in English (logs,
    the command lines). ``code`` names the refusal for an edge that words it in the user's
    language (the messages catalog's ``refusal.CODE``), filled in from ``fields``; "" where no
    edge words it yet."""

    def __init__(self, message: str, code: str = "", **fields: object) -> None:
        super().__init__(message)
        self.code = code
        self.fields = fields


class InvalidInput(CaseworkError):
    """A request, catalog or divisions file that cannot be taken as it is."""


class IllegalTransition(CaseworkError):
    """A change the case's state machine does not allow (or one made by a non-owner)."""
