"""Checkpoints of the training loop, read back from their files, and the
config a workdir was trained with."""

import glob
import json
import logging
import os
import re
import shutil

import tensorflow as tf

# Kept importable from here for existing callers.
from trimzoo.utils.io import read_json, write_json  # noqa: F401


# -- tf.train checkpoints of the training loop ---------------------------------
#
# ``tf.train.CheckpointManager`` finds checkpoints through its ``checkpoint``
# state file only; a lost or stale state file, or a damaged newest
# checkpoint, would restart a run from step 0. These helpers read the
# folder itself instead.

_CHECKPOINT_FILE = re.compile(r"^(.+-(\d+))\.(index|data-\d+-of-(\d+))$")


# Everything a training run (fine-tuning, pretraining) writes in its
# workdir: the tools claim the folder for these (``trimzoo.utils.run_folder``).
RUN_OUTPUTS = ("config.json", "labels.json", "checkpoints", "best", "final",
               "metrics.json", "metrics.jsonl", "tensorboard", "summary.json",
               "tmp", "workers")


class CheckpointError(RuntimeError):
    """Checkpoints exist but none of them can be restored."""


def find_checkpoints(directory):
    """``[(step, prefix), ...]`` of every checkpoint whose files are in
    ``directory`` (an ``.index`` or a ``.data-*`` file), oldest first.

    Examples:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> for name in ("ckpt-2.index", "ckpt-10.data-00000-of-00001",
    ...              "checkpoint", "ckpt-3_temp"):
    ...     open(os.path.join(folder, name), "w").close()
    >>> [(step, os.path.basename(p)) for step, p in find_checkpoints(folder)]
    [(2, 'ckpt-2'), (10, 'ckpt-10')]
    """
    found = {}
    if not os.path.isdir(directory):
        return []
    for name in os.listdir(directory):
        match = _CHECKPOINT_FILE.match(name)
        if match:
            prefix = os.path.join(directory, match.group(1))
            found[prefix] = int(match.group(2))
    return sorted((step, prefix) for prefix, step in found.items())


def missing_checkpoint_file(prefix):
    """The first file of checkpoint ``prefix`` that is absent (its
    ``.index``, or one of the data shards the shard names promise), or
    None."""
    index = prefix + ".index"
    if not os.path.exists(index):
        return index
    shards = glob.glob(glob.escape(prefix) + ".data-*-of-*")
    count = int(shards[0].rsplit("-", 1)[1]) if shards else 1
    for i in range(count):
        shard = f"{prefix}.data-{i:05d}-of-{count:05d}"
        if not os.path.exists(shard):
            return shard
    return None


def damaged_checkpoint_file(prefix):
    """The file of checkpoint ``prefix`` to blame when restoring it failed:
    a missing one, else the ``.index`` if it does not parse, else the data
    shard(s)."""
    missing = missing_checkpoint_file(prefix)
    if missing:
        return missing
    try:
        tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError):
        return prefix + ".index"
    return ", ".join(sorted(glob.glob(glob.escape(prefix) + ".data-*")))


def remove_interrupted_writes(directory):
    """Removes the ``<prefix>_temp`` folders a killed checkpoint write
    leaves behind; returns the prefixes they belonged to."""
    prefixes = []
    if not os.path.isdir(directory):
        return prefixes
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name.endswith("_temp") and os.path.isdir(path):
            logging.warning("Removing %s, left by an interrupted checkpoint "
                            "write.", path)
            shutil.rmtree(path, ignore_errors=True)
            prefixes.append(path[:-len("_temp")])
    return prefixes


def save_checkpoint(manager, number):
    """``manager.save(checkpoint_number=number)``; a write that fails (a
    full disk, a folder that went away) removes its ``_temp`` folder and
    raises a :class:`CheckpointError` naming the folder and the cause in
    one line, so nothing half-written stays and no raw TensorFlow trace
    reaches the user."""
    try:
        return manager.save(checkpoint_number=number)
    except (tf.errors.OpError, OSError) as err:
        remove_interrupted_writes(manager.directory)
        cause = " ".join(str(getattr(err, "message", err)).split())
        raise CheckpointError(
            f"Could not write checkpoint {number} in {manager.directory} "
            f"({cause[:300]}); its temporary files were removed. Free disk "
            "space (or fix the folder) and run the same command again to "
            "resume.") from err


def _remove_checkpoint(prefix):
    for path in glob.glob(glob.escape(prefix) + ".*"):
        os.remove(path)


