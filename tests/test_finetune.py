"""Fine-tuning: the trainer, resume, configs and the tool."""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import keras
import keras_hub
import numpy as np
import pytest

from configs.finetune import get_config
from trimzoo.data import encode_dataset, load_task_data
from trimzoo.models.tokenizers import load_tokenizer
from trimzoo.models import precision as precision_lib
from trimzoo.training import finetune as finetune_lib
from trimzoo.training.checkpointing import find_checkpoints
from trimzoo.training.evaluation import predict_labels
from trimzoo.training.finetune import (_limit, build_model, default_tokenizer,
                                       finetune, length_buckets,
                                       parse_drop_spec)
from trimzoo.training.loop import Hook
from trimzoo.training.optimizers import create_optimizer
from trimzoo.training.precision import masked_lm_step
from trimzoo.utils import hardware

from helpers import StopAfter, small_config, write_keyword_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_parse_drop_spec():
    assert parse_drop_spec("") is None
    assert parse_drop_spec("top:2") == {"strategy": "top", "k": 2}
    assert parse_drop_spec("layers:9,10,11") == {"layers": [9, 10, 11]}
    assert parse_drop_spec("contribution:0.95") == {
        "strategy": "contribution", "threshold": 0.95}
    assert parse_drop_spec("contribution:k=3") == {
        "strategy": "contribution", "k": 3}
    for bad in ("top", "middle:2", "top:two"):
        with pytest.raises(ValueError, match="drop_layers"):
            parse_drop_spec(bad)


@pytest.mark.slow
def test_finetune_writes_everything_and_resumes(tmp_path):
    """Interrupted after epoch 1 (6 steps) and resumed, the run writes
    everything once (exact resume against a straight run:
    tests/test_run_reliability.py)."""
    workdir = str(tmp_path / "run")
    config = small_config()
    config.train.epochs = 2
    with pytest.raises(KeyboardInterrupt):
        finetune(config, workdir, hooks=[StopAfter(6)])
    assert [s for s, _ in find_checkpoints(
        os.path.join(workdir, "checkpoints"))] == [6]
    assert os.path.isdir(os.path.join(workdir, "best"))
    assert not os.path.exists(os.path.join(workdir, "final"))

    record = finetune(config, workdir)
    assert [e["epoch"] for e in record["evals"]] == [1, 2]
    assert record["steps"] == 12
    # The test metrics are the best model's, recomputed here from best/.
    best = keras_hub.models.TextClassifier.from_preset(
        os.path.join(workdir, "best"))
    test, spec = load_task_data("rotten_tomatoes", "test")
    test = _limit(test, config.data.max_test_examples, config.seed)
    labels, predictions = predict_labels(best, encode_dataset(
        test, load_tokenizer(os.path.join(workdir, "best")), spec,
        max_seq_length=config.max_seq_length, batch_size=64), spec)
    assert record["test"]["accuracy"] == pytest.approx(
        float(np.mean(labels == predictions)))
    for name in ("config.json", "metrics.json", "metrics.jsonl", "best",
                 "final", "tensorboard"):
        assert os.path.exists(os.path.join(workdir, name)), name
    saved = json.load(open(os.path.join(workdir, "metrics.json")))
    assert saved["best"]["metric"] == "validation/accuracy"
    assert len(saved["evals"]) == 2
    # One checkpoint is kept: the last epoch's.
    assert [s for s, _ in find_checkpoints(
        os.path.join(workdir, "checkpoints"))] == [12]
    final = keras_hub.models.TextClassifier.from_preset(
        os.path.join(workdir, "final"))
    assert final.backbone.num_layers == 3
    # A third call has nothing left to train and changes nothing.
    again = finetune(config, workdir)
    assert len(again["evals"]) == 2

    changed = small_config()
    changed.train.epochs = 2
    changed.train.learning_rate = 0.5
    with pytest.raises(ValueError, match="learning_rate"):
        finetune(changed, workdir)


