"""Run folders: a folder kerascnn writes, locked while in use, owning only the files it wrote.

A run folder lists every file and subfolder kerascnn wrote in a small
manifest, `.kerascnn-run.json` (its kind and its files). kerascnn deletes or overwrites only
what that list holds, refuses a folder holding anything else, and resolves every path it reads
from the folder inside it. A subfolder handed to a library (TensorBoard's logs) is claimed with
the name patterns of the files that library writes: only those are kerascnn's, at any depth. While in use, the folder is locked with an exclusive `fcntl.flock`
on `.kerascnn-run.lock` (the file holds the holder's pid): the kernel drops the lock when its
process dies, so a lock left by a killed run is simply taken over.
"""

import contextlib
import errno
import fcntl
import fnmatch
import json
import os
import re
import shutil

from kerascnn.errors import InputError
from kerascnn.files import atomic_save_model, atomic_write_json, atomic_write_text

MANIFEST = ".kerascnn-run.json"
LOCK = ".kerascnn-run.lock"
KINDS = ("train", "search", "finetune", "evaluation")
MANIFEST_FORMAT = 1
# Leftovers of kerascnn.files.atomic_path: mkstemp's ".tmp-" + 8 random characters (+ suffix).
TEMPORARY = re.compile(r"^\.tmp-[A-Za-z0-9_]{8}(\.[A-Za-z0-9]+)?$")
SHOWN = 5  # foreign entries named in an error
COUNTED = 100  # foreign files counted before the walk stops (`--out /` answers at once)
# The files TensorBoard's writers put into a log folder (any depth): event files.
TENSORBOARD_FILES = ("events.out.tfevents.*",)


class RunFolderError(InputError):
    """A run folder that cannot be used as asked; the message names the folder, why, and the fix."""


