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
exactly the tested objective. The teacher is loaded and checked by
``trimzoo.checkpoints.teachers.load_classifier_teacher``.
"""

import keras
import tensorflow as tf

from trimzoo.training.objectives import ClassifierDistillationObjective


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
