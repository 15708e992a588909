"""The task table (GLUE and the embedded Rotten Tomatoes task) and the
official metrics.

A task is data, not code: a :class:`TaskSpec` row says which text features an
example has, how many classes (1 for regression), the label names, the splits
and the metrics. :func:`compute_metrics` turns labels and predictions of one
evaluation split into the task's official metrics.

GLUE metrics follow the benchmark (Wang et al., 2019): CoLA Matthews
correlation; SST-2, QNLI, RTE, WNLI accuracy; MRPC and QQP accuracy and F1 of
the positive class; STS-B Pearson and Spearman correlation; MNLI accuracy on
each of the matched and mismatched validation splits.
"""

import dataclasses

import numpy as np
import scipy.stats

__all__ = [
    "METRICS",
    "TASKS",
    "TaskSpec",
    "compute_metrics",
    "files_task",
    "get_task",
]


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One row of the task table.

    Examples of a task are tuples ``(text, label)`` or ``(text_a, text_b,
    label)``, with texts in the order of ``text_features``.

    Args:
        name: str. Registry key, e.g. ``"glue/sst2"``.
        text_features: tuple of str. Names of the one or two text fields, in
            packing order (``("premise", "hypothesis")`` for MNLI).
        label_names: tuple of str, or None for a regression task.
        metrics: tuple of str. Keys of :data:`METRICS`, the official metrics.
        train_split: str. Defaults to ``"train"``.
        eval_splits: tuple of str. Labelled splits evaluated during
            training. Defaults to ``("validation",)``.
        test_split: str or None. A labelled held-out split for the final
            report, or None (GLUE test labels are private). Defaults to
            None.
        unlabelled_splits: tuple of str. Splits without labels (label -1),
            for predictions only: the GLUE test splits. Defaults to
            ``("test",)``.
        description: str. One line for humans.

    Examples:
    >>> spec = get_task("glue/mrpc")
    >>> spec.num_classes, spec.num_texts, spec.metrics, spec.main_metric
    (2, 2, ('accuracy', 'f1'), 'score')
    """

    name: str
    text_features: tuple
    label_names: tuple | None
    metrics: tuple
    train_split: str = "train"
    eval_splits: tuple = ("validation",)
    test_split: str | None = None
    unlabelled_splits: tuple = ("test",)
    description: str = ""

    def __post_init__(self):
        if len(self.text_features) not in (1, 2):
            raise ValueError(
                f"Task {self.name!r}: text_features must name 1 or 2 "
                f"fields, got {self.text_features!r}.")
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise ValueError(
                f"Task {self.name!r}: unknown metrics {unknown}; valid: "
                f"{sorted(METRICS)}.")
        if self.label_names is not None and len(self.label_names) < 2:
            raise ValueError(
                f"Task {self.name!r}: a classification task needs at least "
                f"two label names, got {self.label_names!r}.")

    @property
    def is_regression(self):
        """True when the label is a float score (``label_names`` is None)."""
        return self.label_names is None

    @property
    def num_classes(self):
        """Output units of the head: number of labels, 1 for regression."""
        return 1 if self.is_regression else len(self.label_names)

    @property
    def num_texts(self):
        """1 for single sentences, 2 for text pairs."""
        return len(self.text_features)

    @property
    def main_metric(self):
        """Key of :func:`compute_metrics`'s result that ranks checkpoints:
        the metric itself for one-metric tasks, else ``"score"`` (their
        mean, the GLUE per-task score)."""
        return self.metrics[0] if len(self.metrics) == 1 else "score"

    @property
    def splits(self):
        """Every split the task knows, train first."""
        test = (self.test_split,) if self.test_split else ()
        return ((self.train_split,) + tuple(self.eval_splits) + test
                + tuple(self.unlabelled_splits))


# --- Metrics -----------------------------------------------------------------


def _binary_counts(labels, predictions):
    labels = labels.astype(np.int64)
    predictions = predictions.astype(np.int64)
    tp = float(np.sum((predictions == 1) & (labels == 1)))
    fp = float(np.sum((predictions == 1) & (labels != 1)))
    fn = float(np.sum((predictions != 1) & (labels == 1)))
    return tp, fp, fn


def accuracy(labels, predictions):
    """Fraction of predicted class ids equal to the labels."""
    return float(np.mean(labels.astype(np.int64) == predictions.astype(
        np.int64)))


def f1(labels, predictions):
    """F1 of the positive class (label 1), as GLUE reports for MRPC and QQP.

    0.0 when there are no true positives (precision or recall undefined).
    """
    # Exact float64 from the confusion counts; keras.metrics.F1Score is a
    # float32 streaming multi-label metric that needs one-hot inputs.
    tp, fp, fn = _binary_counts(labels, predictions)
    if tp == 0.0:
        return 0.0
    return 2.0 * tp / (2.0 * tp + fp + fn)


def matthews_corr(labels, predictions):
    """Matthews correlation coefficient (CoLA), multiclass form (Gorodkin).

    0.0 when either the labels or the predictions are constant (the
    coefficient is undefined there; scikit-learn returns 0.0 too).
    """
    # Keras and SciPy have no Matthews correlation; this is the R_K formula
    # on the confusion matrix, equal to the binary MCC for two classes.
    labels = labels.astype(np.int64)
    predictions = predictions.astype(np.int64)
    classes = np.union1d(labels, predictions)
    index = {c: i for i, c in enumerate(classes)}
    confusion = np.zeros((len(classes), len(classes)), np.float64)
    for t, p in zip(labels, predictions):
        confusion[index[t], index[p]] += 1
    t_sum = confusion.sum(axis=1)
    p_sum = confusion.sum(axis=0)
    n_correct = np.trace(confusion)
    n = confusion.sum()
    cov_ytyp = n_correct * n - np.dot(t_sum, p_sum)
    cov_ypyp = n * n - np.dot(p_sum, p_sum)
    cov_ytyt = n * n - np.dot(t_sum, t_sum)
    if cov_ypyp == 0.0 or cov_ytyt == 0.0:
        return 0.0
    return float(cov_ytyp / np.sqrt(cov_ytyt * cov_ypyp))


def _correlation(fn, labels, predictions):
    labels = labels.astype(np.float64)
    predictions = predictions.astype(np.float64)
    if np.ptp(labels) == 0.0 or np.ptp(predictions) == 0.0:
        return 0.0  # Undefined for a constant input; scipy would warn + NaN.
    return float(fn(labels, predictions)[0])


def pearson(labels, predictions):
    """Pearson correlation (``scipy.stats.pearsonr``); 0.0 if constant."""
    return _correlation(scipy.stats.pearsonr, labels, predictions)


def spearman(labels, predictions):
    """Spearman rank correlation (``scipy.stats.spearmanr``); 0.0 if
    constant."""
    return _correlation(scipy.stats.spearmanr, labels, predictions)


#: Metric name -> ``fn(labels, predictions) -> float``. Classification
#: metrics take class ids, regression metrics take float scores.
METRICS = {
    "accuracy": accuracy,
    "f1": f1,
    "matthews_corr": matthews_corr,
    "pearson": pearson,
    "spearman": spearman,
}


# --- The task table ----------------------------------------------------------

_NLI_3 = ("entailment", "neutral", "contradiction")
_NLI_2 = ("entailment", "not_entailment")

#: Registry key -> :class:`TaskSpec`. GLUE label names and their order are
#: those of ``tensorflow_datasets`` (``glue/<task>``), so tfds and TSV data
#: give the same label ids.
TASKS = {
    spec.name: spec
    for spec in [
        TaskSpec("glue/cola", ("sentence",), ("unacceptable", "acceptable"),
                 ("matthews_corr",),
                 description="CoLA: grammatical acceptability."),
        TaskSpec("glue/sst2", ("sentence",), ("negative", "positive"),
                 ("accuracy",),
                 description="SST-2: binary sentiment of movie-review "
                 "sentences."),
        TaskSpec("glue/mrpc", ("sentence1", "sentence2"),
                 ("not_equivalent", "equivalent"), ("accuracy", "f1"),
                 description="MRPC: paraphrase detection, news."),
        TaskSpec("glue/qqp", ("question1", "question2"),
                 ("not_duplicate", "duplicate"), ("accuracy", "f1"),
                 description="QQP: duplicate Quora questions."),
        TaskSpec("glue/stsb", ("sentence1", "sentence2"), None,
                 ("pearson", "spearman"),
                 description="STS-B: similarity score 0-5 (regression)."),
        TaskSpec("glue/mnli", ("premise", "hypothesis"), _NLI_3,
                 ("accuracy",),
                 eval_splits=("validation_matched", "validation_mismatched"),
                 unlabelled_splits=("test_matched", "test_mismatched"),
                 description="MNLI: 3-way entailment, matched and "
                 "mismatched genres."),
        TaskSpec("glue/qnli", ("question", "sentence"), _NLI_2,
                 ("accuracy",),
                 description="QNLI: does the sentence answer the question."),
        TaskSpec("glue/rte", ("sentence1", "sentence2"), _NLI_2,
                 ("accuracy",),
                 description="RTE: 2-way entailment."),
        TaskSpec("glue/wnli", ("sentence1", "sentence2"),
                 ("not_entailment", "entailment"), ("accuracy",),
                 description="WNLI: Winograd schemas as entailment."),
        TaskSpec("rotten_tomatoes", ("text",), ("rotten", "fresh"),
                 ("accuracy",), test_split="test", unlabelled_splits=(),
                 description="Rotten Tomatoes review snippets (Pang & Lee "
                 "2005), movie-disjoint split; embedded."),
    ]
}


def get_task(name):
    """The :class:`TaskSpec` registered as ``name``.

    Args:
        name: str. A key of :data:`TASKS`, e.g. ``"glue/sst2"`` or
            ``"rotten_tomatoes"``; a ``TaskSpec`` is returned unchanged.

    Raises:
        ValueError: for an unknown name; the message lists the valid ones.

    Examples:
    >>> get_task("glue/stsb").is_regression
    True
    """
    if isinstance(name, TaskSpec):
        return name
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(
            f"Unknown task {name!r}. Valid tasks: {sorted(TASKS)} and "
            f"'files' (local CSV/TSV/JSONL, see load_task_data).") from None


def files_task(text_columns, label_names=None, *, splits=("train",
               "validation"), metrics=None, name="files"):
    """A :class:`TaskSpec` for local files (``load_task_data("files", ...)``).

    Args:
        text_columns: str or sequence of 1-2 str. Column (key) names of the
            text, or of the text pair.
        label_names: sequence of str, or None for regression.
        splits: sequence of str. Split names that have files; ``"train"``
            is the train split, ``"test"`` the (labelled) test split, every
            other name an eval split. Defaults to ``("train",
            "validation")``.
        metrics: sequence of str, or None: accuracy (+ F1 of class 1 for
            two classes) for classification, Pearson + Spearman for
            regression.
        name: str. Defaults to ``"files"``.

    Examples:
    >>> files_task(("q", "a"), ["no", "yes"]).metrics
    ('accuracy', 'f1')
    """
    if isinstance(text_columns, str):
        text_columns = (text_columns,)
    if label_names is not None:
        label_names = tuple(str(n) for n in label_names)
    if metrics is None:
        if label_names is None:
            metrics = ("pearson", "spearman")
        elif len(label_names) == 2:
            metrics = ("accuracy", "f1")
        else:
            metrics = ("accuracy",)
    splits = tuple(splits)
    return TaskSpec(
        name=name,
        text_features=tuple(text_columns),
        label_names=label_names,
        metrics=tuple(metrics),
        train_split="train",
        eval_splits=tuple(s for s in splits if s not in ("train", "test")),
        test_split="test" if "test" in splits else None,
        unlabelled_splits=(),
        description="Local files.",
    )


def compute_metrics(task, labels, predictions):
    """The task's official metrics for one evaluation split.

    Args:
        task: str or TaskSpec. E.g. ``"glue/mrpc"``.
        labels: array-like ``[n]``. Class ids, or float scores for
            regression.
        predictions: array-like. Class ids ``[n]``, or logits /
            probabilities ``[n, num_classes]`` (argmax is taken); for
            regression scores ``[n]`` or ``[n, 1]``.

    Returns:
        dict ``metric name -> float`` with every metric of the task, plus
        ``"score"``: their mean (the GLUE per-task score, e.g. the mean of
        accuracy and F1 for MRPC), handy for picking the best checkpoint.
        For MNLI call it once per eval split.

    Raises:
        ValueError: on empty input, mismatched lengths, or class ids
            outside the task's labels (e.g. GLUE test labels -1).

    Examples:
    >>> compute_metrics("glue/mrpc", [1, 0, 1, 1], [1, 0, 0, 1])
    {'accuracy': 0.75, 'f1': 0.8, 'score': 0.775}
    """
    spec = get_task(task)
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if spec.is_regression:
        if predictions.ndim == 2 and predictions.shape[1] == 1:
            predictions = predictions[:, 0]
        labels = labels.astype(np.float64).reshape(-1)
        predictions = predictions.astype(np.float64)
    else:
        if predictions.ndim == 2:
            if predictions.shape[1] != spec.num_classes:
                raise ValueError(
                    f"{spec.name}: predictions have {predictions.shape[1]} "
                    f"columns, the task has {spec.num_classes} classes.")
            predictions = np.argmax(predictions, axis=-1)
        labels = labels.reshape(-1)
        if labels.size and (labels.min() < 0
                            or labels.max() >= spec.num_classes
                            or np.any(labels != np.round(labels))):
            raise ValueError(
                f"{spec.name}: labels must be class ids in "
                f"[0, {spec.num_classes}); got values in "
                f"[{labels.min()}, {labels.max()}] (unlabelled test "
                f"splits have label -1).")
    if predictions.ndim != 1 or predictions.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{spec.name}: {labels.shape[0]} labels but predictions of "
            f"shape {predictions.shape}.")
    if labels.shape[0] == 0:
        raise ValueError(f"{spec.name}: no examples to evaluate.")
    results = {name: METRICS[name](labels, predictions)
               for name in spec.metrics}
    results["score"] = float(np.mean(list(results.values())))
    return results
