"""The errors the data package raises for data a user can fix: each a `ValueError`."""

import contextlib
import re

import tensorflow as tf

from kerascnn.errors import InputError

# The end of the message of a streamed file that changed (`streaming.read_file`).
CHANGED = (" changed or was deleted after its folder was loaded: load the folder again "
           "(kerascnn.data.load) to read its files as they are now.")


class DataError(InputError):
    """Data that cannot be read as asked; the message names the file or folder and the fix."""


class CacheError(DataError):
    """A `cache=` folder that kerascnn may not write: a file, or one holding foreign files."""


class FileChangedError(DataError):
    """A streamed image file deleted or changed after its folder was loaded."""


def file_error(error):
    """Returns the `FileChangedError` a pipeline error stands for, or None.

    Args:
        error: an exception raised while iterating a streamed folder's pipeline.
    """
    if not isinstance(error, tf.errors.OpError):
        return None
    message = error.message
    changed = re.search(r"\[([^\[\]\n]*?" + re.escape(CHANGED[:40]) + r"[^\]\n]*)\]", message)
    if changed:
        return FileChangedError(changed.group(1))
    end = message.find("; No such file or directory")
    if isinstance(error, tf.errors.NotFoundError) and end > 0:
        # "{{function_node ...}} [Error in ... with iterator: Iterator::Root::Map: ]<path>"
        path = message[:end].splitlines()[-1].rsplit("}} ", 1)[-1]
        return FileChangedError(re.sub(r"^.*?Iterator::[\w:]+: ", "", path) + CHANGED)
    return None


@contextlib.contextmanager
def reading_files():
    """Turns the error of a streamed file deleted or changed after loading into one line.

    Wrap what iterates a streamed folder's pipeline (`model.fit`, `model.predict`, a loop):
    TensorFlow's error, which names the file deep inside a long message, is raised again as
    a `FileChangedError` (a ValueError) that names it and says to load the folder again.
    Other errors pass unchanged.
    """
    try:
        yield
    except tf.errors.OpError as error:
        changed = file_error(error)
        if changed is None:
            raise
        raise changed from None
