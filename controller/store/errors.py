"""The store's own error."""


class StoreError(LookupError):
    """A record the caller named does not exist, or cannot change as asked."""
