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
