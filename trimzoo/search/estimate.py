"""Candidates built from a teacher, and their error estimate.

``build_candidate`` makes the candidate's ``TrimzooBackbone`` either by
weight inheritance (``init="inherit"``: ``trimzoo.models.extract`` keeps
the teacher's most important heads, FFN neurons and hidden dimensions by
``trimzoo.compression`` gradient importance, and the layers
``⌈(k+1)·L/D⌉ − 1``, evenly spaced and ending at the top) or with the same
architecture and random weights (``init="random"``, the paper's setting).

``estimate_error`` trains a candidate for a fixed small budget with
hidden-state distillation from the teacher (student layer k learns the
teacher layer it was cut from, ``losses.hidden_state_loss`` through the
``HiddenStateDistillationObjective`` and the one training loop,
``trimzoo.training.loop.Trainer``) and returns the held-out error: the mean
squared error of the student's last layer against the teacher's last
layer, divided by the teacher's variance there (the fraction of the
teacher's final representation left unexplained; 0 is a perfect copy).
Narrower candidates learn the teacher's states on their kept hidden
dimensions (the same dimensions for both inits), so no projection is
trained and the error is comparable across widths.
"""

import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from trimzoo.compression import importance_scores, select
from trimzoo.models.extract import extract
from trimzoo.training.loop import Trainer
from trimzoo.training.optimizers import create_optimizer
from trimzoo.training.objectives import HiddenStateDistillationObjective

INITS = ("inherit", "random")


def check_init(init):
    if init not in INITS:
        raise ValueError(f"Unknown init {init!r}. Valid values: "
                         f"{list(INITS)}.")
    return init


def teacher_importance(teacher, data, max_batches=8, mask_token_id=None):
    """JSON-able gradient importance of the teacher's heads, FFN neurons
    and hidden dimensions (``trimzoo.compression.importance_scores``), head
    scores normalised per layer."""
    scores = importance_scores(teacher, data, "gradient",
                               mask_token_id=mask_token_id,
                               max_batches=max_batches)
    heads = [s / max(np.linalg.norm(s), 1e-20) for s in scores["heads"]]
    return {"heads": [np.asarray(s).tolist() for s in heads],
            "ffn": [None if s is None else np.asarray(s).tolist()
                    for s in scores["ffn"]],
            "hidden": np.asarray(scores["hidden"]).tolist()}


