"""Compression to a budget: what the compressed model must meet (a
:class:`Budget`), how the run is set (:class:`CompressSettings`), and how
the healed candidates are chosen (on validation, never on test).

The run itself is ``trimzoo.search.compressor`` (``compress``); it is
composed of the candidates' timing (``trimzoo.search.candidate_timing``),
the walk over the candidates that finds the budget's frontier
(``trimzoo.search.frontier``), the ranking and healing
(``trimzoo.search.healing``), and the report
(``trimzoo.search.compress_report``).
"""

import dataclasses
import math
import os

import numpy as np
from scipy import optimize

from trimzoo.utils.checks import MIN_SEQ_LEN, real_number, whole_number
from trimzoo.utils.io import read_json

#: Default weight of the attention term in healing stage 1. Measured on the
#: embedded task (docs/compression.md, "Attention in healing stage 1"): with
#: 1.0 two candidates healed to +0.5 and +0.7 validation points over hidden
#: states alone, at no measurable cost in time.
HEAL_ATTENTION = 1.0

#: Runtime -> the cost ``trimzoo.search.costs.measure_costs`` times.
RUNTIMES = {"keras": "keras", "keras_bfloat16": "keras_bfloat16",
            "tflite_int8": "tflite"}


class BudgetError(ValueError):
    """No candidate of the space fits the budget."""


class TimeBudgetError(ValueError):
    """``time_budget_min`` ran out before a model could be chosen."""


def check_runtime(runtime):
    """``runtime`` if it is one of ``RUNTIMES``, else a ``ValueError``."""
    if runtime not in RUNTIMES:
        raise ValueError(f"Unknown runtime {runtime!r}. Valid values: "
                         f"{list(RUNTIMES)}.")
    return runtime


@dataclasses.dataclass(frozen=True)
class Budget:
    """What the compressed model must meet.

    At least one of the cost limits or ``max_accuracy_drop`` is given.

    Attributes:
        speedup: float or None. At least this many times faster than the
            teacher at batch 1 on the runtime (> 1).
        latency_ms: float or None. At most this many milliseconds per call
            at batch 1 on the runtime.
        max_params: int or None. At most this many backbone parameters
            (embeddings included).
        max_accuracy_drop: float or None. The chosen model keeps at least
            ``1 - max_accuracy_drop`` of the teacher's validation accuracy
            (0.02: 98%); then the fastest such candidate is chosen instead of
            the most accurate.

    Examples:

    >>> Budget(speedup=2).max_ms(teacher_ms=10.0)
    5.0
    >>> Budget(speedup=2, latency_ms=4).max_ms(teacher_ms=10.0)
    4.0
    >>> Budget(speedup=0.5)
    Traceback (most recent call last):
    ...
    ValueError: speedup must be > 1 (times faster than the teacher), got 0.5.
    """

    speedup: float = None
    latency_ms: float = None
    max_params: int = None
    max_accuracy_drop: float = None

    def __post_init__(self):
        if all(v is None for v in dataclasses.astuple(self)):
            raise ValueError("Give a budget: speedup, latency_ms, max_params "
                             "or max_accuracy_drop.")
        if self.speedup is not None and not 1 < self.speedup < math.inf:
            raise ValueError("speedup must be > 1 (times faster than the "
                             f"teacher), got {self.speedup}.")
        if self.latency_ms is not None and not 0 < self.latency_ms < math.inf:
            raise ValueError(f"latency_ms must be > 0, got {self.latency_ms}.")
        if self.max_params is not None and not self.max_params >= 1:
            raise ValueError(f"max_params must be >= 1, got "
                             f"{self.max_params}.")
        if self.max_accuracy_drop is not None and not (
                0 <= self.max_accuracy_drop < 1):
            raise ValueError("max_accuracy_drop must be in [0, 1) (a "
                             f"fraction), got {self.max_accuracy_drop}.")

    def max_ms(self, teacher_ms):
        """The latency limit in ms at batch 1 (None: no latency limit)."""
        limits = [v for v in (self.latency_ms, None if self.speedup is None
                              else teacher_ms / self.speedup)
                  if v is not None]
        return float(min(limits)) if limits else None

    def fits(self, cost, teacher_ms):
        """Whether measured ``cost`` (``params``, ``latency_ms["1"]``) fits."""
        limit = self.max_ms(teacher_ms)
        if self.max_params is not None and cost["params"] > self.max_params:
            return False
        return limit is None or cost["latency_ms"]["1"] <= limit

    def describe(self, teacher_ms):
        parts = []
        if self.speedup is not None:
            parts.append(f"{self.speedup:g}x faster than the teacher "
                         f"({teacher_ms / self.speedup:.2f} ms)")
        if self.latency_ms is not None:
            parts.append(f"<= {self.latency_ms:g} ms")
        if self.max_params is not None:
            parts.append(f"<= {self.max_params:,} parameters")
        if self.max_accuracy_drop is not None:
            parts.append(f"validation accuracy >= "
                         f"{1 - self.max_accuracy_drop:.1%} of the teacher's")
        return ", ".join(parts)


