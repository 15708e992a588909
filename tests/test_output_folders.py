"""Output folders are the tool's own or refused (``trimzoo.utils.run_folder``),
and compress checks every value, its state and its teacher before work: the
cases a fault probe found destroying or silently replacing files."""

import fcntl
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from trimzoo.utils import run_folder
from trimzoo.utils.run_folder import (LOCK, MARKER, OutputFolderError,
                                      RunFolder)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRIES = ("state.json", "model", "report.md")


def _tree(folder):
    """Every path under ``folder`` with the bytes of each file."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


def _user_folder(path):
    """A folder of a user's own files, named as compress names its own."""
    os.makedirs(os.path.join(path, "model"))
    for name in ("report.md", "results.json", "model/config.json"):
        with open(os.path.join(path, name), "w") as f:
            f.write(f"the user's {name}\n")
    return _tree(path)


# -- the rule -------------------------------------------------------------------

def test_a_folder_of_other_files_is_refused_with_and_without_overwrite(
        tmp_path):
    before = _user_folder(tmp_path / "out")
    for overwrite in (False, True):
        with pytest.raises(OutputFolderError, match="did not write"):
            RunFolder(tmp_path / "out", "compress", {}, ENTRIES,
                      overwrite=overwrite)
        assert _tree(tmp_path / "out") == before


def test_overwrite_removes_only_what_the_tool_wrote(tmp_path):
    out = tmp_path / "out"
    with RunFolder(out, "compress", {"budget": 2}, ENTRIES) as run:
        os.makedirs(run.join("model"))
        with open(run.join("model", "w.h5"), "w") as f:
            f.write("weights")
        with open(run.join("state.json"), "w") as f:
            f.write("{}")
    with open(out / "mine.txt", "w") as f:
        f.write("a user's note")
    with pytest.raises(OutputFolderError, match=r"other settings \(budget: "
                       r"2 -> 3\).*--overwrite"):
        RunFolder(out, "compress", {"budget": 3}, ENTRIES)
    with RunFolder(out, "compress", {"budget": 3}, ENTRIES,
                   overwrite=True) as run:
        assert not run.resumed
    assert sorted(os.listdir(out)) == [MARKER, LOCK, "mine.txt"]
    assert json.load(open(out / MARKER))["settings"] == {"budget": 3}


def test_same_settings_resume_and_another_tool_is_refused(tmp_path):
    with RunFolder(tmp_path, "search", {"a": [1, 2]}, ENTRIES) as run:
        assert not run.resumed
    with RunFolder(tmp_path, "search", {"a": (1, 2)}, ENTRIES) as run:
        assert run.resumed  # tuples and lists are the same JSON
    with pytest.raises(OutputFolderError, match="holds a search run, not a "
                       "compress run"):
        RunFolder(tmp_path, "compress", {"a": [1, 2]}, ENTRIES)


@pytest.mark.parametrize("where", ["cwd", "input", "parent", "inside"])
def test_never_the_current_directory_or_the_input(tmp_path, monkeypatch,
                                                  where):
    teacher = tmp_path / "run" / "best"
    os.makedirs(teacher)
    out = {"cwd": tmp_path, "input": teacher, "parent": tmp_path / "run",
           "inside": teacher / "compressed"}[where]
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    with pytest.raises(OutputFolderError, match={
            "cwd": "is the current directory", "input": "is the input",
            "parent": "holds the input", "inside": "inside the input"}[where]):
        RunFolder(out, "compress", {}, ENTRIES, overwrite=True,
                  inputs=[teacher])
    assert _tree(tmp_path) == before and not os.path.exists(
        teacher / "compressed")


def test_a_second_run_on_a_locked_folder_is_refused_at_once(tmp_path):
    RunFolder(tmp_path, "compress", {}, ENTRIES).close()
    with open(tmp_path / LOCK, "a") as other:  # another run's lock
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(OutputFolderError, match="in use by another run"):
            RunFolder(tmp_path, "compress", {}, ENTRIES)
        fcntl.flock(other, fcntl.LOCK_UN)
    RunFolder(tmp_path, "compress", {}, ENTRIES).close()


def test_a_damaged_marker_is_refused_with_its_path(tmp_path):
    RunFolder(tmp_path, "compress", {}, ENTRIES).close()
    (tmp_path / MARKER).write_text('{"tool": ')
    with pytest.raises(OutputFolderError, match=r"\.trimzoo-run\.json is "
                       "damaged"):
        RunFolder(tmp_path, "compress", {}, ENTRIES)


