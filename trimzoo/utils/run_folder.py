"""Output folders that are a tool's own, or refused.

Every tool that writes a folder of results (compress, search, the demo, the
tables, fine-tuning's and pretraining's workdirs, exports, pruned and
layer-dropped checkpoints) follows one rule, kept here:

- **Where**: an output folder is never the current directory, the file
  system's root, the home folder, one of the tool's inputs (a teacher, a
  checkpoint), a folder that holds an input, or a folder inside an input.
- **Whose**: a tool writes into a non-empty folder only when the folder
  carries the tool's marker (``.trimzoo-run.json``) with the same settings
  (the run resumes). A folder of other files, of another tool, or of other
  settings is refused in one line that names it and the way out.
- **Overwrite** removes only the entries the marker says the tool wrote,
  never the folder and never a file the tool did not write.
- **One at a time**: the folder is locked (``fcntl.flock``) while a run
  holds it; a second run on it is refused at once. The lock dies with the
  process, so a killed run never leaves the folder locked.

Examples:

>>> import os, tempfile
>>> out = os.path.join(tempfile.mkdtemp(), "run")
>>> with RunFolder(out, "demo", {"seed": 0}, entries=("results.json",)) as run:
...     _ = open(run.join("results.json"), "w").write("{}")
>>> with RunFolder(out, "demo", {"seed": 0}, entries=("results.json",)) as run:
...     run.resumed
True
>>> RunFolder(out, "demo", {"seed": 1}, entries=("results.json",))
Traceback (most recent call last):
...
trimzoo.utils.run_folder.OutputFolderError: ... holds a demo run with other settings (seed: 0 -> 1); resume it with the same settings, pass --overwrite to replace what demo wrote there, or choose a new --out.
>>> _ = open(os.path.join(out, "notes.txt"), "w").write("mine")
>>> with RunFolder(out, "demo", {"seed": 1}, entries=("results.json",),
...                overwrite=True) as run:
...     sorted(os.listdir(out))
['.trimzoo-run.json', '.trimzoo-run.lock', 'notes.txt']
"""

import contextlib
import errno
import fcntl
import json
import os
import shutil
import time

from trimzoo.utils.io import jsonable, read_json, write_json

MARKER = ".trimzoo-run.json"
LOCK = ".trimzoo-run.lock"
_OWN = (MARKER, LOCK)
# Locks this process holds, by folder: {real path: [file, holders]}. A
# flock is per open file, so a second claim in the same process (a library
# caller that builds two runs on one folder) shares the first one's lock.
_HELD = {}


class OutputFolderError(ValueError):
    """An output folder that the tool may not write into (see the module
    docstring); the message names the folder and the way out."""


def _real(path):
    return os.path.realpath(os.path.abspath(os.fspath(path)))


