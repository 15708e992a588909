"""Fine-tuning's evaluation: the task's official metrics on the validation
split(s) after every epoch, the record in ``metrics.json`` and the best
model kept as a preset folder; a ``Hook`` of the training loop.
"""

import logging
import os

import numpy as np

from trimzoo.checkpoints.folders import save_classifier
from trimzoo.data import compute_metrics
from trimzoo.training.loop import Hook, NonFiniteLossError
from trimzoo.utils.io import write_json

log = logging.getLogger("trimzoo")


def predict_labels(model, dataset, spec):
    """Returns ``(labels, predictions)`` over a finite ``(x, y)`` dataset:
    class ids (the argmax of the logits), or scores for regression
    (``spec.num_classes == 1``).

    Examples:

    >>> import keras, numpy as np, tensorflow as tf
    >>> from types import SimpleNamespace
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(
    ...     2, kernel_initializer="identity", use_bias=False)])
    >>> ds = tf.data.Dataset.from_tensor_slices(
    ...     (np.array([[1., 0.], [0., 1.]]), np.array([0, 0]))).batch(2)
    >>> labels, predictions = predict_labels(model, ds,
    ...                                      SimpleNamespace(num_classes=2))
    >>> labels.tolist(), predictions.tolist()
    ([0, 0], [0, 1])
    """
    labels = np.concatenate([y for _, y in dataset.as_numpy_iterator()])
    logits = model.predict(dataset.map(lambda x, y: x), verbose=0)
    if spec.num_classes == 1:
        predictions = logits[:, 0]
    else:
        predictions = np.argmax(logits, axis=-1)
    return labels, predictions


def evaluate_splits(model, eval_sets, spec):
    """``{split: {metric: value}}``: the official metrics of ``spec`` on
    each encoded split of ``eval_sets``."""
    results = {}
    for split, dataset in eval_sets.items():
        labels, predictions = predict_labels(model, dataset, spec)
        results[split] = compute_metrics(spec, labels, predictions)
    return results


def require_finite_weights(model, what):
    """Refuses (``NonFiniteLossError``) to save ``what`` from a model with
    NaN or infinite weights."""
    bad = [w.path for w in model.weights
           if not np.isfinite(np.asarray(w.numpy(), "float32")).all()]
    if bad:
        raise NonFiniteLossError(
            f"The model has non-finite weights ({len(bad)} tensors, e.g. "
            f"{bad[:3]}); {what} was not saved.")


def lookup_metric(results, metric):
    """``"validation/accuracy"`` -> its value in ``results``.

    >>> lookup_metric({"validation": {"accuracy": 0.5}},
    ...               "validation/accuracy")
    0.5
    """
    split, _, name = metric.partition("/")
    try:
        return float(results[split][name])
    except KeyError:
        raise ValueError(
            f"best_metric {metric!r} is not among the evaluated metrics "
            f"{ {s: sorted(m) for s, m in results.items()} }."
        ) from None


class EpochEvaluator(Hook):
    """Evaluates the classifier at every evaluation step of the loop (one
    per epoch), appends the entry to ``record["evals"]``, keeps the best
    model (by ``best_metric``) in ``workdir/best`` and writes
    ``workdir/metrics.json``; the metrics are logged with the training's
    (``metrics.jsonl``, TensorBoard) as ``<split>/<metric>``.

    Args:
        classifier: the model evaluated and saved (under distillation, the
            student).
        eval_sets: ``{split: encoded dataset}``.
        spec: the task's ``TaskSpec``.
        workdir: str.
        best_metric: str, ``"<split>/<metric>"``.
        preprocessor: saved with ``best/``.
        record: dict, the run's ``metrics.json`` record (updated in place).
        steps_per_epoch: int. Steps of one epoch (entries are numbered by
            epoch).
    """

    def __init__(self, classifier, eval_sets, spec, workdir, best_metric,
                 preprocessor, record, steps_per_epoch):
        self.classifier = classifier
        self.eval_sets = eval_sets
        self.spec = spec
        self.workdir = workdir
        self.best_metric = best_metric
        self.preprocessor = preprocessor
        self.record = record
        self.steps_per_epoch = int(steps_per_epoch)
        self._loss = self._steps = 0.0
        self._last_step = None

    def on_log(self, trainer, step, values):
        # The epoch's training loss: the logged intervals' means weighted
        # by their steps.
        last = self._last_step
        if last is None:
            last = step - 1 if step == 1 else (
                (step - 1) // self.steps_per_epoch * self.steps_per_epoch)
        self._loss += float(values["loss"]) * (step - last)
        self._steps += step - last
        self._last_step = step

    def on_evaluate(self, trainer, step):
        epoch = -(-step // self.steps_per_epoch)
        results = evaluate_splits(self.classifier, self.eval_sets, self.spec)
        entry = {"epoch": epoch,
                 "train_loss": self._loss / max(self._steps, 1.0),
                 **results}
        self._loss = self._steps = 0.0
        self.record["evals"].append(entry)
        score = lookup_metric(results, self.best_metric)
        best = self.record.get("best")
        if best is None or score > best["score"]:
            self.record["best"] = {"epoch": epoch, "score": score,
                                   "metric": self.best_metric}
            require_finite_weights(self.classifier, "best/")
            save_classifier(self.classifier, self.preprocessor,
                            os.path.join(self.workdir, "best"),
                            overwrite=True)
        write_json(os.path.join(self.workdir, "metrics.json"), self.record)
        print(f"epoch {epoch}: " + ", ".join(
            f"{split}/{k}={v:.4f}" for split, m in results.items()
            for k, v in m.items()), flush=True)
        return {f"{split}/{name}": float(value)
                for split, metrics in results.items()
                for name, value in metrics.items()}
