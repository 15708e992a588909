"""The parity gate: an export must compute what the Keras model computes.

For every exported format the gate runs the Keras model and the export on
the same real inputs (:mod:`trimzoo.export.data`) and measures, per output,
the maximum and mean absolute difference and the cosine similarity (for
``sequence_output`` over real tokens only; padded positions carry no
meaning); for classifiers also the agreement of predicted labels and, on a
labelled split, both accuracies.

Limits (:class:`Thresholds`) depend on the format's precision class:

- ``float32`` (SavedModel, text-in SavedModel, TFLite float32): max abs
  difference of every output <= ``float32_max_abs`` (1e-4).
- ``float16`` (TFLite float16 weights): max abs difference <=
  ``float16_max_abs`` (2e-2); classifiers also as ``int8``.
- ``int8`` (TFLite dynamic-range and full int8, Keras ``quantize("int8")``):
  classifiers: accuracy drop <= ``max_accuracy_drop`` points (1.0), or,
  without labels, label agreement >= ``min_label_agreement`` (0.98);
  backbones: mean cosine similarity of every output >= ``min_cosine``
  (0.99).

:func:`gate` returns a record with every check; :func:`raise_on_failures`
raises :class:`ParityError` listing each failed check.
"""

import dataclasses

import numpy as np