def _inside(path, folder):
    """``path`` is ``folder`` or inside it (both real paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_output_location(path, inputs=(), flag="--out"):
    """Refuses an output ``path`` that is the current directory, ``/``, the
    home folder, one of ``inputs``, holds one of them, or lies inside one.

    >>> import tempfile
    >>> check_output_location(".")
    Traceback (most recent call last):
    ...
    trimzoo.utils.run_folder.OutputFolderError: --out=. is the current directory: its files are not the tool's to replace; choose a new folder, e.g. --out=./out.
    >>> teacher = tempfile.mkdtemp()
    >>> check_output_location(os.path.dirname(teacher), inputs=[teacher])
    Traceback (most recent call last):
    ...
    trimzoo.utils.run_folder.OutputFolderError: --out=... holds the input ...: writing there could replace it; choose a folder outside it.
    """
    real = _real(path)
    shown = f"{flag}={os.fspath(path)}"
    if real == _real(os.getcwd()):
        raise OutputFolderError(
            f"{shown} is the current directory: its files are not the "
            f"tool's to replace; choose a new folder, e.g. {flag}=./out.")
    if real in (os.sep, _real(os.path.expanduser("~"))):
        raise OutputFolderError(
            f"{shown} is {real}: choose a new folder for the results.")
    for item in inputs:
        if not item or not os.path.exists(item):
            continue
        held = _real(item)
        if real == held:
            raise OutputFolderError(
                f"{shown} is the input {held}: writing there would replace "
                "it; choose another folder.")
        if _inside(held, real):
            raise OutputFolderError(
                f"{shown} holds the input {held}: writing there could "
                "replace it; choose a folder outside it.")
        if _inside(real, held):
            raise OutputFolderError(
                f"{shown} lies inside the input {held}: writing there "
                "changes the input; choose a folder outside it.")


def _changes(old, new):
    keys = sorted(set(old) | set(new))
    return ", ".join(f"{k}: {old.get(k, '(none)')} -> {new.get(k, '(none)')}"
                     for k in keys if old.get(k) != new.get(k))


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


class RunFolder:
    """A tool's output folder, claimed for one run (see the module
    docstring). Use it as a context manager, or call :meth:`close`.

    Args:
        path: str. The folder (created when missing).
        tool: str. The tool's name, recorded in the marker.
        settings: dict. JSON values: a run resumes only under the same.
        entries: sequence of str. The names (files or folders, directly
            in ``path``) the tool writes; ``overwrite`` removes these.
        overwrite: bool. Replace an earlier run of the same tool under
            other settings (or start the same settings over): its entries
            are removed, nothing else. Defaults to False.
        inputs: sequence of str. Folders or files the run reads: ``path``
            may not be, hold or lie inside one.
        adopt: str or None. A file whose presence marks a folder written
            by an older version of the tool (before markers): such a folder
            is adopted when all its entries are among ``entries`` and the
            tool checks its own settings (``settings == {}``); it is never
            overwritten (its files are known by name only).
        flag: str. The flag that named the folder, for messages.

    Attributes:
        path: str. The folder, absolute.
        resumed: bool. An earlier run of the same settings was found.
    """

    def __init__(self, path, tool, settings, entries, overwrite=False,
                 inputs=(), adopt=None, flag="--out"):
        check_output_location(path, inputs, flag)
        self.path = os.path.abspath(os.fspath(path))
        self.tool, self.flag = tool, flag
        self.settings = json.loads(json.dumps(jsonable(settings)))
        self.entries = tuple(entries)
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise OutputFolderError(
                f"{flag}={self.path} is a file, not a folder; choose a "
                "folder.")
        os.makedirs(self.path, exist_ok=True)
        had_lock = os.path.exists(os.path.join(self.path, LOCK))
        self._lock = self._acquire()
        try:
            self.resumed = self._claim(overwrite, adopt)
        except BaseException:
            self.close()
            if not had_lock:  # A refused folder is left as it was found.
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(self.path, LOCK))
            raise

    # -- the lock ---------------------------------------------------------------

    def _acquire(self):
        key = _real(self.path)
        if key in _HELD:
            _HELD[key][1] += 1
            return key
        handle = open(os.path.join(self.path, LOCK), "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            handle.close()
            if err.errno in (errno.EAGAIN, errno.EACCES):
                raise OutputFolderError(
                    f"{self.path} is in use by another run (locked): wait "
                    f"for it to end, or choose a new {self.flag}.") from err
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        _HELD[key] = [handle, 1]
        return key

    def close(self):
        """Releases the lock (the marker and the results stay)."""
        if self._lock is None:
            return
        held = _HELD[self._lock]
        held[1] -= 1
        if held[1] == 0:
            fcntl.flock(held[0], fcntl.LOCK_UN)
            held[0].close()
            del _HELD[self._lock]
        self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the marker -------------------------------------------------------------

    def _read_marker(self):
        path = os.path.join(self.path, MARKER)
        if not os.path.exists(path):
            return None
        try:
            with open(path, encoding="utf-8") as f:
                marker = json.load(f)
            if not (isinstance(marker, dict)
                    and isinstance(marker.get("tool"), str)
                    and isinstance(marker.get("entries"), list)):
                raise ValueError("not a run marker")
        except (ValueError, UnicodeDecodeError) as err:
            raise OutputFolderError(
                f"{path} is damaged ({err}); remove that file only if the "
                f"folder is a run of {self.tool}, or choose a new "
                f"{self.flag}.") from err
        return marker

    def _write_marker(self):
        write_json(os.path.join(self.path, MARKER), {
            "tool": self.tool, "settings": self.settings,
            "entries": list(self.entries), "written": time.strftime(
                "%Y-%m-%dT%H:%M:%S")})

    def _foreign(self):
        return sorted(n for n in os.listdir(self.path)
                      if n not in _OWN
                      and n not in self.entries)

    def _claim(self, overwrite, adopt):
        marker = self._read_marker()
        present = sorted(n for n in os.listdir(self.path) if n not in _OWN)
        if marker is None:
            if present and not (adopt and adopt in present
                                and not self._foreign()):
                shown = ", ".join(present[:6]) + (", ..." if len(present) > 6
                                                  else "")
                raise OutputFolderError(
                    f"{self.flag}={self.path} holds files that {self.tool} "
                    f"did not write ({shown}); nothing there is replaced. "
                    f"Choose a new or empty {self.flag}.")
            if present:
                # An older version's run (no marker): it resumes when the
                # tool checks its settings itself (no settings here). Its
                # files are told from others by name only, so nothing in it
                # is ever removed.
                if self.settings != {} or overwrite:
                    raise OutputFolderError(
                        f"{self.flag}={self.path} holds a {self.tool} run of "
                        f"an older version (no {MARKER}): its files cannot "
                        "be told from others there, so nothing is resumed "
                        f"or replaced. Choose a new {self.flag}.")
                marker = {"tool": self.tool, "settings": {},
                          "entries": list(self.entries)}
        if marker is not None and marker["tool"] != self.tool:
            raise OutputFolderError(
                f"{self.flag}={self.path} holds a {marker['tool']} run, not "
                f"a {self.tool} run; choose a new {self.flag}.")
        if marker is not None and not overwrite:
            if marker.get("settings") == self.settings:
                self._write_marker()
                return True
            old = marker.get("settings")
            what = ("settings from an older version of trimzoo"
                    if old is None else "other settings ("
                    + _changes(old, self.settings) + ")")
            raise OutputFolderError(
                f"{self.flag}={self.path} holds a {self.tool} run with "
                f"{what}; resume it with the same settings, pass "
                f"--overwrite to replace what {self.tool} wrote there, or "
                f"choose a new {self.flag}.")
        if marker is not None:  # overwrite: only what the tool wrote.
            for name in set(marker["entries"]) | set(self.entries):
                if os.path.basename(name) == name and name not in _OWN:
                    _remove(os.path.join(self.path, name))
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(self.path, MARKER))
        self._write_marker()
        return False

    def read_state(self, name, empty):
        """The run's JSON state in entry ``name``: ``empty`` (a dict of
        dicts, copied) when there is none yet; a file that is not JSON, or
        lacks one of ``empty``'s dicts, is refused with its path and the
        way out."""
        path = self.join(name)
        try:
            state = read_json(path)
        except ValueError as err:
            state = err
        if state is None:
            return {key: dict(value) for key, value in empty.items()}
        if not (isinstance(state, dict) and all(
                isinstance(state.get(key), dict) for key in empty)):
            raise OutputFolderError(
                f"{path} is damaged (not the state of a {self.tool} run: "
                f"{str(state)[:200]}); pass --overwrite to start the run "
                f"over, or choose a new {self.flag}.")
        return state

    def join(self, *names):
        """A path inside the folder; its first part must be an entry."""
        if names and names[0] not in self.entries:
            raise ValueError(f"{names[0]!r} is not among {self.tool}'s "
                             f"entries {self.entries}.")
        return os.path.join(self.path, *names)


def fingerprint(folder, *extra):
    """A SHA-256 over the files in ``folder`` (names and contents, in name
    order) and the JSON of ``extra``: a model trained again in place, or
    its task pointed at other files, gets another fingerprint.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = open(os.path.join(folder, "model.weights.h5"), "wb").write(b"1")
    >>> a = fingerprint(folder, {"task": "sst2"})
    >>> _ = open(os.path.join(folder, "model.weights.h5"), "wb").write(b"2")
    >>> a == fingerprint(folder, {"task": "sst2"}), len(a)
    (False, 64)
    """
    import hashlib

    digest = hashlib.sha256()
    folder = os.fspath(folder)
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, folder).encode() + b"\0")
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    digest.update(json.dumps(jsonable(list(extra)), sort_keys=True).encode())
    return digest.hexdigest()


def claim_unless_worker(*args, **kwargs):
    """A :class:`RunFolder` for this process, or a no-op context in a
    multi-worker run's non-chief worker (``TF_CONFIG``): the workers share
    the chief's workdir, which the chief claims.

    >>> import os
    >>> os.environ["TF_CONFIG"] = '{"cluster": {"worker": ["a", "b"]}, "task": {"type": "worker", "index": 1}}'
    >>> with claim_unless_worker("/never/made", "pretrain", {}, ()) as run:
    ...     run is None
    True
    >>> del os.environ["TF_CONFIG"]
    """
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task, cluster = tf_config.get("task") or {}, tf_config.get("cluster") or {}
    chief = (not task or (task.get("type") == "chief" if "chief" in cluster
                          else task.get("type") == "worker"
                          and int(task.get("index", 0)) == 0))
    return RunFolder(*args, **kwargs) if chief else contextlib.nullcontext()