def test_an_older_run_is_adopted_only_when_all_its_files_are_the_tools(
        tmp_path):
    (tmp_path / "state.json").write_text("{}")
    (tmp_path / "report.md").write_text("old report")
    with pytest.raises(OutputFolderError, match="older version"):
        RunFolder(tmp_path, "compress", {"k": 1}, ENTRIES, adopt="state.json")
    # A tool that checks its settings itself (none here) resumes it.
    with RunFolder(tmp_path, "search", {}, ENTRIES, adopt="state.json") as run:
        assert run.resumed
    (tmp_path / MARKER).unlink()
    # Never overwritten: a stray state file beside a user's own files must
    # not make them the tool's.
    with pytest.raises(OutputFolderError, match="older version"):
        RunFolder(tmp_path, "compress", {"k": 1}, ENTRIES, adopt="state.json",
                  overwrite=True)
    assert (tmp_path / "report.md").read_text() == "old report"
    (tmp_path / "mine.txt").write_text("a user's file")
    with pytest.raises(OutputFolderError, match="did not write"):
        RunFolder(tmp_path, "compress", {}, ENTRIES, adopt="state.json",
                  overwrite=True)
    assert (tmp_path / "state.json").exists()


def test_fingerprint_follows_the_files(tmp_path):
    (tmp_path / "w.h5").write_bytes(b"\0" * 10)
    first = run_folder.fingerprint(tmp_path, {"task": "a"})
    assert run_folder.fingerprint(tmp_path, {"task": "a"}) == first
    assert run_folder.fingerprint(tmp_path, {"task": "b"}) != first
    (tmp_path / "w.h5").write_bytes(b"\0" * 9 + b"\1")
    assert run_folder.fingerprint(tmp_path, {"task": "a"}) != first


# -- compress -------------------------------------------------------------------

@pytest.fixture
def compress_kw():
    from test_compress import KW, make_config
    return make_config, KW


@pytest.mark.parametrize("bad, match", [
    ({"time_budget_min": float("nan")}, "time_budget_min must be a finite"),
    ({"batch_size": 0}, "batch_size must be a whole number >= 1"),
    ({"seq_len": 0}, "seq_len must be a whole number >= 8"),
    ({"epochs": 0}, "epochs must be a whole number >= 1"),
    ({"learning_rate": -1e-4}, "learning_rate must be a finite number > 0"),
    ({"rounds": 0}, "rounds must be"),
    ({"heal_attention": float("inf")}, "heal_attention must be a finite"),
    ({"compare": "__missing__"}, "No such file"),
])
def test_compress_refuses_bad_values_before_any_work(tmp_path, compress_kw,
                                                     bad, match):
    from trimzoo.search.budget import Budget
    from trimzoo.search.compressor import compress
    make_config, kw = compress_kw
    if bad.get("compare"):
        bad = {"compare": str(tmp_path / "missing.json")}
    with pytest.raises((ValueError, OSError), match=match):
        # The teacher does not exist: the values are checked before it is
        # read, and no folder is made.
        compress(tmp_path / "no_teacher", tmp_path / "out",
                 Budget(speedup=2), make_config, **{**kw, **bad})
    assert not os.path.exists(tmp_path / "out")


def test_a_bad_compare_file_is_refused_before_work(tmp_path, compress_kw):
    from trimzoo.search.budget import Budget
    from trimzoo.search.compressor import compress
    make_config, kw = compress_kw
    (tmp_path / "table.json").write_text('{"no_rows": 1}')
    with pytest.raises(ValueError, match="not a compression table"):
        compress(tmp_path / "no_teacher", tmp_path / "out",
                 Budget(speedup=2), make_config,
                 **{**kw, "compare": str(tmp_path / "table.json")})
    assert not os.path.exists(tmp_path / "out")


def test_compress_into_the_teachers_run_is_refused(finetuned_run, tmp_path,
                                                   compress_kw):
    from trimzoo.search.budget import Budget
    from trimzoo.search.compressor import compress
    make_config, kw = compress_kw
    run = tmp_path / "run"
    shutil.copytree(finetuned_run["workdir"], run)
    (run / "compress_state.json").write_text("{}")
    (run / "notes.txt").write_text("a user's notes")
    before = _tree(run)
    with pytest.raises(OutputFolderError, match="holds the input"):
        compress(run / "best", run, Budget(speedup=2), make_config,
                 overwrite=True, **kw)
    assert _tree(run) == before


