"""Test set-up: quiet TensorFlow, two logical CPUs for distribution tests."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Must happen before TensorFlow initialises its devices: MirroredStrategy
# tests replicate over these two logical CPUs.
_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0],
        [tf.config.LogicalDeviceConfiguration(),
         tf.config.LogicalDeviceConfiguration()],
    )
except RuntimeError:  # already initialised by an earlier import
    pass

import keras  # noqa: E402

# Small dimensions that keep every preset's structure (FFN policy, layernorm
# policy, normaliser, segments) but build in a fraction of a second.
TINY = dict(vocabulary_size=97, hidden_dim=16, num_heads=2,
            intermediate_dim=24, max_sequence_length=32)


def random_inputs(batch=2, length=7, vocabulary_size=97, num_segments=2,
                  seed=0, pad_last=2):
    """Token ids with [CLS]-like first token, optional right padding."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocabulary_size, size=(batch, length)).astype("int32")
    mask = np.ones((batch, length), "int32")
    if pad_last:
        mask[-1, length - pad_last:] = 0
        ids[-1, length - pad_last:] = 0
    segments = rng.integers(0, num_segments, size=(batch, length)).astype(
        "int32") * mask
    return {"token_ids": ids, "segment_ids": segments, "padding_mask": mask}


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture(scope="session")
def two_cpu_strategy():
    """One 2-replica MirroredStrategy for the whole session.

    Several MirroredStrategy objects in one process number their collective
    ops from the same keys, and TensorFlow's collective runtime then mixes
    up their shapes; sharing one instance avoids that.
    """
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    return strategy


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