@pytest.mark.slow
@pytest.mark.parametrize("bucket_width,layer_decay", [(0, 1.0), (8, 0.8)])
def test_bucket_width_and_layer_decay_reach_the_training_run(
        tmp_path, monkeypatch, bucket_width, layer_decay):
    import trimzoo.training.finetune as finetune_module
    from trimzoo.training.optimizers import LayerDecayAdamW

    seen = {"boundaries": [], "optimizers": []}

    def recording_encode(*args, **kwargs):
        seen["boundaries"].append((kwargs.get("repeat", False),
                                   kwargs.get("bucket_boundaries")))
        return encode_dataset(*args, **kwargs)

    def recording_optimizer(*args, **kwargs):
        opt = create_optimizer(*args, **kwargs)
        seen["optimizers"].append(opt)
        return opt

    monkeypatch.setattr(finetune_module, "encode_dataset", recording_encode)
    monkeypatch.setattr(finetune_module, "create_optimizer",
                        recording_optimizer)
    config = small_config(bucket_width=bucket_width)
    config.train.epochs = 1
    config.train.max_steps_per_epoch = 2
    config.train.layer_decay = layer_decay
    finetune(config, str(tmp_path / "run"))
    # The training split (the one repeated) is encoded with the configured
    # buckets (max_seq_length 32); evaluation splits are never bucketed.
    expected = [9, 17, 25] if bucket_width else None
    assert [b for repeat, b in seen["boundaries"] if repeat] == [expected]
    assert all(b is None for repeat, b in seen["boundaries"] if not repeat)
    (opt,) = seen["optimizers"]
    if layer_decay == 1.0:
        assert not isinstance(opt, LayerDecayAdamW)
    else:
        assert isinstance(opt, LayerDecayAdamW)
        assert (opt.num_layers, opt.layer_decay) == (3, layer_decay)


def test_bad_bucket_width_is_refused():
    for width in (-1, 2.5, 32, 40):
        with pytest.raises(ValueError, match="bucket_width"):
            length_buckets(width, 32)


class _Policy(Hook):
    def on_log(self, trainer, step, values):
        self.name = trainer.objective.model.backbone.dtype_policy.name


@pytest.mark.slow
def test_bfloat16_trains_and_saves_loadable_float32_presets(tmp_path):
    workdir = str(tmp_path / "run")
    config = small_config()
    config.train.precision = "bfloat16"
    policy = _Policy()
    record = finetune(config, workdir, hooks=[policy])
    assert policy.name == "mixed_bfloat16"  # The run trained in bfloat16,
    assert keras.config.dtype_policy().name == "float32"  # then restored.
    assert record["precision"] == {"precision": "bfloat16",
                                   "reason": "asked for",
                                   "policy": "mixed_bfloat16"}
    assert json.load(open(os.path.join(workdir, "metrics.json")))[
        "precision"]["precision"] == "bfloat16"
    assert "accuracy" in record["test"]  # best/ was reloaded for the test.
    for folder in ("best", "final"):
        loaded = keras_hub.models.TextClassifier.from_preset(
            os.path.join(workdir, folder))
        assert loaded.backbone.dtype_policy.name == "float32"


def _build_instead_of_training(monkeypatch):
    """``finetune`` runs up to the model build (under the run's dtype
    policy) and returns; what it built and was given land in ``seen``."""
    seen = {}

    def build_only(config, workdir, strategy, hooks, *rest):
        seen["policy"] = keras.config.dtype_policy().name
        seen["model"] = build_model(config, SimpleNamespace(num_classes=2))[0]
        seen["precision"] = rest[0] if rest else None
        return {}

    monkeypatch.setattr(finetune_lib, "_finetune", build_only)
    return seen


def test_precision_bfloat16_builds_the_model_in_bfloat16(
        tmp_path, monkeypatch, capsys):
    seen = _build_instead_of_training(monkeypatch)
    config = small_config()
    config.train.precision = "bfloat16"
    finetune(config, str(tmp_path / "run"))
    model = seen["model"]
    assert seen["policy"] == model.backbone.dtype_policy.name == (
        "mixed_bfloat16")
    blocks = [layer for layer in model.backbone.layers
              if "transformer" in layer.name]
    assert blocks and {b.compute_dtype for b in blocks} == {"bfloat16"}
    assert {v.dtype for v in model.weights} == {"float32"}
    x = {"token_ids": np.ones((2, 8), "int32"),
         "segment_ids": np.zeros((2, 8), "int32"),
         "padding_mask": np.ones((2, 8), "int32")}
    hidden = model.backbone(x)["sequence_output"]
    assert keras.backend.standardize_dtype(hidden.dtype) == "bfloat16"
    assert model.predict(x, verbose=0).dtype == np.float32  # float32 logits
    assert keras.config.dtype_policy().name == "float32"  # restored
    assert seen["precision"] == {"precision": "bfloat16",
                                 "reason": "asked for",
                                 "policy": "mixed_bfloat16"}
    assert "Precision: bfloat16 (asked for)." in capsys.readouterr().out