def restore_newest(checkpoint, directory, clean_up=True):
    """Restores the newest checkpoint in ``directory`` that reads back
    completely, found from the files themselves (not only the
    ``checkpoint`` state file).

    A damaged newer checkpoint (a missing or truncated ``.index`` or data
    shard) is skipped with a warning naming the file; one whose write was
    interrupted (its ``_temp`` folder is still there) is removed. With
    ``clean_up`` (the writer of the folder), ``_temp`` folders are removed
    and the state file is rewritten to list the checkpoints up to the
    restored one, so that rotation never deletes an older good checkpoint
    in favour of a damaged newer one.

    Args:
        checkpoint: ``tf.train.Checkpoint``.
        directory: str. The checkpoint folder.
        clean_up: bool. Defaults to True.

    Returns:
        ``(step, prefix)`` of the restored checkpoint, or None when the
        folder holds no checkpoint.

    Raises:
        CheckpointError: checkpoints exist but none restores; the message
            names each damaged file.
    """
    interrupted = remove_interrupted_writes(directory) if clean_up else []
    found = find_checkpoints(directory)
    damaged = []
    for step, prefix in reversed(found):
        problem = missing_checkpoint_file(prefix)
        if problem is None:
            try:
                checkpoint.restore(prefix).assert_existing_objects_matched()
                break
            except (tf.errors.OpError, IndexError, ValueError,
                    AssertionError) as error:
                problem = (f"{damaged_checkpoint_file(prefix)} "
                           f"({type(error).__name__}: {error})")
        if clean_up and prefix in interrupted:
            logging.warning("Removing checkpoint %s: its write was "
                            "interrupted (%s).", prefix, problem)
            _remove_checkpoint(prefix)
            continue
        logging.warning("Checkpoint %s is damaged and skipped: %s", prefix,
                        problem)
        damaged.append(problem)
    else:
        if damaged:
            raise CheckpointError(
                f"No checkpoint in {directory} can be restored; damaged: "
                f"{'; '.join(damaged)}. Restore or remove these files (the "
                "run then starts again from step 0).")
        return None
    if damaged:
        logging.warning("Resuming from %s, the newest good checkpoint.",
                        prefix)
    if clean_up:
        kept = [p for s, p in found if s <= step]
        times = [os.path.getmtime(p + ".index") if os.path.exists(
            p + ".index") else 0.0 for p in kept]
        tf.compat.v1.train.update_checkpoint_state(
            directory, prefix, all_model_checkpoint_paths=kept,
            all_model_checkpoint_timestamps=times,
            last_preserved_timestamp=min(times) - 1)
    return step, prefix


# -- the config a workdir was trained with -------------------------------------


class ConfigChangedError(ValueError):
    """A workdir that holds a trained run was given another config."""


def changed_fields(old, new, prefix=""):
    """Dotted names of the fields that differ between two nested dicts.

    >>> changed_fields({"a": 1, "t": {"lr": 1, "n": 2}},
    ...                {"a": 1, "t": {"lr": 3, "n": 2}, "b": 0})
    ['b', 't.lr']
    """
    changed = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += changed_fields(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key}")
    return changed


def _field(config, name):
    for part in name.split("."):
        if not isinstance(config, dict):
            return None
        config = config.get(part)
    return config


def record_config(workdir, config, resumable=(), trained=True, write=True,
                  equivalent=None):
    """Checks ``config`` against ``workdir/config.json``, then writes it.

    A workdir that holds a trained run (``trained``: a checkpoint or a
    completed step) refuses a config that differs in any field outside
    ``resumable``, naming each field with its stored and new values, and
    ``config.json`` is left as it was. A run that stopped before training
    (bad data, a bad setting) locks nothing: its ``config.json`` is
    replaced.

    Args:
        workdir: str.
        config: dict (JSON values), the resolved config.
        resumable: names of fields (dotted, ``"train.steps"``) that may
            change between the segments of a run.
        trained: bool. Whether the workdir holds a run that has trained.
            Defaults to True.
        write: bool. Write ``config.json`` (the chief). Defaults to True.
        equivalent: ``fn(field, stored, new) -> bool`` or None: True where
            two values differ in spelling only (a path recorded relative,
            now absolute), which is no change.

    Raises:
        ConfigChangedError: naming the changed fields.

    Examples:

    >>> import tempfile
    >>> workdir = tempfile.mkdtemp()
    >>> record_config(workdir, {"train": {"lr": 1.0, "steps": 10}})
    >>> record_config(workdir, {"train": {"lr": 1.0, "steps": 20}},
    ...               resumable=("train.steps",))
    >>> record_config(workdir, {"train": {"lr": 9.0, "steps": 20}})
    Traceback (most recent call last):
    ...
    trimzoo.training.checkpointing.ConfigChangedError: ...(changed fields ['train.lr']...
    """
    config = json.loads(json.dumps(config))  # tuples -> lists, as stored
    path = os.path.join(workdir, "config.json")
    previous = read_json(path)
    if previous is not None:
        changed = [name for name in changed_fields(previous, config)
                   if name not in resumable and not (
                       equivalent and equivalent(name, _field(previous, name),
                                                 _field(config, name)))]
        if changed and trained:
            details = ", ".join(
                f"{name}: {_field(previous, name)!r} -> "
                f"{_field(config, name)!r}" for name in changed)
            raise ConfigChangedError(
                f"{workdir} holds a run trained with another config "
                f"(changed fields {changed}; {details}). Resume with the "
                f"stored config ({path}), or use a new workdir. Fields that "
                f"may change on resume: {sorted(resumable)}.")
        if changed:
            logging.info("Replacing %s (changed %s): its run stopped before "
                         "training.", path, changed)
    if write:
        os.makedirs(workdir, exist_ok=True)
        write_json(path, config)
