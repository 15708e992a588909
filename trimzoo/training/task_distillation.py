"""Task distillation in fine-tuning: a fine-tuned teacher classifier heals a
smaller student (dropped, pruned, TrimBERT-converted, extracted).

The objective is ``objectives.ClassifierDistillationObjective``'s (the one definition
in ``trimzoo.training.losses``): ``alpha · CE(labels) + (1 - alpha) · T² ·
KL(teacher/T ‖ student/T)`` on the logits, plus, optionally, a weighted
hidden-state MSE between student layer ``i`` and teacher layer
``floor(i · L_t / L_s)``. The teacher runs frozen, without dropout, in the
same step as the student (the inputs are the same encoded batch, so both
must share a vocabulary).

``ObjectiveModel`` lets Keras ``fit`` train any ``Objective``: it wraps the
task's model (the only weights it holds and saves), runs ``Objective.call`` as
its forward pass and ``Objective.compute_loss`` as its loss. Fine-tuning keeps
Keras ``fit`` (callbacks, ``steps_per_execution``, strategies) and trains
exactly the tested objective.
"""

import json
import os

import keras
import tensorflow as tf

from trimzoo.checkpoints.folders import (CLASSIFIER_CLASSES,  # noqa: F401
                                       is_classifier_folder,
                                       load_classifier_folder)
from trimzoo.models.classifier import TrimzooClassifier
from trimzoo.models.tokenizers import load_tokenizer
from trimzoo.training.distill import check_same_vocabulary
from trimzoo.training.objectives import ClassifierDistillationObjective

def load_classifier(path):
    """The ``TrimzooClassifier`` of a preset folder (``RUN/best``, or one
    written by ``save_preset``), after checking that its ``task.json``
    names a classifier class trimzoo knows
    (``trimzoo.checkpoints.folders.load_classifier_folder``).

    Raises:
        FileNotFoundError: no ``task.json`` in ``path``.
        ValueError: ``task.json`` names another class.
    """
    return load_classifier_folder(path)


def load_classifier_teacher(path, num_classes, student, tokenizer,
                            hidden_weight=0.0):
    """Loads and checks a fine-tuned teacher classifier for ``student``.

    Args:
        path: str. The teacher's preset folder (``RUN/best``).
        num_classes: int. The task's number of classes.
        student: ``TrimzooClassifier``. The model to train.
        tokenizer: the student's tokenizer.
        hidden_weight: float. > 0 asks for hidden-state matching, which
            needs the teacher's hidden width.

    Raises:
        ValueError: naming the mismatch: another task (number of classes),
            another vocabulary, a regression task, or widths that cannot be
            matched.
    """
    teacher = load_classifier(path)
    if num_classes < 2:
        raise ValueError(
            "Task distillation compares class distributions; a regression "
            "task (num_classes == 1) cannot be distilled this way.")
    if teacher.num_classes != num_classes:
        raise ValueError(
            f"The teacher {path} predicts {teacher.num_classes} classes but "
            f"the task has {num_classes}: it was fine-tuned on another "
            "task.")
    teacher_tokenizer = None
    if os.path.isfile(os.path.join(os.fspath(path), "tokenizer.json")):
        teacher_tokenizer = load_tokenizer(path)
    check_same_vocabulary(tokenizer, teacher_tokenizer,
                          teacher.backbone.vocabulary_size)
    if hidden_weight and (teacher.backbone.hidden_dim
                          != student.backbone.hidden_dim):
        raise ValueError(
            f"Hidden-state distillation needs equal widths: the student's "
            f"hidden size is {student.backbone.hidden_dim}, the teacher's "
            f"{teacher.backbone.hidden_dim}. Set distill.hidden_weight=0 "
            "(logits only).")
    return teacher


class ObjectiveModel(keras.Model):
    """Keras ``fit`` on an ``Objective``.

    The forward pass is ``task.call``, the loss ``task.compute_loss``'s
    ``loss`` (its other terms are logged as metrics, e.g. ``ce_loss`` and
    ``kd_loss``), plus ``accuracy`` for a task that counts ``correct``
    predictions. Only the task's model is tracked: saved weights and
    checkpoints hold the student, never a teacher.

    Args:
        task: a ``trimzoo.training.objectives.Objective`` whose model is built.

    Examples:

    >>> import keras, numpy as np
    >>> from trimzoo.training.objectives import ClassifierDistillationObjective
    >>> keras.utils.set_random_seed(0)
    >>> student = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> teacher = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> model = ObjectiveModel(ClassifierDistillationObjective(student, teacher, 2))
    >>> model.compile(optimizer="sgd")
    >>> history = model.fit(np.ones((8, 3), "float32"), np.zeros(8, "int32"),
    ...                     epochs=1, verbose=0)
    >>> sorted(history.history)
    ['accuracy', 'ce_loss', 'kd_loss', 'loss']
    >>> len(model.weights) == len(student.weights)
    True
    """

    def __init__(self, task, **kwargs):
        super().__init__(**kwargs)
        self.task = task
        self.student = task.model
        self._terms = {name: keras.metrics.Mean(name=name)
                       for name in task.loss_names if name != "loss"}
        self._accuracy = None
        if getattr(task, "accuracy_name", None):
            self._accuracy = keras.metrics.SparseCategoricalAccuracy(
                name=task.accuracy_name)
        self.built = True

    def call(self, x, training=False):
        return self.task.call((x, None), training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        batch = (x, y) if sample_weight is None else (x, y, sample_weight)
        # Keras sums the replicas' losses: each divides by the global count.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        denominator = tf.maximum(self.task.count(batch), 1.0) * replicas
        terms = self.task.compute_loss(batch, y_pred, denominator=denominator)
        for name, tracker in self._terms.items():
            tracker.update_state(terms[name] * replicas)
        return terms["loss"]

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if self._accuracy is not None:
            self._accuracy.update_state(y, y_pred["logits"])
        return self.get_metrics_result()


def distillation_model(student, teacher, num_classes, alpha, temperature,
                       hidden_weight=0.0):
    """A ``ObjectiveModel`` training ``student`` by task distillation from
    ``teacher`` (``ClassifierDistillationObjective``)."""
    return ObjectiveModel(ClassifierDistillationObjective(
        student, teacher, num_classes, alpha=alpha, temperature=temperature,
        hidden_weight=hidden_weight))
