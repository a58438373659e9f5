"""The error kerascnn raises for a user's mistake: the command line prints it as one line."""


class InputError(ValueError):
    """A value, file or folder given to kerascnn is wrong; the message names it and the fix.

    Every error kerascnn raises for bad input is one (DataError, RunFolderError, StudyError,
    TransferError, ... subclass it). It is a ValueError, so `except ValueError` catches it; the
    command line prints it as one line, while any other exception is a bug and keeps its
    traceback.
    """


class InputTypeError(InputError, TypeError):
    """An argument of the wrong type (an InputError that is also a TypeError)."""
