"""Nothing silent in training runs: config drift, damaged or lost
checkpoints, a diverged fine-tune, workdirs of failed runs, teachers that
name modules, and a pretraining run killed again and again
(docs/reliability.md lists the guarantees)."""

import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from configs.common import check_override_flags
from configs.finetune import get_config as finetune_config
from trimzoo.models import TrimzooClassifier
from trimzoo.checkpoints import folders, teachers
from trimzoo.training import pretrain
from trimzoo.training.checkpointing import (CheckpointError,
                                            ConfigChangedError,
                                            find_checkpoints)
from trimzoo.training.finetune import finetune
from trimzoo.training.loop import Hook, NonFiniteLossError, read_metrics

from helpers import (PYTHON, ROOT, StopAfter, as_flags, final_weights,
                     losses, small_config, synthetic_lines, tiny_config)

TEXTS = synthetic_lines(120, seed=4)


def _strict_json(path):
    """``path`` parsed as standard JSON (no NaN / Infinity)."""
    def refuse(constant):
        raise ValueError(f"{path} holds {constant}, which is not JSON.")
    with open(path) as f:
        return json.load(f, parse_constant=refuse)


# --- Pretraining: config drift and workdir locking. ---------------------------

def test_pretraining_refuses_a_changed_config(vocab_dir, tmp_path):
    workdir = str(tmp_path / "run")
    pretrain.run(tiny_config(vocab_dir, train__steps=2), workdir,
                 texts=TEXTS)
    stored = open(os.path.join(workdir, "config.json")).read()
    for field, value, shown in [
            ("train__learning_rate", 0.1, "train.learning_rate"),
            ("train__batch_size", 4, "train.batch_size"),
            ("data__max_seq_length", 16, "data.max_seq_length"),
            ("data__mask_rate", 0.3, "data.mask_rate"),
            ("model_overrides__num_layers", 1,
             "model_overrides.num_layers")]:
        changed = tiny_config(vocab_dir, train__steps=4, **{field: value})
        with pytest.raises(ConfigChangedError, match=shown):
            pretrain.Pretrainer(changed, workdir, texts=TEXTS)
        # The record of the original run is intact.
        assert open(os.path.join(workdir, "config.json")).read() == stored
    # Safe changes resume: a longer run, other logging/checkpoint intervals.
    longer = tiny_config(vocab_dir, train__steps=4, train__log_every=2,
                         train__checkpoint_every=2, train__keep_checkpoints=3)
    assert pretrain.Pretrainer(longer, workdir, texts=TEXTS).restore() == 2
    assert json.load(open(os.path.join(workdir, "config.json")))[
        "train"]["steps"] == 4


@pytest.mark.slow
def test_failed_runs_do_not_lock_their_workdir(vocab_dir, tmp_path):
    # Pretraining: bad data stops the run before its first step.
    workdir = str(tmp_path / "pretrain")
    bad = tiny_config(vocab_dir, data__input=str(tmp_path / "missing.txt"))
    with pytest.raises(Exception, match="missing.txt"):
        pretrain.run(bad, workdir)
    assert os.path.exists(os.path.join(workdir, "config.json"))
    fixed = tiny_config(vocab_dir, train__learning_rate=1e-4)
    assert pretrain.Pretrainer(fixed, workdir, texts=TEXTS).restore() == 0
    assert json.load(open(os.path.join(workdir, "config.json")))[
        "train"]["learning_rate"] == 1e-4
    # Fine-tuning: a validation file with a malformed row.
    workdir = str(tmp_path / "finetune")
    train = tmp_path / "train.csv"
    train.write_text("sentence,label\n" + "".join(
        f"{w} movie,{i % 2}\n" for i, w in enumerate("good bad fine dull"
                                                    .split() * 4)))
    broken = tmp_path / "broken.csv"
    broken.write_text("sentence,label\nhello, world,1\n")
    config = _small_finetune("files", train_files=str(train),
                             validation_files=str(broken))
    with pytest.raises(Exception, match="broken.csv"):
        finetune(config, workdir)
    config = _small_finetune("files", train_files=str(train),
                             validation_files=str(train))
    config.train.learning_rate = 3e-4
    record = finetune(config, workdir)
    assert len(record["evals"]) == 1
    # Now that it has trained, the workdir is locked to its config.
    config.train.learning_rate = 1e-3
    with pytest.raises(ConfigChangedError, match="train.learning_rate"):
        finetune(config, workdir)