def dominated(small, large):
    """Whether candidate ``small`` is no larger than ``large`` in every
    dimension (same TrimBERT knobs) and not the same candidate.

    >>> from trimzoo.search.space import Candidate
    >>> dominated(Candidate(2, 4, 64, 64), Candidate(2, 4, 64, 128))
    True
    >>> dominated(Candidate(2, 4, 64, 256), Candidate(3, 4, 64, 128))
    False
    """
    return small != large and (small.ffn_every, small.normalizer) == (
        large.ffn_every, large.normalizer) and all(
        getattr(small, d) <= getattr(large, d) for d in
        ("num_layers", "num_heads", "hidden_dim", "intermediate_dim"))


#: A healed candidate re-timed at the end still fits when its latency is
#: within this factor of the limit (the spread of two quiet timings).
RETIME_TOLERANCE = 1.05


def retimed_pool(rows, max_ms, teacher_ms):
    """``(rows to choose from, warnings)`` after the final timing: the
    rows that still fit the latency limit ``max_ms`` when re-timed (each
    row gets ``fits_when_retimed``); all rows, with a warning, when none
    does; all rows when there is no latency limit or no re-timing.

    >>> rows = [{"name": "a", "speedup_round_robin": 2.9},
    ...         {"name": "b", "speedup_round_robin": 2.2}]
    >>> pool, warnings = retimed_pool(rows, max_ms=10 / 3, teacher_ms=10)
    >>> [r["name"] for r in pool], warnings
    (['a'], [])
    >>> pool, warnings = retimed_pool(rows[1:], max_ms=10 / 3, teacher_ms=10)
    >>> [r["name"] for r in pool], len(warnings)
    (['b'], 1)
    """
    if max_ms is None or any(r.get("speedup_round_robin") is None
                             for r in rows):
        return list(rows), []
    for row in rows:
        row["fits_when_retimed"] = bool(
            teacher_ms / row["speedup_round_robin"]
            <= max_ms * RETIME_TOLERANCE)
    pool = [r for r in rows if r["fits_when_retimed"]]
    if pool:
        return pool, []
    best = max(rows, key=lambda r: r["speedup_round_robin"])
    return list(rows), [
        f"no healed candidate fits the budget when re-timed at the end (the "
        f"fastest, {best['name']}, ran {best['speedup_round_robin']:.2f}x "
        f"the teacher's speed, limit {teacher_ms / max_ms:.2f}x); the choice "
        "uses the first timings. Re-run on a quiet machine, or ask for a "
        "larger speed-up."]


def choose(rows, budget, teacher_accuracy):
    """The chosen row among healed ``rows`` (each with ``validation_accuracy``
    and ``latency_ms``), on validation only: the most accurate, or with
    ``budget.max_accuracy_drop`` the fastest within it (None if none is).

    >>> rows = [{"name": "a", "validation_accuracy": 0.80, "latency_ms": 2.0,
    ...          "test_accuracy": 0.9},
    ...         {"name": "b", "validation_accuracy": 0.85, "latency_ms": 3.0,
    ...          "test_accuracy": 0.7}]
    >>> choose(rows, Budget(speedup=2), 0.86)["name"]
    'b'
    >>> choose(rows, Budget(max_accuracy_drop=0.1), 0.86)["name"]
    'a'
    """
    if not rows:
        return None
    if budget.max_accuracy_drop is None:
        return max(rows, key=lambda r: (r["validation_accuracy"],
                                        -r["latency_ms"]))
    floor = (1 - budget.max_accuracy_drop) * teacher_accuracy
    within = [r for r in rows if r["validation_accuracy"] >= floor]
    return min(within, key=lambda r: (r["latency_ms"],
                                      -r["validation_accuracy"]),
               default=None)


def predict_latency(points, query):
    """Latency predicted as ``a + b·layers + c·FLOPs`` with ``a, b, c >= 0``
    (per-layer overheads dominate small models on a CPU, so FLOPs alone
    mislead), fitted by non-negative least squares (``scipy.optimize.nnls``)
    to ``points``: ``[((layers, flops), ms), ...]``. Non-negative weights
    keep the prediction monotone: a candidate no larger than a timed one
    is never predicted slower, however alike the timed ones are.

    >>> timed = [((3, 8.4e6), 6.5), ((6, 8.5e6), 8.7), ((4, 8.7e6), 7.0)]
    >>> predict_latency(timed, (2, 0.75e6)) < 6.5
    True
    """
    x = np.array([[1.0, float(d), float(f) / 1e6] for (d, f), _ in points])
    y = np.array([float(ms) for _, ms in points])
    coef, _ = optimize.nnls(x, y)
    d, f = query
    return float(np.dot([1.0, float(d), float(f) / 1e6], coef))


