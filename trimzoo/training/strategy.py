"""Choosing a ``tf.distribute`` strategy from a flag value."""

import logging

import tensorflow as tf

from trimzoo.models.precision import check_precision, resolve_precision
from trimzoo.training.precision import masked_lm_step

STRATEGIES = ("auto", "tpu", "mirrored", "multi_worker", "cpu")


def get_strategy(name="auto", tpu=None, devices=None):
    """Returns a ``tf.distribute.Strategy``.

    Args:
        name: str. ``"tpu"`` (``TPUClusterResolver`` + ``TPUStrategy``),
            ``"mirrored"`` (all local GPUs, or ``devices``),
            ``"multi_worker"`` (``MultiWorkerMirroredStrategy`` from
            ``TF_CONFIG``), ``"cpu"`` (one CPU device) or ``"auto"``: TPU if
            ``tpu`` is given, mirrored over several GPUs, one GPU, else the
            default (single-device) strategy.
        tpu: str or None. TPU name or address (``--tpu``); ``"local"`` for a
            TPU VM.
        devices: list of device names for ``"mirrored"``, e.g.
            ``["/cpu:0", "/cpu:1"]``. Defaults to every GPU.
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"Unknown strategy {name!r}. Valid values: {list(STRATEGIES)}."
        )
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        if tpu:
            name = "tpu"
        elif len(gpus) > 1:
            name = "mirrored"
        elif len(gpus) == 1:
            logging.info("Using one GPU.")
            return tf.distribute.OneDeviceStrategy("/gpu:0")
        else:
            return tf.distribute.get_strategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=tpu or "")
        if tpu not in (None, "", "local"):
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.OneDeviceStrategy("/cpu:0")


def is_tpu(strategy):
    return isinstance(strategy, tf.distribute.TPUStrategy)


def resolve_training_precision(precision, strategy=None, what="precision",
                               batch_size=None):
    """``(precision, reason)`` of a training run: ``precision`` as asked, or
    ``"auto"`` resolved (``trimzoo.models.precision.resolve_precision``:
    bfloat16 where this CPU has bfloat16 units and a step of this
    package's training loop (``trimzoo.training.precision.masked_lm_step``)
    at the run's ``batch_size`` (None: 8) measures faster), bfloat16 under
    a TPU strategy.

    >>> resolve_training_precision("bfloat16")
    ('bfloat16', 'asked for')
    """
    check_precision(precision, what)
    if precision == "auto" and strategy is not None and is_tpu(strategy):
        return "bfloat16", "auto: TPU"
    return resolve_precision(precision, batch_size=batch_size,
                             train_step=masked_lm_step)
