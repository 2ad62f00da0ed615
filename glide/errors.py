"""The one exception type that user-facing code raises for bad input; the CLI prints it as one line."""


class GlideError(Exception):
    """A problem the user can fix (bad argument, missing file, incompatible checkpoint)."""