def compare_rows(path):
    """The single-route rows of a compression table's ``results.json``
    (``tools/compression_table.py``): ``name``, ``speedup`` (Keras float32,
    batch 1) and ``percent_of_teacher`` (test accuracy)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path} (a compression "
                                "table's results.json).")
    table = read_json(path)
    if not isinstance(table, dict) or "rows" not in table:
        raise ValueError(f"{path} is not a compression table's results.json "
                         "(no 'rows').")
    return [{"name": row["method"] + (" + KD" if row.get("distilled")
                                      else ""),
             "speedup": float(row["speedup"]),
             "percent_of_teacher": float(row["percent_of_teacher"])}
            for row in table["rows"] if row.get("key") != "teacher"]




def _resume(default=None, **kw):
    """A setting that a resumed run must share (compared on resume)."""
    return dataclasses.field(default=default, metadata={"resume": True}, **kw)


@dataclasses.dataclass(frozen=True)
class CompressSettings:
    """How a compression run is set: one typed object that the Python API,
    ``tools/compress.py`` (a flag per field, same name) and the resume
    check read. Every value is checked when it is made, before any work.

    Attributes:
        runtime: str. Where the candidates run and the budget is measured
            (one of ``RUNTIMES``). Defaults to ``"keras"``.
        speedup_against: str or None. Where the teacher is timed (None:
            ``runtime``); e.g. TFLite int8 candidates against the Keras
            float32 teacher.
        space: str. The candidate space (``trimzoo.search.space``).
        trimbert_knobs: bool. Also FFN every 2nd layer and the sigmoid
            normaliser.
        data: str or None. Extra training texts for healing (None: the
            teacher's task).
        text_column: str. Text column of ``data``.
        seq_len: int or None. Tokens per sequence: the timed shape, the
            training length and the shipped preprocessor's. None (the
            default): the length the teacher was fine-tuned with.
        batch_size: int. Timed besides batch 1.
        k: int. Candidates healed.
        max_measured: int. Candidates timed at most.
        rounds: int. Timed rounds per candidate.
        proxy_steps, heal_steps, heal_batch_size: int. Hidden-state
            distillation of the proxy and of healing stage 1.
        heal_attention: float. Weight of the attention term in stage 1.
        epochs, learning_rate: stage 2 (None: the fine-tuning recipe's).
        train_examples, eval_examples: int. Examples used (0: all).
        augment: int. Teacher-labelled word-replaced copies per example in
            stage 2.
        seed: int.
        time_budget_min: float or None. No new proxy or heal starts after
            this many minutes.
        export: bool. Export the chosen model to TFLite.
        compare: str or None. A compression table's ``results.json``.

    >>> CompressSettings(seq_len=4)
    Traceback (most recent call last):
    ...
    ValueError: seq_len must be a whole number >= 8, got 4.
    >>> sorted(CompressSettings().resume_key())[:3]
    ['augment', 'batch_size', 'data']
    """

    runtime: str = _resume("keras")
    speedup_against: str = _resume(None)
    space: str = _resume("fractions")
    trimbert_knobs: bool = _resume(False)
    data: str = _resume(None)
    text_column: str = "text"
    seq_len: int = _resume(None)
    batch_size: int = _resume(8)
    k: int = 3
    max_measured: int = 48
    rounds: int = _resume(10)
    proxy_steps: int = _resume(40)
    heal_steps: int = _resume(300)
    heal_batch_size: int = _resume(32)
    heal_attention: float = _resume(HEAL_ATTENTION)
    epochs: int = _resume(None)
    learning_rate: float = _resume(None)
    train_examples: int = _resume(0)
    eval_examples: int = _resume(0)
    augment: int = _resume(0)
    seed: int = _resume(0)
    time_budget_min: float = None
    export: bool = True
    compare: str = None

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        check_runtime(self.runtime)
        put("speedup_against", check_runtime(self.speedup_against
                                             or self.runtime))
        if self.seq_len is not None:
            put("seq_len", whole_number("seq_len", self.seq_len,
                                        MIN_SEQ_LEN))
        for name in ("batch_size", "k", "max_measured", "rounds",
                     "proxy_steps", "heal_steps", "heal_batch_size"):
            put(name, whole_number(name, getattr(self, name)))
        for name in ("train_examples", "eval_examples", "augment", "seed"):
            put(name, whole_number(name, getattr(self, name), 0))
        put("heal_attention", real_number("heal_attention",
                                          self.heal_attention, minimum=0))
        if self.epochs is not None:
            put("epochs", whole_number("epochs", self.epochs))
        if self.learning_rate is not None:
            put("learning_rate", real_number("learning_rate",
                                             self.learning_rate,
                                             positive=True))
        if self.time_budget_min is not None:
            put("time_budget_min", real_number(
                "time_budget_min", self.time_budget_min, positive=True))
        if self.data is not None:
            put("data", os.path.abspath(os.fspath(self.data)))
        if self.compare is not None:  # Read now: a bad file fails early.
            compare_rows(self.compare)

    def resume_key(self):
        """The settings a resumed run must share, as a dict."""
        return {f.name: getattr(self, f.name)
                for f in dataclasses.fields(self) if f.metadata.get("resume")}

    def with_teacher_length(self, length):
        """These settings with ``seq_len`` the teacher's ``length`` when it
        was left to the teacher (None)."""
        if self.seq_len is not None:
            return self
        return dataclasses.replace(self, seq_len=length)