# --- Checkpoints: discovery, fallback, clean-up. ------------------------------

def _damage(path, how):
    if how == "remove":
        os.remove(path)
    else:
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)


def test_every_damaged_checkpoint_file_falls_back_or_names_the_file(
        vocab_dir, tmp_path, caplog):
    workdir = str(tmp_path / "run")
    config = tiny_config(vocab_dir, train__steps=6, train__checkpoint_every=2,
                         train__keep_checkpoints=3)
    pretrain.run(config, workdir, texts=TEXTS)
    directory = os.path.join(workdir, "checkpoints")
    pristine = str(tmp_path / "pristine")
    shutil.copytree(directory, pristine)
    metrics = os.path.join(workdir, "metrics.jsonl")
    pristine_metrics = open(metrics).read()
    trainer = pretrain.Pretrainer(config, workdir, texts=TEXTS)
    names = sorted(os.listdir(pristine))
    assert len(names) == 7, names  # state file + 3 x (.index, .data)
    for name in names:
        for how in ("remove", "truncate"):
            shutil.rmtree(directory)
            shutil.copytree(pristine, directory)
            open(metrics, "w").write(pristine_metrics)
            _damage(os.path.join(directory, name), how)
            caplog.clear()
            with caplog.at_level(logging.WARNING):
                step = trainer.loop.restore()
            newest_damaged = name.startswith("ckpt-6.")
            assert step == (4 if newest_damaged else 6), (name, how)
            assert int(trainer.step.numpy()) == step
            if newest_damaged:
                assert name in caplog.text, (name, how)
                # Rows past the restored step are gone.
                assert max(losses(workdir)) == 4
            # Rotation now knows the checkpoints up to the restored one.
            state = tf.train.get_checkpoint_state(directory)
            assert state.model_checkpoint_path.endswith(f"ckpt-{step}")
    # Every checkpoint damaged: an error naming the files, not step 0.
    shutil.rmtree(directory)
    shutil.copytree(pristine, directory)
    for step in (2, 4, 6):
        _damage(os.path.join(directory, f"ckpt-{step}.data-00000-of-00001"),
                "truncate")
    with pytest.raises(CheckpointError, match=r"ckpt-2\.data.*IndexError"):
        trainer.loop.restore()

    # The newest .index lost: the run resumes from step 4 (not 0), keeps
    # the older checkpoints and one metrics sequence.
    shutil.rmtree(directory)
    shutil.copytree(pristine, directory)
    open(metrics, "w").write(pristine_metrics)
    os.remove(os.path.join(directory, "ckpt-6.index"))
    os.makedirs(os.path.join(directory, "ckpt-8_temp"))  # a killed write
    config.train.steps = 8
    summary = pretrain.run(config, workdir, texts=TEXTS)
    assert summary["start_step"] == 4
    steps = [m["step"] for m in pretrain.read_metrics(workdir)]
    assert steps == sorted(set(steps)) and steps[-1] == 8
    assert [s for s, _ in find_checkpoints(directory)] == [4, 6, 8]
    assert not os.path.exists(os.path.join(directory, "ckpt-8_temp"))


def test_interrupted_pretraining_resumes_exactly(vocab_dir, tmp_path,
                                                 monkeypatch):
    """Stopped right after its step-3 checkpoint, a run resumes from it
    and ends with the uninterrupted run's losses and weights: the model,
    the optimizer moments, the step and the data position all come back
    (in one process; the SIGKILL version is in test_pretrain)."""
    from trimzoo.training.loop import Trainer

    config = tiny_config(vocab_dir, train__steps=6,
                         train__checkpoint_every=3)
    straight = str(tmp_path / "straight")
    pretrain.run(config, straight, texts=TEXTS)

    save = Trainer.save_checkpoint

    def save_then_stop(self):
        path = save(self)
        if int(self.step.numpy()) == 3:
            raise KeyboardInterrupt("stopped after the step-3 checkpoint")
        return path

    stopped = str(tmp_path / "stopped")
    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        pretrain.run(config, stopped, texts=TEXTS)
    monkeypatch.setattr(Trainer, "save_checkpoint", save)
    summary = pretrain.run(config, stopped, texts=TEXTS)
    assert summary["start_step"] == 3
    a, b = losses(stopped), losses(straight)
    assert sorted(a) == sorted(b) == list(range(1, 7))
    assert max(abs(a[s] - b[s]) for s in a) <= 1e-6
    for x, y in zip(final_weights(stopped), final_weights(straight)):
        np.testing.assert_allclose(x, y, atol=1e-6)