class RunFolder:
    """A folder kerascnn writes: locked while in use, owning only the files it wrote.

    It holds only files kerascnn wrote and lists them; it never deletes or overwrites
    anything else, and every path read from it stays inside it.

    Use it as a context manager:

    ```python
    with RunFolder("runs/lenet5", "train") as run:
        run.write_json("run.json", {...})
        path = run.claim("checkpoints/epoch-1.keras")  # then write `path` atomically
    ```

    Args:
        path: the folder; created when missing. It must be empty, missing, or a run folder
            of the same kind that kerascnn wrote.
        kind: "train", "search", "finetune" or "evaluation".
        exclusive: take the folder's lock (default). False takes none, for the workers of a
            distributed search, which write only into child folders of their own.

    Raises:
        RunFolderError: (on entering) a folder locked by a live process, holding files kerascnn
            did not write, holding a run of another kind, or not writable.
    """

    def __init__(self, path, kind, *, exclusive=True):
        if kind not in KINDS:
            raise InputError(f"run folder kind must be one of {', '.join(KINDS)}; got {kind!r}.")
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise RunFolderError(f"a run folder needs a path; got {path!r}.")
        self.path = os.path.abspath(os.fspath(path))
        self.kind = kind
        self.exclusive = bool(exclusive)
        self._files = set()
        self._delegated = {}
        self._lock_fd = None
        self._entered = False
        self._created = []

    def __repr__(self):
        return f"RunFolder({self.path!r}, {self.kind!r})"

    # -- entering and leaving -------------------------------------------------------------

    def __enter__(self):
        if self._entered:
            raise RunFolderError(f"run folder {self.path} is already in use by this object.")
        if os.path.lexists(self.path) and not os.path.isdir(self.path):
            raise RunFolderError(f"{self.path} is a file, not a folder; choose another --out.")
        if not os.path.exists(os.path.join(self.path, LOCK)):
            # Never a kerascnn folder: refuse it before writing anything into it.
            self._read_manifest()
            self._check_foreign()
        self._created = _missing_folders(self.path)
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as error:
            raise RunFolderError(f"cannot create run folder {self.path}: {error.strerror}; "
                                 "choose a writable --out.") from None
        if self.exclusive:
            self._lock()
        try:
            self._read_manifest()
            self._check_foreign()
            if self.exclusive:
                self._clean_temporary()
            if not os.path.exists(os.path.join(self.path, MANIFEST)):
                self._update_manifest()
        except BaseException:
            self._unlock()
            raise
        self._entered = True
        return self

    def __exit__(self, error_type, *exc):
        self._entered = False
        if error_type is not None and self._created and not self._files:
            self._remove_skeleton()  # a command refused before writing leaves no folder
        self._unlock()
        return False

    def _remove_skeleton(self):
        for special in (MANIFEST, LOCK):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(self.path, special))
        with contextlib.suppress(OSError):
            for folder in self._created:  # deepest first: the folders entering made
                os.rmdir(folder)

    def _lock(self):
        lock_path = os.path.join(self.path, LOCK)
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise RunFolderError(f"cannot write in run folder {self.path}: {error.strerror}; "
                                 "choose a writable --out.") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunFolderError(
                f"run folder {self.path} is in use by another kerascnn process (pid {holder}); "
                "wait for it to finish or choose another --out.") from None
        # Any earlier pid is of a dead process: the kernel released its lock.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _unlock(self):
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # -- the manifest ---------------------------------------------------------------------

    def _read_manifest(self):
        path = os.path.join(self.path, MANIFEST)
        if not os.path.exists(path):
            self._files, self._delegated = set(), {}
            return
        try:
            with open(path, encoding="utf-8") as f:
                manifest = json.load(f)
            kind, files = manifest["kind"], manifest["files"]
            delegated = manifest.get("delegated", {})
            if not isinstance(files, list) or not all(isinstance(f, str) for f in files) \
                    or not isinstance(delegated, dict) or not all(
                        isinstance(p, list) and all(isinstance(x, str) for x in p)
                        for p in delegated.values()):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError):
            raise RunFolderError(
                f"run folder {self.path} has an unreadable manifest {MANIFEST}; delete the "
                "folder or choose another --out.") from None
        if kind != self.kind:
            raise RunFolderError(
                f"{self.path} holds a {kind} run, not a {self.kind} run; choose another --out.")
        # A manifest is data read from disk: keep only entries that stay inside the folder.
        self._files = {_normalise(f) for f in files if _is_inside_name(f)}
        self._delegated = {_normalise(f): tuple(p) for f, p in delegated.items()
                           if _normalise(f) in self._files}

    def _update_manifest(self, add=(), discard=(), delegate=None):
        """Rewrites the manifest atomically, merged with the copy on disk under a folder lock
        (processes sharing a non-exclusive folder claim their children concurrently);
        `delegate` maps added folders to the name patterns of their files."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            on_disk, delegated = set(), {}
            if os.path.exists(os.path.join(self.path, MANIFEST)):
                self._read_manifest()
                on_disk, delegated = self._files, self._delegated
            self._files = (on_disk | set(add)) - set(discard)
            self._delegated = {name: patterns
                               for name, patterns in {**delegated, **(delegate or {})}.items()
                               if name in self._files}
            manifest = {"kerascnn_run_folder": MANIFEST_FORMAT, "kind": self.kind,
                        "files": sorted(self._files)}
            if self._delegated:
                manifest["delegated"] = {k: list(v) for k, v in sorted(self._delegated.items())}
            atomic_write_json(os.path.join(self.path, MANIFEST), manifest)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # -- what the folder holds ------------------------------------------------------------

    def _walk(self):
        """Yields (relative path, is_folder) of every entry, not descending into owned folders
        (but for delegated ones) or symbolic links."""
        if not os.path.isdir(self.path):
            return
        stack = [""]
        while stack:
            folder = stack.pop()
            with os.scandir(os.path.join(self.path, folder)) as entries:
                for entry in entries:
                    relative = f"{folder}/{entry.name}" if folder else entry.name
                    is_folder = entry.is_dir(follow_symlinks=False)
                    yield relative, is_folder
                    if is_folder and (not self.owns(relative) or relative in self._delegated):
                        stack.append(relative)

    def _foreign(self):
        foreign = []
        for relative, is_folder in self._walk():
            if relative in (MANIFEST, LOCK) or self.owns(relative):
                continue
            if is_folder:
                continue  # its contents are examined; an empty folder holds nothing to lose
            if TEMPORARY.match(os.path.basename(relative)) and self._ours_to_write(relative):
                continue  # an interrupted atomic write of ours
            foreign.append(relative)
            if len(foreign) > COUNTED:
                break
        return sorted(foreign)

    def _ours_to_write(self, relative):
        """Whether `relative` lies in a folder kerascnn writes into (the root or a folder
        holding a claimed entry)."""
        folder = os.path.dirname(relative)
        return folder == "" or any(f.startswith(folder + "/") for f in self._files)

    def _check_foreign(self):
        foreign = self._foreign()
        if foreign:  # a concurrent worker claims before it writes: read its claims once more
            self._read_manifest()
            foreign = [relative for relative in foreign if not self.owns(relative)]
        if foreign:
            more = (f"{len(foreign) - SHOWN}" if len(foreign) <= COUNTED
                    else f"over {COUNTED - SHOWN}")
            shown = ", ".join(foreign[:SHOWN]) + (f" and {more} more"
                                                 if len(foreign) > SHOWN else "")
            raise RunFolderError(
                f"{self.path} holds files kerascnn did not write ({shown}); it never overwrites "
                "or deletes them: choose an empty folder or another --out.")

    def _clean_temporary(self):
        for relative, is_folder in list(self._walk()):
            if (not is_folder and TEMPORARY.match(os.path.basename(relative))
                    and not self.owns(relative) and self._ours_to_write(relative)):
                os.remove(os.path.join(self.path, relative))

    # -- paths and files ------------------------------------------------------------------

    def path_of(self, relative):
        """Returns the absolute path of `relative` inside the folder.

        Args:
            relative: a path relative to the folder (e.g. "checkpoints/epoch-3.keras").

        Returns:
            The absolute path (str).

        Raises:
            RunFolderError: for an absolute path, one leaving the folder (".."), or one that
                resolves outside it through a symbolic link.
        """
        if not isinstance(relative, (str, os.PathLike)):
            raise RunFolderError(f"a path inside {self.path} must be a string; got {relative!r}.")
        relative = os.fspath(relative)
        if not relative or os.path.isabs(relative) or not _is_inside_name(relative):
            raise RunFolderError(
                f"{relative!r} is not a path inside run folder {self.path}; paths read from or "
                "written to a run folder must stay inside it.")
        full = os.path.join(self.path, _normalise(relative))
        root = os.path.realpath(self.path)
        resolved = os.path.realpath(full)
        if resolved != root and not resolved.startswith(root + os.sep):
            raise RunFolderError(
                f"{relative!r} in run folder {self.path} resolves to {resolved}, outside the "
                "folder (a symbolic link); paths in a run folder must stay inside it.")
        return full

    def claim(self, relative, *, delegate=None):
        """Records a file or subfolder as kerascnn's; returns its absolute path.

        Args:
            relative: the path inside the folder. A claimed subfolder is owned whole.
            delegate: for a subfolder handed to a library, the name patterns (fnmatch) of
                the files it writes there at any depth (e.g. TENSORBOARD_FILES): only those
                are kerascnn's; any other file in it is foreign.

        Returns:
            `path_of(relative)`.

        Raises:
            RunFolderError: for a path outside the folder, or the folder's own lock/manifest.
        """
        path = self.path_of(relative)
        name = _normalise(relative)
        if name in (MANIFEST, LOCK):
            raise RunFolderError(f"{name} is {self.path}'s own bookkeeping; claim another name.")
        patterns = tuple(delegate) if delegate else None
        if not self.owns(name) or (patterns and self._delegated.get(name) != patterns):
            self._update_manifest(add=[name], delegate={name: patterns} if patterns else None)
        return path

    def owns(self, relative):
        """Whether `relative` (or a folder above it) was claimed by kerascnn; inside a
        delegated folder, only files named as the library writes them."""
        if not _is_inside_name(os.fspath(relative)):
            return False
        name = _normalise(relative)
        parts = name.split("/")
        for i in range(1, len(parts) + 1):
            above = "/".join(parts[:i])
            if above in self._files:
                patterns = self._delegated.get(above)
                return (patterns is None or i == len(parts)
                        or any(fnmatch.fnmatchcase(parts[-1], p) for p in patterns))
        return False

    def read_json(self, relative):
        """The JSON file kerascnn wrote at `relative`, or {} (missing, not kerascnn's, or
        unreadable)."""
        path = self.path_of(relative)
        if not self.owns(relative) or not os.path.isfile(path):
            return {}
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def write_json(self, relative, obj):
        """Claims `relative` and writes `obj` to it as JSON, atomically."""
        atomic_write_json(self.claim(relative), obj)

    def write_text(self, relative, text):
        """Claims `relative` and writes `text` (UTF-8) to it, atomically."""
        atomic_write_text(self.claim(relative), text)

    def save_model(self, model, relative):
        """Claims `relative` (a `.keras` name) and saves `model` to it, atomically."""
        atomic_save_model(model, self.claim(relative))

    def remove(self, relative):
        """Deletes a file or subfolder kerascnn wrote and unclaims it.

        A claimed subfolder that is itself a run folder loses only what its own manifest
        lists; anything else in it stays and is reported.

        Args:
            relative: the claimed path (a missing one is only unclaimed).

        Raises:
            RunFolderError: for a path kerascnn does not own, or a child run folder still
                holding foreign files after its own files were removed.
        """
        path = self.path_of(relative)
        name = _normalise(relative)
        if not self.owns(name):
            raise RunFolderError(f"{relative!r} in {self.path} was not written by kerascnn; "
                                 "it is left as it is.")
        leftover = []
        if os.path.isdir(path) and not os.path.islink(path):
            if os.path.exists(os.path.join(path, MANIFEST)):
                leftover = _remove_child(path)
            elif name in self._delegated:
                leftover = self._remove_delegated(name)
            else:
                shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)
        self._update_manifest(discard=[f for f in self._files
                                       if f == name or f.startswith(name + "/")])
        self._prune(os.path.dirname(name))
        if leftover:
            raise RunFolderError(
                f"{path} also holds files kerascnn did not write ({', '.join(leftover[:SHOWN])}); "
                "they were left in place.")

    def clear(self):
        """Deletes every file and subfolder kerascnn wrote here (a run started over);
        nothing else."""
        owned = []
        for folder, folders, names in os.walk(self.path):
            for entry in sorted(folders) + sorted(names):
                relative = _normalise(os.path.relpath(os.path.join(folder, entry), self.path))
                if self.owns(relative):
                    owned.append(relative)
                    if entry in folders:
                        folders.remove(entry)  # removed whole
        for relative in owned:
            self.remove(relative)

    def _remove_delegated(self, name):
        """Removes the files a library wrote in delegated folder `name` and the folders left
        empty; returns the foreign files left in place."""
        root = os.path.join(self.path, name)
        leftover = []
        for folder, _, names in os.walk(root):
            for entry in names:
                relative = os.path.relpath(os.path.join(folder, entry), self.path)
                if self.owns(relative):
                    os.remove(os.path.join(folder, entry))
                else:
                    leftover.append(_normalise(relative))
        _remove_empty_folders(root)
        return sorted(leftover)

    def _prune(self, folder):
        """Removes now-empty folders above a removed entry that hold no claimed entry."""
        while folder and not self.owns(folder):
            full = os.path.join(self.path, folder)
            if any(f.startswith(folder + "/") for f in self._files):
                return
            try:
                os.rmdir(full)
            except OSError:
                return
            folder = os.path.dirname(folder)

    def child(self, relative, kind, *, exclusive=True):
        """Returns a run folder nested in this one (claimed here), not yet entered.

        Args:
            relative: the child's path inside this folder (e.g. "trials/3").
            kind: the child's kind.
            exclusive: whether entering the child takes its lock.

        Returns:
            A RunFolder, to be used with `with`.
        """
        return RunFolder(self.claim(relative), kind, exclusive=exclusive)


def _missing_folders(path):
    """The folders `os.makedirs(path)` would create, deepest first."""
    missing = []
    while not os.path.exists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing


def _remove_empty_folders(path):
    """Removes `path` and the folders below it that are (or become) empty, deepest first."""
    for folder, _, _ in os.walk(path, topdown=False):
        try:
            os.rmdir(folder)
        except OSError:
            pass


def _is_inside_name(relative):
    """Whether a relative name stays inside its folder once normalised (no leading "..")."""
    if not isinstance(relative, str) or not relative or os.path.isabs(relative) or "\0" in relative:
        return False
    name = os.path.normpath(relative)
    return name != "." and name != ".." and not name.startswith(".." + os.sep)


def _normalise(relative):
    return os.path.normpath(os.fspath(relative)).replace(os.sep, "/")


def _remove_child(path):
    """Removes what a child run folder's manifest lists (and the manifest and lock); returns
    the foreign entries left behind."""
    try:
        with open(os.path.join(path, MANIFEST), encoding="utf-8") as f:
            files = json.load(f).get("files", [])
    except (OSError, ValueError, AttributeError):
        files = []
    root = os.path.realpath(path)
    for name in files:
        if not isinstance(name, str) or not _is_inside_name(name):
            continue
        full = os.path.join(path, _normalise(name))
        resolved = os.path.realpath(os.path.dirname(full))
        if resolved != root and not resolved.startswith(root + os.sep):
            continue
        if os.path.isdir(full) and not os.path.islink(full):
            if os.path.exists(os.path.join(full, MANIFEST)):
                _remove_child(full)
            else:
                shutil.rmtree(full)
        elif os.path.lexists(full):
            os.remove(full)
    for special in (MANIFEST, LOCK):
        if os.path.lexists(os.path.join(path, special)):
            os.remove(os.path.join(path, special))
    _remove_empty_folders(path)
    leftover = []
    for folder, _, names in os.walk(path):
        leftover += [os.path.relpath(os.path.join(folder, n), path) for n in names]
    return sorted(leftover)