def test_another_budget_or_a_retrained_teacher_is_refused(
        finetuned_run, tmp_path, compress_kw):
    from trimzoo.checkpoints.folders import (load_classifier_folder,
                                            save_classifier)
    from trimzoo.search.budget import Budget
    from trimzoo.search.compressor import Compressor
    make_config, kw = compress_kw
    teacher = tmp_path / "run" / "best"
    shutil.copytree(finetuned_run["workdir"], tmp_path / "run")
    out = tmp_path / "out"
    Compressor(teacher, out, Budget(speedup=1.5), make_config,
               **kw).folder.close()
    with pytest.raises(OutputFolderError, match=r"budget: .*'speedup': 1\.5"
                       r".*'max_params': 15000000"):
        Compressor(teacher, out, Budget(max_params=15_000_000), make_config,
                   **kw)
    # The teacher trained again in place: the same folder, other weights.
    model = load_classifier_folder(teacher)
    model.set_weights([w + 0.01 for w in model.get_weights()])
    save_classifier(model, model.preprocessor, teacher, overwrite=True)
    with pytest.raises(OutputFolderError, match="teacher_fingerprint"):
        Compressor(teacher, out, Budget(speedup=1.5), make_config, **kw)


def test_a_damaged_state_file_is_refused_with_the_way_out(
        finetuned_run, tmp_path, compress_kw):
    from trimzoo.search.budget import Budget
    from trimzoo.search.compressor import STATE_FILE, Compressor
    make_config, kw = compress_kw
    out = tmp_path / "out"
    run = Compressor(finetuned_run["best"], out, Budget(speedup=1.5),
                     make_config, **kw)
    run.folder.close()
    whole = {"costs": {}, "shape": {}, "proxy": {}}
    for text in ('{"costs": {', '{"settings": {}}', json.dumps(
            {**whole, "healed": {"D1": {"name": "D1"}}}), json.dumps(
            {**whole, "healed": {"D1": {"folder": str(tmp_path / "gone"),
                                        "validation_accuracy": 0.5,
                                        "test_accuracy": 0.5}}})):
        (out / STATE_FILE).write_text(text)
        with pytest.raises(ValueError, match=r"compress_state\.json is "
                           r"damaged.*--overwrite"):
            run._load_state()  # raised before any work (it raised a
            # KeyError after the timing)
    run = Compressor(finetuned_run["best"], out, Budget(speedup=1.5),
                     make_config, overwrite=True, **kw)
    run.folder.close()
    assert run.state["costs"] == {} and not (out / STATE_FILE).exists()


@pytest.mark.slow
def test_the_tool_never_deletes_the_current_directory(finetuned_run,
                                                      tmp_path):
    """``tools/compress.py --out=. --overwrite`` in a folder holding a
    compress state and the user's files: refused, one line, exit 1."""
    (tmp_path / "compress_state.json").write_text("{}")
    (tmp_path / "thesis.tex").write_text("months of work")
    before = _tree(tmp_path)
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "compress.py"),
         f"--teacher={finetuned_run['best']}", "--out=.", "--overwrite",
         "--speedup=2"], cwd=tmp_path, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "is the current directory" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _tree(tmp_path) == before


def test_a_failed_checkpoint_write_leaves_no_temp_files(tmp_path):
    import tensorflow as tf

    from trimzoo.training.checkpointing import CheckpointError, save_checkpoint
    checkpoint = tf.train.Checkpoint(v=tf.Variable(np.zeros(4)))
    manager = tf.train.CheckpointManager(checkpoint, str(tmp_path / "ckpt"),
                                         max_to_keep=2)
    save_checkpoint(manager, 1)

    def full_disk(*args, **kwargs):
        os.makedirs(tmp_path / "ckpt" / "ckpt-2_temp", exist_ok=True)
        (tmp_path / "ckpt" / "ckpt-2_temp" / "part").write_bytes(b"\0" * 99)
        raise tf.errors.ResourceExhaustedError(
            None, None, "No space left on device")

    manager.save = full_disk
    with pytest.raises(CheckpointError, match="No space left on device.*"
                       "temporary files were removed"):
        save_checkpoint(manager, 2)
    assert not any(n.endswith("_temp") for n in os.listdir(tmp_path / "ckpt"))


