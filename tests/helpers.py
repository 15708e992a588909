"""Helpers shared by the test files (plain functions and constants; the
shared fixtures are in conftest.py)."""

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
if ROOT not in sys.path:  # configs/ is a folder of the checkout
    sys.path.insert(0, ROOT)

from configs.finetune import get_config as finetune_config  # noqa: E402
from configs.pretrain import get_config  # noqa: E402
from trimzoo.models.masked_lm import TrimzooMaskedLM  # noqa: E402
from trimzoo.training import pretrain  # noqa: E402
from trimzoo.training.loop import Hook  # noqa: E402

WORDS = ("the a cat dog bird sat ran flew on in over mat park tree big small "
         "red blue happy sad movie film good bad very not and but is was it "
         "this that story actor plot funny dull").split()
LETTERS = list("abcdefghijklmnopqrstuvwxyz")


def clone_model(model, **config_changes):
    """A new model of the same class built from ``model.get_config()``
    (with ``config_changes`` applied, e.g. ``dtype="float32"``) holding a
    copy of its weights (every trimzoo backbone and task round-trips its
    config)."""
    config = dict(model.get_config())
    config.update(config_changes)
    copy = model.__class__.from_config(config)
    copy.set_weights([w for w in model.get_weights()])
    return copy


def synthetic_lines(n, seed=0, doc_every=6):
    """Sentences of vocabulary words, a blank line between documents."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        lines.append(" ".join(rng.choice(WORDS, rng.integers(3, 14))) + ".")
        if i % doc_every == doc_every - 1:
            lines.append("")
    return lines


# Shared by the in-process and command-line runs of the same experiment.
TINY_OVERRIDES = {
    "model_overrides.num_layers": 2,
    "model_overrides.hidden_dim": 16,
    "model_overrides.num_heads": 2,
    "model_overrides.intermediate_dim": 32,
    "data.max_seq_length": 24,
    "data.shuffle_buffer": 64,
    "train.batch_size": 8,
    "train.steps": 6,
    "train.warmup_steps": 1,
    "train.learning_rate": 1e-3,
    "train.log_every": 1,
    "train.checkpoint_every": 100,
    "train.steps_per_execution": 1,
    "train.benchmark_pipeline_batches": 0,
}


def tiny_config(vocab_dir, model="bert_tiny", **overrides):
    config = get_config(f"model={model}")
    values = {**TINY_OVERRIDES, "data.vocab": vocab_dir}
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    for key, value in values.items():
        node = config
        *parents, leaf = key.split(".")
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return config


def as_flags(vocab_dir, **overrides):
    values = {**TINY_OVERRIDES, "data.vocab": vocab_dir}
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return [f"--config.{k}={v}" for k, v in values.items()]


def losses(workdir):
    return {m["step"]: m["loss"] for m in pretrain.read_metrics(workdir)}


def final_weights(workdir):
    model = TrimzooMaskedLM.from_preset(os.path.join(workdir, "final"))
    return model.get_weights()


# --- Fine-tuning. -------------------------------------------------------------

def small_config(task="rotten_tomatoes", model="trimbert_mini", **data):
    config = finetune_config(f"model={model},task={task},runlocal=True")
    config.max_seq_length = 32
    config.train.max_steps_per_epoch = 6
    config.data.max_train_examples = 96
    config.data.max_eval_examples = 32
    config.model_overrides = {"num_layers": 3, "hidden_dim": 32,
                              "num_heads": 2, "intermediate_dim": 48}
    for key, value in data.items():
        config.data[key] = value
    return config


def write_keyword_task(folder, seed=0):
    """A learnable task in CSV files: reviews made of positive words are
    ``pos``, of negative words ``neg`` (balanced, 40 rows per split)."""
    rng = np.random.default_rng(seed)
    words = {"pos": ["good", "great", "fine", "happy", "funny"],
             "neg": ["bad", "awful", "dull", "sad", "boring"]}
    for split in ("train", "validation"):
        with open(folder / f"{split}.csv", "w") as f:
            f.write("review,sentiment\n")
            for i in range(40):
                label = ("pos", "neg")[i % 2]
                f.write(" ".join(rng.choice(words[label], 5)) + ","
                        + label + "\n")


# --- A fine-tuned run folder of a task of the user's own. ---------------------

TOPIC_ROWS = [("stocks fell on the market news", "business"),
              ("the bank raised its rates", "business"),
              ("a late goal won the match", "sport"),
              ("the team lost the final", "sport"),
              ("the telescope found a new planet", "science"),
              ("cells divide in the lab", "science")]


def make_classifier_run(root, num_layers=2):
    """A tiny fine-tuning run folder as ``tools/finetune.py`` leaves it:
    ``RUN/config.json`` (task ``files``: a 3-class topic CSV) and
    ``RUN/best`` (a classifier with its preprocessor and label names).
    Returns ``RUN``."""
    import csv
    import json

    import trimzoo
    from trimzoo.checkpoints.folders import save_classifier
    from trimzoo.models.preprocessors import preprocessor_for
    from trimzoo.models.tokenizers import BertWordPieceTokenizer

    run = os.path.join(str(root), "run")
    os.makedirs(run)
    words = sorted({w for text, _ in TOPIC_ROWS for w in text.split()})
    tokenizer = BertWordPieceTokenizer(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words)
    for split in ("train", "validation"):
        with open(os.path.join(run, f"{split}.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["body", "topic"])
            writer.writerows(TOPIC_ROWS)
    backbone = trimzoo.models.bert_tiny(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=num_layers,
        hidden_dim=16, num_heads=2, intermediate_dim=32,
        max_sequence_length=32)
    model = trimzoo.models.TrimzooClassifier(backbone, num_classes=3,
                                             pooling="mean")
    model.label_names = ["business", "science", "sport"]
    save_classifier(model, preprocessor_for(backbone, tokenizer, 16),
                    os.path.join(run, "best"))
    config = {"task": "files", "model": "bert_base", "data": {
        "train_files": os.path.join(run, "train.csv"),
        "validation_files": os.path.join(run, "validation.csv"),
        "test_files": "", "text_column": "body", "text_pair_column": "",
        "label_column": "topic"}}
    with open(os.path.join(run, "config.json"), "w") as f:
        json.dump(config, f)
    return run


def kill_when_state_has(proc, state_path, key, timeout=600):
    """SIGKILLs ``proc`` once the JSON file ``state_path`` has a non-empty
    ``key`` (polled every 50 ms) and returns that state; fails the test if
    ``proc`` ended first (with its stderr's end)."""
    import json
    import signal
    import time

    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            with open(state_path) as f:
                if json.load(f)[key]:
                    break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with open(state_path) as f:
        return json.load(f)  # written atomically: never torn


class StopAfter(Hook):
    """A training-loop hook that interrupts the run right after the
    checkpoint of ``step`` (as a kill there would)."""

    def __init__(self, step):
        self.step = step

    def on_checkpoint(self, trainer, step):
        if step == self.step:
            raise KeyboardInterrupt("simulated interruption")