# --- Fine-tuning: a non-finite loss stops the run. ----------------------------

def _small_finetune(task="rotten_tomatoes", **data):
    """``small_config`` with a 1-layer, 16-wide bert_tiny and fewer steps."""
    config = small_config(task, model="bert_tiny", **data)
    config.train.max_steps_per_epoch = 3
    config.data.max_train_examples = 48
    config.data.max_eval_examples = 16
    config.model_overrides = {"num_layers": 1, "hidden_dim": 16,
                              "num_heads": 2, "intermediate_dim": 32}
    return config


class _PoisonAfter(Hook):
    """Turns one weight into NaN right after the checkpoint of ``step``
    (a diverged step)."""

    def __init__(self, step):
        self.step = step

    def on_checkpoint(self, trainer, step):
        if step == self.step:
            kernel = trainer.objective.model.weights[0]
            value = kernel.numpy()
            value[0, 0] = np.nan
            kernel.assign(value)


def test_non_finite_fine_tuning_loss_stops_and_saves_nothing(tmp_path):
    workdir = str(tmp_path / "run")
    config = _small_finetune()
    config.train.epochs = 2
    with pytest.raises(NonFiniteLossError,
                       match=r"steps 4\.\.4.*ckpt-3 and was kept"):
        finetune(config, workdir, hooks=[_PoisonAfter(3)])
    # The last good state: epoch 1's checkpoint (step 3).
    assert [s for s, _ in find_checkpoints(
        os.path.join(workdir, "checkpoints"))] == [3]
    assert not os.path.exists(os.path.join(workdir, "final"))
    model = TrimzooClassifier.from_preset(os.path.join(workdir, "best"))
    assert all(np.isfinite(w).all() for w in model.get_weights())
    record = _strict_json(os.path.join(workdir, "metrics.json"))
    assert [e["epoch"] for e in record["evals"]] == [1]