def test_auto_precision_without_bf16_units_is_float32(tmp_path, monkeypatch):
    seen = _build_instead_of_training(monkeypatch)
    real = hardware.cpu_features

    def no_measurement():
        raise AssertionError("no bfloat16 units: nothing to measure")

    monkeypatch.setattr(precision_lib, "measure_bf16_speedup", no_measurement)
    monkeypatch.setattr(hardware, "cpu_features", lambda cpuinfo=None: real(
        "model name : EPYC 7B13\nflags : fpu avx2 fma"))
    config = small_config()
    config.train.precision = "auto"
    finetune(config, str(tmp_path / "run"))
    assert seen["policy"] == "float32"
    assert seen["model"].backbone.dtype_policy.name == "float32"
    assert seen["precision"] == {
        "precision": "float32",
        "reason": "auto: this CPU has no bfloat16 units",
        "policy": "float32"}
    # The same flags with bfloat16 units and a measured gain: bfloat16.
    measured = []
    monkeypatch.setattr(precision_lib, "measure_bf16_speedup",
                        lambda **kw: measured.append(kw) or 1.8)
    monkeypatch.setattr(hardware, "cpu_features", lambda cpuinfo=None: real(
        "model name : Xeon\nflags : fpu avx2 fma amx_bf16"))
    finetune(config, str(tmp_path / "run2"))
    assert seen["model"].backbone.dtype_policy.name == "mixed_bfloat16"
    # auto timed a training step at the run's batch size.
    assert measured == [{"batch_size": config.train.batch_size,
                         "train_step": masked_lm_step}]
    assert seen["precision"]["reason"] == (
        "auto: amx_bf16; bfloat16 measured 1.80x float32 for a training "
        f"step at batch {config.train.batch_size}")


def test_unknown_precision_is_refused(tmp_path, monkeypatch):
    def must_not_run(*args):
        raise AssertionError("an unknown precision reached the run")

    monkeypatch.setattr(finetune_lib, "_finetune", must_not_run)
    config = small_config()
    config.train.precision = "fp8"
    with pytest.raises(ValueError, match=r"train.precision must be one of "
                       r"\['auto', 'float32', 'bfloat16', 'float16'\], "
                       r"got 'fp8'"):
        finetune(config, str(tmp_path / "run"))
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.slow
def test_glue_pair_and_regression_tasks_with_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    for task in ("glue/mrpc", "glue/stsb"):
        config = small_config(task=task)
        config.train.max_steps_per_epoch = 2
        with tfds.testing.mock_data(num_examples=24):
            record = finetune(config, str(tmp_path / task.replace("/", "_")))
        metrics = record["evals"][-1]["validation"]
        if task == "glue/mrpc":
            assert set(metrics) >= {"accuracy", "f1"}
        else:
            assert set(metrics) >= {"pearson", "spearman"}


@pytest.mark.slow
def test_files_task_and_mirrored_strategy(tmp_path, two_cpu_strategy):
    """A files task trained on 2 replicas learns the keyword task: far
    above the 50% a constant (majority) prediction gets."""
    write_keyword_task(tmp_path)
    config = small_config(task="files",
                          train_files=str(tmp_path / "train.csv"),
                          validation_files=str(tmp_path / "validation.csv"),
                          text_column="review", label_column="sentiment")
    config.train.epochs = 6  # 5 steps each
    config.train.learning_rate = 2e-3
    config.train.warmup_fraction = 0.0
    config.train.dropout = 0.0
    record = finetune(config, str(tmp_path / "run"),
                      strategy=two_cpu_strategy)
    assert record["evals"][-1]["validation"]["accuracy"] >= 0.9, record


@pytest.mark.slow
def test_jit_compile_option(tmp_path):
    """train.jit_compile XLA-compiles the loop's step, is off by default,
    and both settings train the same function (equal losses, dropout
    off)."""
    assert small_config().train.jit_compile is False
    losses = {}
    for jit in (True, False):
        config = small_config()
        config.train.jit_compile = jit
        config.train.dropout = 0.0
        config.train.max_steps_per_epoch = 3
        record = finetune(config, str(tmp_path / f"jit_{jit}"),
                          hooks=[_RecordJit(losses, jit)])
        assert record["evals"]
    assert losses[True][0] is True and losses[False][0] is False
    assert losses[True][1] == pytest.approx(losses[False][1], rel=1e-5)


class _RecordJit(Hook):
    def __init__(self, record, key):
        self.record, self.key = record, key

    def on_log(self, trainer, step, values):
        self.record[self.key] = (trainer.jit_compile, values["loss"])