# -- the other tools -------------------------------------------------------------

HF_TINY_BERT = os.path.join(ROOT, "tests", "fixtures", "hf_tiny_bert")


def test_layer_dropping_overwrites_only_its_own_folder(tmp_path):
    from trimzoo.checkpoints.surgery import drop_checkpoint
    before = _user_folder(tmp_path / "mine")
    with pytest.raises(FileExistsError, match="not a folder that layer "
                       "dropping or pruning wrote"):
        drop_checkpoint(HF_TINY_BERT, str(tmp_path / "mine"), "top", k=1,
                        overwrite=True)
    assert _tree(tmp_path / "mine") == before
    copy = tmp_path / "ckpt"
    shutil.copytree(HF_TINY_BERT, copy)
    for out in (tmp_path, copy):  # holds the input / is the input
        with pytest.raises(OutputFolderError, match="the input"):
            drop_checkpoint(str(copy), str(out), "top", k=1, overwrite=True)
    dropped = tmp_path / "dropped"
    drop_checkpoint(HF_TINY_BERT, str(dropped), "top", k=1)
    (dropped / "user_note.txt").write_text("mine")  # never deleted
    with pytest.raises(FileExistsError, match="user_note.txt"):
        drop_checkpoint(HF_TINY_BERT, str(dropped), "bottom", k=1,
                        overwrite=True)
    (dropped / "user_note.txt").unlink()
    drop_checkpoint(HF_TINY_BERT, str(dropped), "bottom", k=1, overwrite=True)
    assert json.load(open(dropped / "drop_layers.json"))["dropped"] == [0]


@pytest.mark.slow
def test_a_workdir_of_other_files_is_refused_by_every_tool(tmp_path):
    """finetune, pretrain, search and the demo refuse a folder of the
    user's files (they wrote their config.json, results.json and
    report.md over the user's), and nothing there changes."""
    before = _user_folder(tmp_path / "mine")
    for tool, flag in (("finetune.py", "--workdir"),
                       ("pretrain.py", "--workdir"),
                       ("search.py", "--workdir"), ("demo.py", "--out")):
        args = {"finetune.py": ["--config=" + os.path.join(
                    ROOT, "configs", "finetune.py") + ":task=rotten_tomatoes"],
                "search.py": ["--config=" + os.path.join(
                    ROOT, "configs", "search.py")]}.get(tool, [])
        proc = subprocess.run(
            [sys.executable, os.path.join(ROOT, "tools", tool), *args,
             f"{flag}={tmp_path / 'mine'}"], capture_output=True, text=True,
            timeout=300)
        assert proc.returncode == 1, (tool, proc.stderr)
        assert "did not write" in proc.stderr, (tool, proc.stderr)
        assert _tree(tmp_path / "mine") == before, tool


def test_pretraining_records_overwrite_only_their_own(vocab_dir, tmp_path):
    from trimzoo.data import pretraining
    out = tmp_path / "records"
    first = pretraining.create_pretraining_records(
        str(out), vocab_dir, 16, texts=["a b c", "", "c b a"], progress=False)
    again = pretraining.create_pretraining_records(
        str(out), vocab_dir, 16, texts=["a b", "", "b a"], progress=False,
        overwrite=True)
    assert again["files"] == first["files"]
    (out / "theirs.tfrecord").write_bytes(b"another corpus")
    with pytest.raises(FileExistsError, match="no earlier run of this tool "
                       "listed \\(theirs.tfrecord\\)"):
        pretraining.create_pretraining_records(
            str(out), vocab_dir, 16, texts=["a"], progress=False,
            overwrite=True)
    assert (out / "theirs.tfrecord").read_bytes() == b"another corpus"
    assert (out / first["files"][0]).exists()


def test_export_never_writes_into_its_model_or_the_current_directory(
        finetuned_run, tmp_path, monkeypatch):
    from trimzoo.export import export_model
    run = tmp_path / "run"
    shutil.copytree(finetuned_run["workdir"], run)
    before = _tree(run)
    monkeypatch.chdir(tmp_path)
    for out, match in ((run, "holds the input"), (run / "best", "is the input"),
                       (tmp_path, "is the current directory")):
        with pytest.raises(OutputFolderError, match=match):
            export_model(str(run / "best"), str(out), formats="tflite",
                         overwrite=True)
    assert _tree(run) == before
