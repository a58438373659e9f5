"""Atomic file writes and checksums: a crash never leaves a half-written file."""

import contextlib
import hashlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path beside `path`; renames it onto `path` on success.

    Args:
        path: the final file path.
        suffix: ending for the temporary file (Keras insists on `.keras`).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make the result private
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path, data):
    """Writes `data` (bytes) to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path, text):
    """Writes `text` (UTF-8) to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj):
    """Writes `obj` as indented JSON to `path` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_save_model(model, path):
    """Saves a Keras model to `path` (`.keras`) atomically."""
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


def sha256_file(path, chunk_size=1 << 20):
    """Returns the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def config_objects(config):
    """Yields every serialized object (a dict with a class_name) inside a Keras config, as a
    `.keras` file's config.json holds it (read without importing Keras)."""
    if isinstance(config, dict):
        if "class_name" in config:
            yield config
        for value in config.values():
            yield from config_objects(value)
    elif isinstance(config, list):
        for value in config:
            yield from config_objects(value)