@pytest.mark.slow
def test_tool_runs_with_flag_overrides(tmp_path):
    workdir = tmp_path / "tool"
    cmd = [sys.executable, os.path.join(ROOT, "tools", "finetune.py"),
           "--config=" + os.path.join(ROOT, "configs", "finetune.py")
           + ":model=bert_tiny,task=rotten_tomatoes,runlocal=True",
           f"--workdir={workdir}", "--config.train.max_steps_per_epoch=3",
           "--config.data.max_eval_examples=16", "--strategy=cpu"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.load(open(workdir / "config.json"))
    assert config["train"]["max_steps_per_epoch"] == 3
    assert config["model"] == "bert_tiny"


def test_finetune_config_arguments():
    config = get_config("model=bort,task=glue/qnli,drop_layers=top:2")
    assert (config.model, config.task, config.drop_layers) == (
        "bort", "glue/qnli", "top:2")
    with pytest.raises(ValueError, match="valid keys"):
        get_config("modle=bort")


@pytest.mark.slow
def test_init_checkpoint_with_layer_drop(tmp_path):
    """Poor Man's BERT in the trainer: import, drop the top layer, train."""
    import trimzoo
    from trimzoo.checkpoints import save_pretrained

    tokenizer = default_tokenizer()
    backbone = trimzoo.models.bert_tiny(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=3,
        hidden_dim=32, num_heads=2, intermediate_dim=48)
    folder = str(tmp_path / "pretrained")
    save_pretrained(backbone, tokenizer, folder)
    for spec, kept in (("top:1", 2), ("contribution:k=2", 1)):
        config = small_config()
        config.model_overrides = {}
        config.init_checkpoint = folder
        config.drop_layers = spec
        config.train.max_steps_per_epoch = 2
        record = finetune(config, str(tmp_path / spec.replace(":", "_")))
        assert record["layers_before_drop"] == 3
        assert record["num_layers"] == kept
        final = keras_hub.models.TextClassifier.from_preset(
            str(tmp_path / spec.replace(":", "_") / "final"))
        assert final.backbone.num_layers == kept
        # The imported embeddings were kept: same vocabulary, and weights
        # within two small AdamW steps of the imported ones (a fresh
        # initialisation differs by ~0.02 per weight).
        assert final.backbone.vocabulary_size == tokenizer.vocabulary_size()
        imported = backbone.token_embedding.embeddings.numpy()
        tuned = final.backbone.token_embedding.embeddings.numpy()
        assert np.abs(tuned - imported).max() < 1e-3


def test_build_model_warns_on_random_weights_and_describes_the_model(caplog):
    from trimzoo.data import load_task_data as load
    from trimzoo.training.finetune import build_model

    _, spec = load("rotten_tomatoes", "validation")
    config = small_config(model="bert_tiny")
    config.model_overrides = {"num_layers": 1, "hidden_dim": 16,
                              "num_heads": 2, "intermediate_dim": 32}
    with caplog.at_level("WARNING", logger="trimzoo"):
        _, _, info = build_model(config, spec)
    assert "RANDOM weights" in caplog.text and "init_checkpoint=minilm" in (
        caplog.text)
    assert info["random_init"] is True
    assert info["model"] == {
        "preset": "bert_tiny", "init_checkpoint": None, "num_layers": 1,
        "hidden_dim": 16, "num_heads": 2, "intermediate_dim": 32,
        "vocabulary_size": 30522}


def test_init_checkpoint_names_the_embedded_checkpoint(caplog):
    from trimzoo.data import load_task_data as load
    from trimzoo.training.finetune import _set_model_overrides, build_model

    _, spec = load("rotten_tomatoes", "validation")
    for name in ("minilm", "embedded:minilm"):
        config = _set_model_overrides(
            get_config(f"task=rotten_tomatoes,init_checkpoint={name}"))
        caplog.clear()
        with caplog.at_level("WARNING", logger="trimzoo"):
            _, tokenizer, info = build_model(config, spec)
        assert "RANDOM" not in caplog.text
        assert info["model"] == {
            "preset": None, "init_checkpoint": name, "num_layers": 6,
            "hidden_dim": 384, "num_heads": 12, "intermediate_dim": 1536,
            "vocabulary_size": 30522}
        assert tokenizer.vocabulary_size() == 30522
    config = _set_model_overrides(
        get_config("task=rotten_tomatoes,init_checkpoint=embedded:bert"))
    with pytest.raises(ValueError, match="Unknown embedded checkpoint"):
        build_model(config, spec)
