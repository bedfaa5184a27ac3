class Conflict(Exception):
    """A write that contradicts stored state (the last admin, an action in use): HTTP 409."""

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