def kept_layers(num_layers, teacher_layers):
    """Teacher layers a D-layer candidate keeps: ``⌈(k+1)·L/D⌉ − 1``.

    >>> kept_layers(2, 6), kept_layers(4, 6), kept_layers(6, 6)
    ([2, 5], [1, 2, 4, 5], [0, 1, 2, 3, 4, 5])
    """
    return [-(-(k + 1) * teacher_layers // num_layers) - 1
            for k in range(num_layers)]


def plan(candidate, scores):
    """The ``extract`` arguments of ``candidate`` under importance
    ``scores`` (``teacher_importance``)."""
    layers = kept_layers(candidate.num_layers, len(scores["heads"]))
    heads = [np.asarray(scores["heads"][i]) for i in layers]
    ffn = [np.asarray(scores["ffn"][i]) for i in layers]
    hidden = np.asarray(scores["hidden"])
    kept = {"layers": layers,
            "heads": select(heads, [len(s) - candidate.num_heads
                                    for s in heads]),
            "ffn_neurons": select(ffn, [len(s) - candidate.intermediate_dim
                                        for s in ffn]),
            "hidden_dims": select([hidden],
                                  [len(hidden) - candidate.hidden_dim])[0]}
    if candidate.ffn_every:
        kept["ffn_layers"] = f"every_{candidate.ffn_every}"
    if candidate.normalizer:
        kept["attention_normalizer"] = candidate.normalizer
    return kept


def build_candidate(candidate, teacher, scores, init="inherit", seed=0):
    """``(backbone, plan)`` of ``candidate`` cut from ``teacher``.

    Args:
        candidate: ``trimzoo.search.space.Candidate``.
        teacher: ``TrimzooBackbone``.
        scores: dict from ``teacher_importance``.
        init: str. ``"inherit"`` or ``"random"``. Defaults to
            ``"inherit"``.
        seed: int. Seed of the random initialisation. Defaults to 0.
    """
    check_init(init)
    kept = plan(candidate, scores)
    model = extract(teacher, **kept)
    if init == "random":
        keras.utils.set_random_seed(seed)
        model = type(model).from_config(model.get_config())
    return model, kept


class SubspaceDistillationTask(HiddenStateDistillationObjective):
    """``HiddenStateDistillationObjective`` against the teacher's states on the
    hidden dimensions ``teacher_dims`` (a student narrower than its
    teacher learns those coordinates).

    Args:
        model: the student backbone.
        teacher: the teacher backbone.
        mapping: list of int. Teacher layer of each student layer.
        teacher_dims: list of int. Teacher hidden dimensions, one per
            student hidden dimension.
        last_only: bool. Compare only the last student layer (with the
            last entry of ``mapping``). Defaults to False.
        attention_weight, heads: the attention term (see
            ``HiddenStateDistillationObjective``); ``heads`` from ``plan``.
    """

    equal_widths = False  # the student learns ``teacher_dims`` only

    def __init__(self, model, teacher, mapping, teacher_dims,
                 last_only=False, attention_weight=0.0, heads=None):
        super().__init__(model, teacher, mapping=list(mapping),
                         attention_weight=attention_weight, heads=heads)
        self.teacher_dims = tf.constant(list(teacher_dims), tf.int32)
        self.last_only = bool(last_only)
        self.teacher_last = list(mapping)[-1]
        if self.last_only:
            self.mapping = [0]

    def call(self, batch, training=False):
        outputs = super().call(batch, training)
        teacher = [tf.gather(s, self.teacher_dims, axis=-1)
                   for s in outputs["teacher_states"]]
        student = outputs["student_states"]
        if self.last_only:
            student, teacher = [student[-1]], [teacher[self.teacher_last]]
        # Anything else (the attention maps) is kept as it is.
        return {**outputs, "student_states": student,
                "teacher_states": teacher}


def _dataset(inputs, batch_size, start=0, repeat=True):
    ds = tf.data.Dataset.from_tensor_slices(inputs)
    if repeat:
        ds = ds.repeat().skip(start)
    return ds.batch(batch_size, drop_remainder=repeat).map(lambda x: (x,))


def _teacher_variance(teacher, eval_inputs, dims, batch_size):
    """Per-dimension variance of the teacher's last layer over real tokens,
    averaged over ``dims``."""
    total, total_sq, count = 0.0, 0.0, 0.0
    for (x,) in _dataset(eval_inputs, batch_size, repeat=False):
        out = teacher(x, training=False)["sequence_output"]
        states = tf.gather(tf.cast(out, tf.float64), dims, axis=-1)
        mask = tf.cast(x["padding_mask"], tf.float64)[..., None]
        total += tf.reduce_sum(states * mask, axis=(0, 1))
        total_sq += tf.reduce_sum(tf.square(states) * mask, axis=(0, 1))
        count += float(tf.reduce_sum(mask))
    mean = total / count
    return float(tf.reduce_mean(total_sq / count - tf.square(mean)))


def estimate_error(student, teacher, kept, train_inputs, eval_inputs,
                   workdir, steps=50, batch_size=16, learning_rate=1e-4,
                   keep_checkpoints=False, attention_weight=0.0):
    """Trains ``student`` by hidden-state distillation from ``teacher`` for
    ``steps`` steps in ``workdir`` (resumable) and returns its held-out
    error (see the module docstring).

    Args:
        student: ``TrimzooBackbone``, trained in place.
        teacher: ``TrimzooBackbone``.
        kept: dict from ``plan`` (its ``layers`` and ``hidden_dims``).
        train_inputs, eval_inputs: dicts of int32 arrays (backbone inputs).
        workdir: str. The training loop's folder.
        steps: int. Training steps (0: the error of the initial weights).
        batch_size: int. Defaults to 16.
        learning_rate: float. Peak of warm-up and linear decay. Defaults to
            1e-4.
        keep_checkpoints: bool. Keep the loop's checkpoints. Defaults to
            False (removed once done).
        attention_weight: float. Adds the attention term (student head
            ``h`` of layer ``k`` learns the teacher head it was cut from,
            ``kept["heads"]``) to the training, not to the error. Defaults
            to 0.

    Returns:
        dict with ``error``, ``mse``, ``teacher_variance``, ``steps``, the
        last logged training ``train_loss`` and ``grad_norm``.

    Raises:
        ValueError: too little data, or a student with nothing to train.
    """
    n = len(train_inputs["token_ids"])
    if n < batch_size or not len(eval_inputs["token_ids"]):
        raise ValueError(
            f"The teacher has too little data: {n} training and "
            f"{len(eval_inputs['token_ids'])} held-out sequences for batches "
            f"of {batch_size}.")
    if steps and not student.trainable_weights:
        raise ValueError("The candidate has no trainable weights (is it "
                         "frozen?); its error estimate would be untrained.")
    objective = SubspaceDistillationTask(
        student, teacher, kept["layers"], kept["hidden_dims"],
        attention_weight=attention_weight, heads=kept["heads"])
    summary = {}
    if steps:
        optimizer = create_optimizer(learning_rate, total_steps=steps,
                                     warmup_steps=max(1, steps // 10))
        trainer = Trainer(
            objective, optimizer, workdir,
            lambda b, start, *_: _dataset(train_inputs, b, start),
            # A progress line every tenth of the run (a 300-step heal takes
            # minutes); the logged loss is not part of the estimate.
            total_steps=steps, global_batch_size=batch_size,
            log_every=max(1, steps // 10),
            checkpoint_every=steps, keep_checkpoints=1, jit_compile=False)
        summary = trainer.train()
        if not keep_checkpoints:
            shutil.rmtree(os.path.join(workdir, "checkpoints"),
                          ignore_errors=True)
    evaluator = SubspaceDistillationTask(student, teacher, kept["layers"],
                                         kept["hidden_dims"], last_only=True)
    sums = {}
    for batch in _dataset(eval_inputs, batch_size, repeat=False):
        for name, value in evaluator.evaluate_step(batch).items():
            sums[name] = sums.get(name, 0.0) + float(value)
    mse = evaluator.metrics(sums)["loss"]
    variance = _teacher_variance(teacher, eval_inputs, kept["hidden_dims"],
                                 batch_size)
    return {"error": mse / variance, "mse": mse,
            "teacher_variance": variance, "steps": int(steps),
            "train_loss": summary.get("last_logged", {}).get("loss"),
            "grad_norm": summary.get("last_logged", {}).get("grad_norm")}
