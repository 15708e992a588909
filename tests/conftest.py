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

import json  # noqa: E402

import keras  # noqa: E402

from helpers import LETTERS, WORDS, synthetic_lines  # noqa: E402

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


# --- Shared fixtures, built once per session. ----------------------------------

@pytest.fixture(scope="session")
def vocab_dir(tmp_path_factory):
    """A small WordPiece vocabulary (BERT specials, words, characters)."""
    folder = tmp_path_factory.mktemp("vocab")
    tokens = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","]
              + WORDS + LETTERS + ["##" + c for c in LETTERS])
    tokens = list(dict.fromkeys(tokens))  # "a" is a word and a letter
    (folder / "vocab.txt").write_text("\n".join(tokens) + "\n")
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": True}))
    return str(folder)


@pytest.fixture(scope="session")
def tokenizer(vocab_dir):
    from trimzoo.models.tokenizers import load_tokenizer

    return load_tokenizer(vocab_dir)


@pytest.fixture(scope="session")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text("\n".join(synthetic_lines(400, seed=1)) + "\n")
    return str(path)


@pytest.fixture(scope="session")
def finetuned_run(tmp_path_factory):
    """One tiny fine-tuning run (a 3-layer, 32-wide BERT on 2 steps of
    Rotten Tomatoes), shared as a teacher and as a fine-tuned folder:
    ``{"workdir", "best", "record", "stdout", "config"}``. Tests must not
    write into it."""
    import contextlib
    import io
    import os

    from helpers import small_config
    from trimzoo.training.finetune import finetune

    workdir = str(tmp_path_factory.mktemp("finetuned") / "run")
    config = small_config(model="bert_base")  # softmax, both layernorms
    config.train.max_steps_per_epoch = 2
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        record = finetune(config, workdir)
    return {"workdir": workdir, "best": os.path.join(workdir, "best"),
            "record": record, "stdout": out.getvalue(), "config": config}