#: format name -> precision class.
PRECISION = {
    "saved_model": "float32",
    "saved_model_text": "float32",
    "tflite_float32": "float32",
    "tflite_float16": "float16",
    "tflite_dynamic_int8": "int8",
    "tflite_int8": "int8",
    "keras_int8": "int8",
    # Files with MediaPipe metadata, run by MediaPipe Tasks on strings.
    "mediapipe_float32": "float32",
    "mediapipe_float16": "float16",
    "mediapipe_dynamic_int8": "int8",
    "mediapipe_int8": "int8",
}


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Limits of the parity gate (see the module docstring).

    Args:
        float32_max_abs: float. Defaults to ``1e-4``.
        float16_max_abs: float. Defaults to ``2e-2``.
        max_accuracy_drop: float. Accuracy points a quantised classifier may
            lose. Defaults to ``1.0``.
        min_label_agreement: float. For quantised classifiers without
            labels. Defaults to ``0.98``.
        min_cosine: float. Mean cosine similarity of each output of a
            quantised backbone. Defaults to ``0.99``.
    """

    float32_max_abs: float = 1e-4
    float16_max_abs: float = 2e-2
    max_accuracy_drop: float = 1.0
    min_label_agreement: float = 0.98
    min_cosine: float = 0.99


class ParityError(AssertionError):
    """An export failed the parity gate.

    Attributes:
        failures: list of dicts ``{"format", "metric", "value", "limit",
            "kind"}``, one per failed check.
    """

    def __init__(self, message, failures=()):
        super().__init__(message)
        self.failures = list(failures)


class _Stats:
    """Running statistics of one output."""

    def __init__(self):
        self.max_abs = 0.0
        self.sum_abs = 0.0
        self.count = 0
        self.max_ref = 0.0
        self.cosines = []

    def update(self, reference, exported, mask=None):
        reference = np.asarray(reference, dtype="float64")
        exported = np.asarray(exported, dtype="float64")
        if reference.shape != exported.shape:
            raise ValueError(
                f"Output shapes differ: Keras {reference.shape}, export "
                f"{exported.shape}."
            )
        if mask is not None:  # [batch, seq, hidden] -> real tokens only.
            keep = np.asarray(mask).astype(bool)
            reference, exported = reference[keep], exported[keep]
        reference = reference.reshape(len(reference), -1)
        exported = exported.reshape(len(exported), -1)
        diff = np.abs(reference - exported)
        if not np.all(np.isfinite(exported)):
            self.max_abs = float("inf")
        elif diff.size:
            self.max_abs = max(self.max_abs, float(diff.max()))
        self.sum_abs += float(np.nan_to_num(diff, nan=np.inf).sum())
        self.count += diff.size
        if reference.size:
            self.max_ref = max(self.max_ref, float(np.abs(reference).max()))
        norms = (np.linalg.norm(reference, axis=1)
                 * np.linalg.norm(exported, axis=1))
        dots = (reference * exported).sum(axis=1)
        self.cosines.extend(
            np.where(norms > 0, dots / np.maximum(norms, 1e-30), 1.0))

    def result(self):
        cosines = np.nan_to_num(np.asarray(self.cosines), nan=-1.0)
        return {
            "max_abs_diff": self.max_abs,
            "mean_abs_diff": self.sum_abs / max(self.count, 1),
            "max_abs_reference": self.max_ref,
            "mean_cosine": float(cosines.mean()) if cosines.size else 1.0,
            "min_cosine": float(cosines.min()) if cosines.size else 1.0,
        }


def _batches(data, batch_size, trim):
    """Slices of ``data.inputs``; ``trim`` cuts each to its longest real
    sequence (for dynamic-length exports)."""
    total = data.num_examples
    for start in range(0, total, batch_size):
        batch = {name: value[start:start + batch_size]
                 for name, value in data.inputs.items()}
        if trim:
            length = max(int(batch["padding_mask"].sum(axis=1).max()), 1)
            batch = {name: value[:, :length] for name, value in
                     batch.items()}
        if data.texts is not None:  # For text-in exports.
            batch["text"] = np.array(data.texts[start:start + batch_size],
                                     dtype=object)
        yield start, batch


def compare(reference, exported, data, batch_size=32, trim=True,
            reference_cache=None):
    """Runs ``reference`` and ``exported`` on ``data`` and measures their
    differences.

    Args:
        reference, exported: callables ``inputs dict -> outputs dict``
            (``KerasRunner``, ``SavedModelRunner``, ``TFLiteRunner``...).
        data: :class:`trimzoo.export.data.ParityData`.
        batch_size: int. Examples per call. Defaults to 32.
        trim: bool. Trim batches to their longest sequence (for exports
            with a dynamic length). Defaults to True.
        reference_cache: dict or None. Reused reference outputs, keyed by
            ``(start, length)``; pass the same dict for several exports.

    Returns:
        dict of metrics: ``outputs`` (per-output statistics),
        ``max_abs_diff``, ``min_mean_cosine`` and, for outputs with logits,
        ``label_agreement`` and (with labels) ``reference_accuracy``,
        ``export_accuracy``, ``accuracy_drop_points``.
    """
    stats = {}
    ref_labels, exp_labels = [], []
    for start, batch in _batches(data, batch_size, trim):
        key = (start, batch["token_ids"].shape[1])
        if reference_cache is not None and key in reference_cache:
            ref = reference_cache[key]
        else:
            ref = reference(batch)
            if reference_cache is not None:
                reference_cache[key] = ref
        out = exported(batch)
        missing = set(ref) - set(out)
        if missing:
            raise ValueError(
                f"The export lacks outputs {sorted(missing)} (it has "
                f"{sorted(out)}).")
        for name in ref:
            mask = batch["padding_mask"] if np.ndim(ref[name]) == 3 else None
            stats.setdefault(name, _Stats()).update(ref[name], out[name],
                                                    mask)
        if "logits" in ref and np.shape(ref["logits"])[-1] > 1:
            ref_labels.append(np.argmax(ref["logits"], axis=-1))
            exp_labels.append(np.argmax(out["logits"], axis=-1))
    outputs = {name: s.result() for name, s in sorted(stats.items())}
    metrics = {
        "outputs": outputs,
        "max_abs_diff": max(o["max_abs_diff"] for o in outputs.values()),
        "min_mean_cosine": min(o["mean_cosine"] for o in outputs.values()),
    }
    if ref_labels:
        ref_labels = np.concatenate(ref_labels)
        exp_labels = np.concatenate(exp_labels)
        metrics["label_agreement"] = float(np.mean(ref_labels == exp_labels))
        if data.labels is not None:
            labels = np.asarray(data.labels)
            ref_acc = float(np.mean(ref_labels == labels))
            exp_acc = float(np.mean(exp_labels == labels))
            metrics["reference_accuracy"] = ref_acc
            metrics["export_accuracy"] = exp_acc
            metrics["accuracy_drop_points"] = 100.0 * (ref_acc - exp_acc)
    return metrics


def limits(fmt, metrics, thresholds=None):
    """``{metric: (kind, limit)}`` that format ``fmt`` must meet, with
    ``kind`` ``"max"`` (value <= limit) or ``"min"`` (value >= limit)."""
    t = thresholds or Thresholds()
    if fmt not in PRECISION:
        raise ValueError(
            f"Unknown export format {fmt!r}. Valid values: "
            f"{sorted(PRECISION)}.")
    precision = PRECISION[fmt]
    checks = {}
    if precision == "float32":
        checks["max_abs_diff"] = ("max", t.float32_max_abs)
    elif precision == "float16":
        checks["max_abs_diff"] = ("max", t.float16_max_abs)
    classifier = "label_agreement" in metrics
    if precision in ("float16", "int8") and classifier:
        if "accuracy_drop_points" in metrics:
            checks["accuracy_drop_points"] = ("max", t.max_accuracy_drop)
        else:
            checks["label_agreement"] = ("min", t.min_label_agreement)
    if precision == "int8" and not classifier:
        checks["min_mean_cosine"] = ("min", t.min_cosine)
    return checks


def gate(fmt, metrics, thresholds=None):
    """Applies the limits of ``fmt`` to ``metrics``.

    Returns:
        dict ``{"format", "precision", "metrics", "checks", "passed"}``;
        each check is ``{"metric", "value", "limit", "kind", "passed"}``.
    """
    checks = []
    for metric, (kind, limit) in limits(fmt, metrics, thresholds).items():
        value = float(metrics[metric])
        ok = value <= limit if kind == "max" else value >= limit
        checks.append({"metric": metric, "value": value, "limit": limit,
                       "kind": kind, "passed": bool(ok)})
    return {"format": fmt, "precision": PRECISION[fmt], "metrics": metrics,
            "checks": checks, "passed": all(c["passed"] for c in checks)}


def failures(records):
    """The failed checks of gate records, flattened."""
    return [{"format": r["format"], **{k: c[k] for k in
                                       ("metric", "value", "limit", "kind")}}
            for r in records for c in r["checks"] if not c["passed"]]


def raise_on_failures(records, report_path=None):
    """Raises :class:`ParityError` if any record failed a check."""
    failed = failures(records)
    if not failed:
        return
    lines = [
        f"  {f['format']}: {f['metric']} = {f['value']:.6g} "
        f"{'>' if f['kind'] == 'max' else '<'} limit {f['limit']:g}"
        for f in failed
    ]
    where = f" (details in {report_path})" if report_path else ""
    raise ParityError(
        "PARITY GATE FAILED: the export does not compute what the Keras "
        f"model computes{where}:\n" + "\n".join(lines), failed)