@pytest.mark.slow
def test_interrupted_fine_tuning_resumes_exactly(tmp_path):
    """Killed after epoch 1 and resumed, a fine-tuning run (dropout on)
    ends with the weights of the run trained straight through: the loop
    restores the weights, the optimizer, the step, the dropout RNG and the
    position in the shuffled input (bitwise equal)."""
    config = _small_finetune()
    config.train.epochs = 2
    config.train.dropout = 0.1
    stopped, straight = str(tmp_path / "stopped"), str(tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        finetune(config, stopped, hooks=[StopAfter(3)])
    assert not os.path.exists(os.path.join(stopped, "final"))
    resumed = finetune(config, stopped)
    finetune(config, straight)
    weights = [TrimzooClassifier.from_preset(
        os.path.join(folder, "final")).get_weights()
        for folder in (stopped, straight)]
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    assert [e["epoch"] for e in resumed["evals"]] == [1, 2]
    losses = [[(e["step"], e["loss"]) for e in read_metrics(folder)]
              for folder in (stopped, straight)]
    assert losses[0] == losses[1]


@pytest.mark.slow
def test_diverged_fine_tune_tool_exits_non_zero(tmp_path):
    """Learning rate 1e8 without runlocal, the architecture set through
    --config.model_overrides: exit status 1, a message, no saved model."""
    workdir = tmp_path / "run"
    cmd = [PYTHON, os.path.join(ROOT, "tools", "finetune.py"),
           "--config=" + os.path.join(ROOT, "configs", "finetune.py")
           + ":model=bert_tiny,task=rotten_tomatoes",
           f"--workdir={workdir}", "--strategy=cpu",
           "--config.model_overrides.num_layers=1",
           "--config.model_overrides.hidden_dim=16",
           "--config.model_overrides.intermediate_dim=32",
           "--config.max_seq_length=32", "--config.train.epochs=1",
           "--config.train.learning_rate=1e8",
           "--config.train.warmup_fraction=0",
           "--config.train.max_steps_per_epoch=20",
           "--config.data.max_train_examples=320",
           "--config.data.max_eval_examples=16"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                            env=env, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Non-finite training loss" in result.stderr
    assert "Traceback" not in result.stderr
    config = json.load(open(workdir / "config.json"))
    assert config["model_overrides"] == {"num_layers": 1, "hidden_dim": 16,
                                         "intermediate_dim": 32}
    for name in ("best", "final"):
        assert not os.path.exists(workdir / name)
    if os.path.exists(workdir / "metrics.json"):
        _strict_json(workdir / "metrics.json")


def test_model_overrides_accept_every_backbone_argument():
    config = finetune_config("model=bert_tiny")
    config.model_overrides.num_layers = 1
    config.model_overrides.attention_normalizer = "relu"
    config.model_overrides.ffn_layers = (True, False)
    check_override_flags(["--config.model_overrides.layer_norm_epsilon=1e-6"])
    with pytest.raises(TypeError, match="Did you mean 'num_layers'"):
        check_override_flags(["--config.model_overrides.num_layer=1"])
    # A misspelt name set in Python fails before anything is written.
    config.model_overrides = {"hiden_dim": 8}
    with pytest.raises(TypeError, match="Did you mean 'hidden_dim'"):
        finetune(config, "/nonexistent/never-created")


# --- Teachers: a task.json imports nothing. -----------------------------------

def test_teacher_task_json_cannot_import_a_module(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "teacher_payload.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nclass Task:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for module, name in (("teacher_payload", "Task"), ("os", "system")):
        folder = tmp_path / f"teacher_{module}"
        folder.mkdir()
        (folder / "task.json").write_text(json.dumps({
            "module": module, "class_name": name, "config": {},
            "registered_name": f"{module}>{name}"}))
        with pytest.raises(ValueError, match="never imports a module"):
            teachers.load_teacher(str(folder))
    assert not marker.exists()
    assert "teacher_payload" not in sys.modules
    # Allowed: trimzoo's and keras-hub's masked-LM classes.
    allowed = folders.allowed_task_classes()
    assert {"TrimzooMaskedLM", "BertMaskedLM"} <= set(allowed)


# --- Fault injection: kill a pretraining run again and again. -----------------

FAULT_OVERRIDES = dict(train__steps=24, train__checkpoint_every=1,
                       train__keep_checkpoints=3, train__log_every=4)


@pytest.mark.slow
def test_killed_again_and_again_ends_with_the_uninterrupted_weights(
        vocab_dir, tmp_path):
    """SIGKILL at random points, several during checkpoint writes (a
    ``_temp`` folder present), four times in a row; the finished run equals
    an uninterrupted one, weight for weight."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS) + "\n")
    overrides = dict(FAULT_OVERRIDES, data__input=str(corpus))
    workdir = tmp_path / "killed"
    directory = workdir / "checkpoints"
    cmd = [PYTHON, os.path.join(ROOT, "tools", "pretrain.py"),
           "--config=" + os.path.join(ROOT, "configs", "pretrain.py")
           + ":model=bert_tiny", f"--workdir={workdir}", "--strategy=cpu",
           *as_flags(vocab_dir, **overrides)]
    rng = random.Random(0)
    kills = []
    for attempt in range(4):
        before = find_checkpoints(str(directory))
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        deadline = time.time() + 120
        # Wait for a new checkpoint, then kill at a random moment; every
        # other time, the moment a checkpoint write is under way.
        while find_checkpoints(str(directory)) == before:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.time() < deadline, "no progress"
            time.sleep(0.005)
        if attempt % 2:
            wait = time.time() + 3
            while not any(n.endswith("_temp") for n in os.listdir(directory)):
                if proc.poll() is not None or time.time() > wait:
                    break
        else:
            time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        kills.append(sorted(os.listdir(directory)))
    assert not os.path.exists(workdir / "final"), kills
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    straight = str(tmp_path / "straight")  # Checkpoints change nothing.
    pretrain.run(tiny_config(vocab_dir, **dict(
        overrides, train__checkpoint_every=24)), straight)
    killed_summary = json.load(open(workdir / "summary.json"))
    straight_summary = json.load(open(os.path.join(straight,
                                                   "summary.json")))
    assert killed_summary["start_step"] > 0, kills
    assert killed_summary["weights_sha256"] == \
        straight_summary["weights_sha256"], kills
    steps = [m["step"] for m in pretrain.read_metrics(str(workdir))]
    assert steps == [1, *range(4, 25, 4)], steps
