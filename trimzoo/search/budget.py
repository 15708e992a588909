"""Compression to a budget: from a fine-tuned classifier, the most accurate
model that fits a stated cost on this machine's runtime.

``compress(teacher, out, budget)`` stacks every route of the zoo in one
candidate space — layers kept (Poor Man's BERT), heads and FFN neurons
pruned, a narrower hidden size (Bort's H), and optionally the TrimBERT
knobs — cut from the teacher by importance (the search's space,
``trimzoo.search.space``), and then:

1. **Measures the teacher** on the chosen runtime (round-robin medians at
   batch 1 and the user's batch, the user's sequence length), so the budget
   is a measured number of milliseconds, not FLOPs. With
   ``speedup_against`` the teacher is timed on another runtime than the
   candidates (TFLite int8 candidates against the Keras float32 teacher).
2. **Measures candidates inside the budget only**, each round-robin with
   the teacher (its speed-up is the median per-round ratio, steady on a
   busy machine): candidates whose FLOPs cannot fit are skipped, then
   candidates are timed from the largest down;
   one no larger in every dimension than a candidate that already fits is
   not timed (it fits, and holds less). What fits is the budget's frontier.
3. **Ranks the frontier cheaply** by the search's error proxy (a short
   hidden-state distillation, ``estimate_error``).
4. **Heals the best k properly**, in two stages: hidden-state distillation
   on the task's texts without labels (every student layer learns its
   teacher layer on the kept coordinates), then task distillation on
   logits (``trimzoo.training.finetune`` with ``distill.teacher``).
5. **Chooses on the validation split**, never on test: the most accurate
   healed candidate (with ``max_accuracy_drop``: the fastest one within
   that drop of the teacher's validation accuracy).

Everything measured is cached in ``OUT/compress_state.json`` (written
atomically after each step) and every training run resumes, so a killed
run continues where it stopped. Budgets nothing can meet raise
:class:`BudgetError`, naming the cheapest candidate and its cost.

This lives in ``trimzoo.search`` (the top layer) because it drives
training, export and the benchmark's timing; ``trimzoo.compress`` is the
same function.
"""

import dataclasses
import logging
import os
import shutil
import time

import keras
import matplotlib
import numpy as np
from scipy import optimize
from tqdm.auto import tqdm

from trimzoo.models.costs import flops_per_token, parameter_counts
from trimzoo.checkpoints.folders import (load_classifier_folder,
                                        save_classifier)
from trimzoo.data.model_data import (RECORD_FILE, recorded_task,
                                      texts_for_model)
from trimzoo.export import TFLiteRunner, export_model
from trimzoo.models import TrimzooBackbone, extract
from trimzoo.models.tokenizers import (encode, load_tokenizer,
                                       special_token_ids)
from trimzoo.export.benchmark import median_latencies
from trimzoo.search.costs import measure_costs, timed_calls
from trimzoo.search.estimate import estimate_error, plan, teacher_importance
from trimzoo.search.space import build_space, reference_shape
from trimzoo.training.finetune import finetune
from trimzoo.utils import timing
from trimzoo.utils.hardware import load_average
from trimzoo.utils.checks import MIN_SEQ_LEN, real_number, whole_number
from trimzoo.utils.io import (atomic_path, read_json, save_figure, write_json,
                              write_text)
from trimzoo.utils.run_folder import (RunFolder, check_output_location,
                                      fingerprint)

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

logger = logging.getLogger(__name__)

STATE_FILE = "compress_state.json"
# Everything compress writes in its folder (``--overwrite`` removes these
# and nothing else).
OUTPUTS = (STATE_FILE, "proxy", "candidates", "model", "export",
           "results.json", "report.md", "pareto.png")

#: Default weight of the attention term in healing stage 1. Measured on the
#: embedded task (docs/compression.md, "Attention in healing stage 1"): with
#: 1.0 two candidates healed to +0.5 and +0.7 validation points over hidden
#: states alone, at no measurable cost in time.
HEAL_ATTENTION = 1.0

#: Runtime -> the cost ``trimzoo.search.costs.measure_costs`` times.
RUNTIMES = {"keras": "keras", "keras_bfloat16": "keras_bfloat16",
            "tflite_int8": "tflite"}

# FLOPs fall faster than latency as a model shrinks (fixed per-call and
# per-layer overheads), so a candidate whose FLOPs are above the budget's
# share of the teacher's by more than this factor cannot fit; nearer ones
# are timed.
FLOPS_MARGIN = 1.25


# Once this many candidates are timed, a latency model fitted to them
# (``Compressor._predicted_ms``) skips candidates it predicts slower than
# the limit by more than PREDICTION_MARGIN.
MIN_TIMED_FOR_PREDICTION = 6
PREDICTION_MARGIN = 1.3
MAX_EXTRAPOLATION = 0.7
# A batch-1 timing of a few milliseconds varies by about 10% between two
# measurements, so among many candidates near the limit the ones that
# measured fast would pass (the winner's curse: they re-timed 7-17% slower
# at the end). A candidate that fits by less than this factor is timed a
# second time and judged on the mean of both ratios.
CONFIRM_MARGIN = 1.10


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
        if self.speedup is not None and not self.speedup > 1:
            raise ValueError("speedup must be > 1 (times faster than the "
                             f"teacher), got {self.speedup}.")
        if self.latency_ms is not None and not self.latency_ms > 0:
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


def _accuracy(model, inputs, labels, batch_size=64):
    logits = model.predict(inputs, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == np.asarray(labels)))


class Compressor:
    """One compression run in ``out`` (see :func:`compress`)."""

    def __init__(self, teacher, out, budget, make_config, runtime="keras",
                 space="fractions", trimbert_knobs=False, data=None,
                 text_column="text", label_column="label", seq_len=64,
                 batch_size=8, k=3, max_measured=48, rounds=10,
                 proxy_steps=40, heal_steps=300, heal_batch_size=32,
                 heal_attention=HEAL_ATTENTION, epochs=None,
                 learning_rate=None, train_examples=0, eval_examples=0,
                 seed=0, time_budget_min=None, speedup_against=None, augment=0,
                 export=True, progress=True, measure=None, compare=None,
                 overwrite=False):
        if not isinstance(budget, Budget):
            raise TypeError(f"budget must be a Budget, got "
                            f"{type(budget).__name__}.")
        self.teacher_dir = os.path.abspath(os.fspath(teacher))
        self.out = os.fspath(out)
        self.budget = budget
        self.make_config = make_config
        self.runtime = check_runtime(runtime)
        # The runtime the teacher is timed on: speed-ups and the latency
        # scale are against the teacher there, the candidates run on
        # ``runtime`` (e.g. TFLite int8 candidates against the Keras
        # float32 teacher).
        self.against = check_runtime(speedup_against or runtime)
        # Every value is checked before any work (nothing timed, trained or
        # written for a run that would fail on its settings).
        self.k = whole_number("k", k)
        self.seq_len = whole_number("seq_len", seq_len, MIN_SEQ_LEN)
        self.batch_size = whole_number("batch_size", batch_size)
        self.max_measured = whole_number("max_measured", max_measured)
        self.rounds = whole_number("rounds", rounds)
        self.proxy_steps = whole_number("proxy_steps", proxy_steps)
        self.heal_steps = whole_number("heal_steps", heal_steps)
        self.heal_batch_size = whole_number("heal_batch_size",
                                            heal_batch_size)
        self.heal_attention = real_number("heal_attention", heal_attention,
                                          minimum=0)
        self.epochs = (None if epochs is None
                       else whole_number("epochs", epochs))
        self.learning_rate = (None if learning_rate is None else real_number(
            "learning_rate", learning_rate, positive=True))
        self.train_examples = whole_number("train_examples", train_examples,
                                           0)
        self.augment = whole_number("augment", augment, 0)
        self.eval_examples = whole_number("eval_examples", eval_examples, 0)
        self.seed = whole_number("seed", seed, 0)
        self.deadline = (None if time_budget_min is None
                         else time.time() + 60 * real_number(
                             "time_budget_min", time_budget_min,
                             positive=True))
        self.export, self.progress = bool(export), bool(progress)
        self._measure_fn = measure
        self.final_load = None  # The load average at the final timing.
        self.compare = compare
        if compare is not None:  # Read now: a bad file fails before work.
            compare_rows(compare)
        check_output_location(self.out, [self.teacher_dir])
        self.start = time.time()

        self.teacher = load_classifier_folder(self.teacher_dir)
        self.tokenizer = load_tokenizer(self.teacher_dir)
        self.record = recorded_task(self.teacher_dir)
        if self.record is None:
            raise ValueError(
                f"{self.teacher_dir} records no task (a fine-tuned RUN/best "
                "folder has RUN/config.json beside it): the candidates are "
                "fine-tuned and chosen on the teacher's task data.")
        self.texts, self._inputs = {}, {}
        for split in ("train", "validation", "test"):
            self.texts[split] = texts_for_model(
                self.teacher_dir, data=data if split == "train" else None,
                text_column=text_column, split=split, what="compress")
            self._say(f"{split} texts: {len(self.texts[split].texts)} from "
                      f"{self.texts[split].source}")
        for split in ("validation", "test"):
            if self.texts[split].labels is None:
                raise ValueError(f"The {split} texts "
                                 f"({self.texts[split].source}) have no "
                                 "labels: the choice needs labelled data.")
        self.reference = reference_shape(self.teacher.backbone)
        knobs = ((None, 2), (None, "sigmoid")) if trimbert_knobs else (
            (None,), (None,))
        self.candidates = build_space(space, self.reference, *knobs)
        whole = [c for c in self.candidates if all(
            getattr(c, d) == self.reference[d] for d in
            ("num_layers", "num_heads", "hidden_dim", "intermediate_dim"))
            and c.ffn_every is None and c.normalizer is None]
        self.candidates = [c for c in self.candidates if c not in whole]
        self.by_name = {c.name: c for c in self.candidates}
        settings = dict(
            teacher=self.teacher_dir, runtime=self.runtime,
            space=space, trimbert_knobs=bool(trimbert_knobs),
            data=os.path.abspath(data) if data else None,
            seq_len=self.seq_len, batch_size=self.batch_size,
            rounds=self.rounds, proxy_steps=self.proxy_steps,
            heal_steps=self.heal_steps, heal_batch_size=self.heal_batch_size,
            heal_attention=self.heal_attention,
            epochs=self.epochs, learning_rate=self.learning_rate,
            train_examples=self.train_examples,
            eval_examples=self.eval_examples, seed=self.seed,
            speedup_against=self.against, augment=self.augment,
            budget=dataclasses.asdict(self.budget),
            # The teacher's files and task: a teacher trained again in
            # place makes every cached measurement stale.
            teacher_fingerprint=fingerprint(self.teacher_dir, self.record))
        self.folder = RunFolder(self.out, "compress", settings,
                                entries=OUTPUTS, overwrite=overwrite,
                                inputs=[self.teacher_dir], adopt=STATE_FILE)
        self.state_path = self.folder.join(STATE_FILE)
        self.state = self._load_state()

    # -- state -----------------------------------------------------------------

    def _load_state(self):
        empty = {"costs": {}, "shape": {}, "proxy": {}, "healed": {}}
        try:
            state = read_json(self.state_path)
        except ValueError as err:
            state = err
        if state is None:
            return empty
        if not (isinstance(state, dict) and all(
                isinstance(state.get(key), dict) for key in empty)):
            raise ValueError(
                f"{self.state_path} is damaged (not a compression state: "
                f"{state}); pass --overwrite to start the run over, or "
                "choose a new --out.")
        return state

    def _save(self):
        write_json(self.state_path, self.state)

    def _say(self, message):
        if self.progress:
            print(message, flush=True)

    def _out_of_time(self):
        return self.deadline is not None and time.time() > self.deadline

    # -- measuring ---------------------------------------------------------------

    def _measure(self, name, model):
        """Costs of ``model`` (cached by ``name``). A candidate is timed
        round-robin with the teacher: its ``speedup`` per batch size is the
        median per-round ratio (steady on a busy machine), and its
        ``latency_ms`` the teacher's first measurement over that ratio, so
        every candidate is on the teacher's scale."""
        if name not in self.state["costs"]:
            own = {"teacher": self.against,
                   f"teacher@{self.runtime}": self.runtime}
            if name in own and self._measure_fn is None:
                cost = measure_costs(model, RUNTIMES[own[name]],
                                     self._batch_sizes(), self.seq_len,
                                     self.rounds)
            else:
                cost = self._time_candidate(model)
            cost["load"] = load_average()
            self.state["costs"][name] = cost
            self._save()
        return self.state["costs"][name]

    def _confirm(self, name, model):
        """``name``'s cost timed a second time, its speed-ups the mean of
        both timings (cached; once per candidate)."""
        cost = self.state["costs"][name]
        if cost.get("timings", 1) > 1:
            return cost
        again = self._time_candidate(model)
        teacher_ms = self.state["costs"]["teacher"]["latency_ms"]
        speedups = {b: (teacher_ms[b] / cost["latency_ms"][b]
                        + teacher_ms[b] / again["latency_ms"][b]) / 2
                    for b in cost["latency_ms"]}
        cost = dict(cost, speedup=speedups, timings=2, latency_ms={
            b: teacher_ms[b] / r for b, r in speedups.items()})
        self.state["costs"][name] = cost
        self._save()
        return cost

    def _time_candidate(self, model):
        """A candidate's cost: the ``measure`` stand-in's, or timed
        round-robin with the teacher."""
        if self._measure_fn is not None:
            return self._measure_fn(model)
        return self._measure_against_teacher(model)

    def _batch_sizes(self):
        return sorted({1, self.batch_size})

    def _measure_against_teacher(self, model):
        # Candidates are timed round-robin with the teacher on their own
        # runtime. Against a teacher on another runtime, that ratio is
        # scaled by the teacher's own two latencies, each timed on its own:
        # calls of two runtimes in one rotation interfere (TensorFlow's
        # threads still spin when a TFLite call starts; on 2 cores that
        # made sub-millisecond TFLite calls 1.5-2x slower).
        cost_name = RUNTIMES[self.runtime]
        if getattr(self, "_teacher_calls", None) is None:
            self._teacher_calls = timed_calls(
                self.teacher.backbone, cost_name, self._batch_sizes(),
                self.seq_len)
        mine = timed_calls(model, cost_name, self._batch_sizes(),
                           self.seq_len)
        # One rotation per batch size: a batch-1 call right after a
        # batch-8 one runs on caches and threads the large call left,
        # which biased the ratios by up to 20% when they were mixed.
        speedups = {}
        for b in self._batch_sizes():
            times = timing.round_robin(
                {"teacher": self._teacher_calls[b], "model": mine[b]},
                rounds=self.rounds, warmup=2)
            speedups[str(b)] = timing.median_ratio(times["teacher"],
                                                   times["model"])
        teacher_ms = self.state["costs"]["teacher"]["latency_ms"]
        if self.against != self.runtime:
            own = self.state["costs"][f"teacher@{self.runtime}"]["latency_ms"]
            speedups = {b: r * teacher_ms[b] / own[b]
                        for b, r in speedups.items()}
        counts = parameter_counts(model)
        return {"params": counts["params"],
                "non_embedding_params": counts["non_embedding_params"],
                "cost": cost_name, "seq_len": self.seq_len,
                "speedup": speedups,
                "latency_ms": {b: teacher_ms[b] / r
                               for b, r in speedups.items()}}

    def importance(self):
        if "importance" not in self.state:
            train = self._encoded("train", limit=256)
            batches = [{k: v[i:i + 32] for k, v in train.items()}
                       for i in range(0, len(train["token_ids"]), 32)]
            mask = special_token_ids(self.tokenizer).get("mask")
            self.state["importance"] = teacher_importance(
                self.teacher.backbone, batches, max_batches=8,
                mask_token_id=mask)
            self._save()
        return self.state["importance"]

    def _encoded(self, split, limit=None):
        """The first ``limit`` (None or 0: all) texts of ``split``
        tokenised, once per run (every candidate reuses them)."""
        key = (split, limit or None)
        if key not in self._inputs:
            texts = self.texts[split].texts
            if limit:
                texts = texts[:limit]
            self._inputs[key] = encode(self.tokenizer, texts, self.seq_len)
        return self._inputs[key]

    def architecture(self, candidate):
        """A backbone of ``candidate``'s shape (weights do not matter for
        its costs)."""
        config = dict(self.teacher.backbone.get_config())
        config.update(num_layers=candidate.num_layers,
                      num_heads=candidate.num_heads,
                      hidden_dim=candidate.hidden_dim,
                      intermediate_dim=candidate.intermediate_dim,
                      head_dim=self.reference["head_dim"])
        if candidate.ffn_every:
            config["ffn_layers"] = f"every_{candidate.ffn_every}"
        if candidate.normalizer:
            config["attention_normalizer"] = candidate.normalizer
        return TrimzooBackbone.from_config(config)

    def shape(self, candidate):
        """Parameters and FLOPs of ``candidate`` (cached)."""
        if candidate.name not in self.state["shape"]:
            model = self.architecture(candidate)
            self.state["shape"][candidate.name] = {
                "params": parameter_counts(model)["params"],
                "flops": float(flops_per_token(model, self.seq_len)["total"])}
            del model
        return self.state["shape"][candidate.name]

    def measure_teacher(self):
        cost = self._measure("teacher", self.teacher.backbone)
        ms = cost["latency_ms"]["1"]
        self._say(f"teacher on {self.against}: "
                  + ", ".join(f"{v:.2f} ms at batch {b}"
                              for b, v in cost["latency_ms"].items())
                  + f" ({self.seq_len} tokens); budget: "
                  + self.budget.describe(ms))
        if self.against != self.runtime:
            self._say(f"teacher on {self.runtime} (where the candidates "
                      f"run): {self.teacher_runtime_ms():.2f} ms at batch 1")
        return cost

    def teacher_runtime_ms(self):
        """The teacher's batch-1 latency on ``runtime`` (timed on its own
        when ``speedup_against`` differs; cached)."""
        if self.against == self.runtime:
            return self._measure("teacher", self.teacher.backbone)[
                "latency_ms"]["1"]
        return self._measure(f"teacher@{self.runtime}",
                             self.teacher.backbone)["latency_ms"]["1"]

    def frontier(self, teacher_cost):
        """The candidates that fit, none dominated by another that fits."""
        teacher_ms = teacher_cost["latency_ms"]["1"]
        limit = self.budget.max_ms(teacher_ms)
        # The FLOPs share of the teacher's that can fit, on the runtime
        # the candidates run on.
        runtime_ms = self.teacher_runtime_ms()
        teacher_flops = float(flops_per_token(self.teacher.backbone,
                                              self.seq_len)["total"])
        shapes = {c.name: self.shape(c) for c in tqdm(
            self.candidates, desc="shapes", disable=not self.progress)}
        self._save()
        possible = []
        for c in self.candidates:
            s = shapes[c.name]
            if (self.budget.max_params is not None
                    and s["params"] > self.budget.max_params):
                continue
            if limit is not None and s["flops"] > (
                    teacher_flops * limit / runtime_ms * FLOPS_MARGIN):
                continue
            possible.append(c)
        possible.sort(key=lambda c: (-shapes[c.name]["flops"], c.name))
        fitting, measured, skipped = self._walk(possible, shapes, limit,
                                                teacher_ms, predict=True)
        if not fitting and skipped:
            # The latency model skipped everything: time without it.
            fitting, measured, skipped = self._walk(
                possible, shapes, limit, teacher_ms, predict=False)
        if not fitting:
            self._impossible(teacher_ms, shapes, measured)
        self._say(f"{len(fitting)} candidates on the budget's frontier "
                  f"({measured} timed of {len(self.candidates)}, {skipped} "
                  "predicted too slow to time): "
                  + ", ".join(c.name for c in fitting))
        return fitting

    def _walk(self, possible, shapes, limit, teacher_ms, predict):
        """Times ``possible`` (largest first) until ``max_measured``:
        ``(fitting, timed, skipped)``."""
        fitting, measured, skipped = [], 0, 0
        # The latency model learns only from this walk's candidates so far:
        # a resumed or repeated run (whose cache holds later ones too) then
        # takes the same path and times nothing new.
        walked = []
        bar = tqdm(total=min(len(possible), self.max_measured),
                   desc="timing candidates", disable=not self.progress)
        for c in possible:
            if any(dominated(c, f) for f in fitting):
                continue
            predicted = (self._predicted_ms(c, shapes, walked) if predict
                         else None)
            if (limit is not None and predicted is not None
                    and predicted > limit * PREDICTION_MARGIN):
                skipped += 1
                continue
            if measured >= self.max_measured:
                self._say(f"   timed {measured} candidates (max_measured); "
                          "the rest are left out")
                break
            model = self.architecture(c)
            cost = self._measure(c.name, model)
            if (limit is not None and self.budget.fits(cost, teacher_ms)
                    and cost["latency_ms"]["1"] * CONFIRM_MARGIN > limit):
                cost = self._confirm(c.name, model)
            measured += 1
            walked.append(c.name)
            bar.update(1)
            del model
            keras.backend.clear_session(free_memory=True)
            if self.budget.fits(cost, teacher_ms):
                fitting.append(c)
        bar.close()
        return fitting, measured, skipped

    def _predicted_ms(self, candidate, shapes, walked):
        """Batch-1 latency of ``candidate`` by :func:`predict_latency` on
        the candidates ``walked`` (timed earlier in this walk); None until
        ``MIN_TIMED_FOR_PREDICTION`` are timed, and for a candidate with
        fewer FLOPs than ``MAX_EXTRAPOLATION`` times the smallest timed one
        (the model is trusted near what it has seen, not far below)."""
        timed = [n for n in walked if n in shapes]
        if len(timed) < MIN_TIMED_FOR_PREDICTION:
            return None

        smallest = min(shapes[n]["flops"] for n in timed)
        if shapes[candidate.name]["flops"] < MAX_EXTRAPOLATION * smallest:
            return None  # far below every timed candidate: time it

        def features(name):
            return (self.by_name[name].num_layers, shapes[name]["flops"])

        return predict_latency(
            [(features(n), self.state["costs"][n]["latency_ms"]["1"])
             for n in timed], features(candidate.name))

    def _impossible(self, teacher_ms, shapes, measured):
        cheapest = min(self.candidates,
                       key=lambda c: (shapes[c.name]["flops"], c.name))
        cost = self._measure(cheapest.name, self.architecture(cheapest))
        if self.budget.fits(cost, teacher_ms):
            raise BudgetError(
                f"None of the {measured} candidates timed (max_measured="
                f"{self.max_measured}, largest first) fits the budget "
                f"({self.budget.describe(teacher_ms)}), but smaller ones do: "
                f"the cheapest, {cheapest.name}, runs "
                f"{cost['latency_ms']['1']:.2f} ms. Raise max_measured "
                "(--max_measured); a re-run keeps what was timed.")
        raise BudgetError(
            f"No candidate fits the budget ({self.budget.describe(teacher_ms)}"
            f", runtime {self.runtime}). The cheapest, {cheapest.name}, runs "
            f"{cost['latency_ms']['1']:.2f} ms at batch 1 "
            f"({teacher_ms / cost['latency_ms']['1']:.2f}x the teacher's "
            f"{teacher_ms:.2f} ms on {self.against}) with "
            f"{cost['params']:,} parameters.")

    # -- ranking and healing -------------------------------------------------------

    def _cut(self, candidate):
        """The classifier of ``candidate`` cut from the teacher (head
        sliced) and its plan."""
        kept = plan(candidate, self.importance())
        return extract(self.teacher, **kept), kept

    def proxy(self, fitting):
        """Proxy error of every frontier candidate (cached), best first."""
        train = self._encoded("train", limit=2048)
        held = self._encoded("validation", limit=256)
        for c in tqdm(fitting, desc="proxy errors", disable=not self.progress):
            if c.name in self.state["proxy"]:
                continue
            if self._out_of_time():
                break
            keras.utils.set_random_seed(self.seed)
            student, kept = self._cut(c)
            workdir = os.path.join(self.out, "proxy", c.name)
            result = estimate_error(student.backbone, self.teacher.backbone,
                                    kept, train, held, workdir,
                                    steps=self.proxy_steps, batch_size=16)
            shutil.rmtree(workdir, ignore_errors=True)
            self.state["proxy"][c.name] = result["error"]
            self._save()
            keras.backend.clear_session(free_memory=True)
        ranked = [c for c in fitting if c.name in self.state["proxy"]]
        ranked.sort(key=lambda c: (self.state["proxy"][c.name], c.name))
        return ranked

    def heal(self, candidate):
        """Two-stage distillation of ``candidate``; its row (cached)."""
        name = candidate.name
        if name in self.state["healed"]:
            return self.state["healed"][name]
        folder = os.path.join(self.out, "candidates", name)
        init = os.path.join(folder, "init")
        keras.utils.set_random_seed(self.seed)
        student, kept = self._cut(candidate)
        stage1 = {}
        if not os.path.isdir(init):
            what = "hidden-state" + (" and attention"
                                     if self.heal_attention else "")
            self._say(f"\n=== {name}: stage 1, {what} distillation "
                      f"({self.heal_steps} steps on the task's texts)")
            stage1 = estimate_error(
                student.backbone, self.teacher.backbone, kept,
                self._encoded("train", limit=self.train_examples),
                self._encoded("validation", limit=256),
                os.path.join(folder, "stage1"), steps=self.heal_steps,
                batch_size=self.heal_batch_size,
                attention_weight=self.heal_attention)
            save_classifier(student, self.tokenizer, init, overwrite=True)
            write_json(os.path.join(folder, "stage1.json"), stage1)
            shutil.rmtree(os.path.join(folder, "stage1"), ignore_errors=True)
        stage1 = read_json(os.path.join(folder, "stage1.json"), {})
        self._say(f"=== {name}: stage 2, task distillation from the teacher "
                  "(logits)" + (f", {self.augment} teacher-labelled augmented "
                                f"cop{'y' if self.augment == 1 else 'ies'} "
                                "per example" if self.augment else ""))
        config = self._finetune_config(init)
        record = finetune(config, os.path.join(folder, "run"))
        best = os.path.join(folder, "run", "best")
        model = load_classifier_folder(best)
        row = {"name": name, **dataclasses.asdict(candidate),
               "params": int(parameter_counts(model.backbone)["params"]),
               "proxy_error": self.state["proxy"].get(name),
               "stage1_error": stage1.get("error"),
               "folder": best,
               "validation_accuracy": self._score(model, "validation"),
               "test_accuracy": self._score(model, "test"),
               "train_seconds": record.get("train_seconds")}
        self.state["healed"][name] = row
        self._save()
        self._say(f"   {name}: validation {row['validation_accuracy']:.4f}, "
                  f"test {row['test_accuracy']:.4f}")
        return row

    def _scored_split(self, split):
        """``(inputs, labels)`` a model is scored on: the first
        ``eval_examples`` (0: all) of ``split``."""
        n = self.eval_examples or len(self.texts[split].texts)
        return (self._encoded(split, limit=n),
                np.asarray(self.texts[split].labels[:n]))

    def _score(self, model, split):
        return _accuracy(model, *self._scored_split(split))

    def _finetune_config(self, init):
        config = self.make_config()
        if self.record is not None:
            config.task = self.record["task"]
            for key, value in (self.record.get("data") or {}).items():
                if key in config.data and not key.startswith("max_"):
                    config.data[key] = value
        config.init_checkpoint = init
        config.distill.teacher = self.teacher_dir
        config.max_seq_length = self.seq_len
        # None keeps the fine-tuning recipe's choice (auto: epochs for at
        # least 100 steps, the learning rate by width and steps).
        if self.epochs is not None:
            config.train.epochs = self.epochs
        if self.learning_rate is not None:
            config.train.learning_rate = self.learning_rate
        config.data.max_train_examples = self.train_examples
        config.distill.augment = self.augment
        config.data.max_eval_examples = self.eval_examples
        config.data.max_test_examples = self.eval_examples
        config.seed = self.seed
        return config

    # -- the run ------------------------------------------------------------------

    def run(self):
        """Runs (or resumes) the compression; the folder's lock is released
        at the end, whatever happens."""
        try:
            return self._run()
        finally:
            self.folder.close()

    def _run(self):
        teacher_cost = self.measure_teacher()
        teacher_ms = teacher_cost["latency_ms"]["1"]
        fitting = self.frontier(teacher_cost)
        ranked = self.proxy(fitting)
        if not ranked:
            raise TimeBudgetError(
                "The time budget ran out before any candidate was ranked; "
                "raise --time_budget_min (a re-run keeps what was measured).")
        self._say("ranked by proxy error: " + ", ".join(
            f"{c.name} {self.state['proxy'][c.name]:.3f}"
            for c in ranked[:max(self.k, 5)]))
        rows = []
        for c in ranked[:self.k]:
            if c.name not in self.state["healed"] and self._out_of_time():
                self._say(f"time budget reached: {c.name} and later "
                          "candidates are not healed")
                break
            rows.append(self.heal(c))
            keras.backend.clear_session(free_memory=True)
        if not rows:
            raise TimeBudgetError(
                "The time budget ran out before any candidate was healed; "
                "raise --time_budget_min (a re-run keeps what was measured).")
        for row in rows:
            row["latency_ms"] = self.state["costs"][row["name"]][
                "latency_ms"]["1"]
            row["speedup"] = teacher_ms / row["latency_ms"]
        final = self.final_timing(rows)
        pool, warnings = retimed_pool(rows, self.budget.max_ms(teacher_ms),
                                      teacher_ms)
        for warning in warnings:
            self._say("warning: " + warning)
        teacher_row = {
            "name": "teacher", "folder": self.teacher_dir,
            "params": int(parameter_counts(self.teacher.backbone)["params"]),
            "validation_accuracy": self._score(self.teacher, "validation"),
            "test_accuracy": self._score(self.teacher, "test"),
            "latency_ms": teacher_ms, "speedup": 1.0}
        chosen = choose(pool, self.budget,
                        teacher_row["validation_accuracy"])
        if chosen is None:
            best = max(rows, key=lambda r: r["validation_accuracy"])
            raise BudgetError(
                f"No healed candidate keeps the accuracy asked "
                f"({self.budget.describe(teacher_ms)}): the best, "
                f"{best['name']}, has validation accuracy "
                f"{best['validation_accuracy']:.4f} against the teacher's "
                f"{teacher_row['validation_accuracy']:.4f}. Results so far "
                f"are in {self.state_path}.")
        model_dir = os.path.join(self.out, "model")
        with atomic_path(model_dir) as tmp:
            shutil.copytree(chosen["folder"], tmp)
            # The task it was trained on travels with it (export's parity
            # gate, predict --evaluate and a further compress read it).
            write_json(os.path.join(tmp, RECORD_FILE), self.record)
        results = {
            "teacher": teacher_row, "rows": rows, "chosen": chosen["name"],
            "budget": dataclasses.asdict(self.budget),
            "max_ms": self.budget.max_ms(teacher_ms),
            "runtime": self.runtime, "speedup_against": self.against,
            "seq_len": self.seq_len,
            "teacher_latency_ms": teacher_cost["latency_ms"],
            "frontier": [c.name for c in fitting],
            "timed": sum(name in self.by_name
                         for name in self.state["costs"]),
            "candidates": len(self.candidates),
            "proxy": {c.name: self.state["proxy"][c.name] for c in ranked},
            "final_timing": final, "warnings": warnings,
            "load": {"teacher_timed": self.state["costs"]["teacher"].get(
                         "load"),
                     "final_timing": self.final_load,
                     "cores": os.cpu_count()},
            "data": {s: t.source for s, t in self.texts.items()},
            "model": model_dir, "minutes": (time.time() - self.start) / 60}
        if self.compare:
            results["compare"] = compare_rows(self.compare)
            results["compare_source"] = os.path.abspath(self.compare)
        if self.export:
            results["export"] = self._export(model_dir)
        write_json(os.path.join(self.out, "results.json"), results)
        write_report(self.out, results)
        self._say(f"\nchosen: {chosen['name']} -> {model_dir} (validation "
                  f"{chosen['validation_accuracy']:.4f}, test "
                  f"{chosen['test_accuracy']:.4f} = "
                  f"{chosen['test_accuracy'] / teacher_row['test_accuracy']:.1%}"
                  f" of the teacher, {chosen['speedup']:.2f}x on "
                  f"{self.runtime}" + (f" against the teacher on {self.against}"
                                       if self.against != self.runtime
                                       else "") + "); report: "
                  f"{os.path.join(self.out, 'report.md')}")
        return results

    def final_timing(self, rows, rounds=30):
        """The teacher and every healed candidate timed again round-robin
        (batch 1, median of ``rounds``; one rotation per runtime) on the
        runtime, the teacher's runtime (``speedup_against``) and Keras
        float32 (the reference of the speed goals).
        Sets each row's ``speedup_round_robin`` (the candidate on the
        runtime against the teacher on ``speedup_against``) and
        ``speedup_vs_keras_float32``. Skipped (None) under a ``measure``
        stand-in."""
        if self._measure_fn is not None:
            return None
        self._say(f"\n=== Timing the teacher and {len(rows)} healed "
                  f"candidates round-robin (batch 1, {rounds} rounds)")
        models = {"teacher": self.teacher.backbone}
        for row in rows:
            models[row["name"]] = load_classifier_folder(
                row["folder"]).backbone
        costs = list(dict.fromkeys(
            [RUNTIMES[self.runtime], RUNTIMES[self.against], "keras"]))
        ms = {}
        for cost in costs:  # One rotation per runtime (see above).
            calls = {(name, cost): timed_calls(model, cost, (1,),
                                               self.seq_len)[1]
                     for name, model in models.items()}
            ms.update({key: value["median_ms"] for key, value in
                       median_latencies(calls, rounds=rounds,
                                        warmup=3).items()})
        self.final_load = load_average()
        runtime_cost = RUNTIMES[self.runtime]
        for row in rows:
            row["latency_ms_round_robin"] = ms[(row["name"], runtime_cost)]
            row["speedup_round_robin"] = (
                ms[("teacher", RUNTIMES[self.against])]
                / row["latency_ms_round_robin"])
            row["speedup_vs_keras_float32"] = (
                ms[("teacher", "keras")] / row["latency_ms_round_robin"])
        return {f"{name}/{cost}": value for (name, cost), value in ms.items()}

    def _export(self, model_dir):
        """The chosen model as a TFLite file behind the parity gate (int8
        for ``tflite_int8``, float32 otherwise) on the task's validation
        texts."""
        quantize = "dynamic" if self.runtime == "tflite_int8" else "none"
        report = export_model(model_dir, os.path.join(self.out, "export"),
                              formats="tflite", quantize=quantize,
                              seq_len=self.seq_len, num_examples=256,
                              overwrite=True)
        entry = next(e for e in report["exports"]
                     if e["quantize"] == quantize)
        path = os.path.join(self.out, "export", entry["path"])
        # The file is what ships: its own accuracy on the test split.
        inputs, labels = self._scored_split("test")
        logits = TFLiteRunner(path)(inputs)["logits"]
        return {"path": path, "quantize": quantize,
                "parity": entry["parity"]["metrics"],
                "test_accuracy": float(np.mean(
                    np.argmax(logits, -1)[:len(labels)] == labels))}


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


def compress(teacher, out, budget, make_config, **kwargs):
    """Compresses the fine-tuned classifier folder ``teacher`` into the most
    accurate model within ``budget`` (see the module docstring).

    Args:
        teacher: str. A fine-tuned classifier folder (``RUN/best``).
        out: str. Output folder; a re-run with the same settings (budget
            and teacher included) resumes. A folder that holds anything
            else is refused (``trimzoo.utils.run_folder``); it can never be
            the current directory or hold the teacher.
        budget: :class:`Budget`.
        make_config: callable returning a fresh fine-tuning ConfigDict
            (``configs/finetune.py``'s ``get_config``); its task and data
            are set from the teacher's record.
        runtime: str. One of ``RUNTIMES``. Defaults to ``"keras"``.
        space: str. The search space (``trimzoo.search.space``). Defaults
            to ``"fractions"``.
        trimbert_knobs: bool. Also FFN every 2nd layer and the sigmoid
            normaliser. Defaults to False.
        data: str or None. A text file of unlabelled (or labelled) training
            texts for the healing; None: the teacher's task.
        seq_len, batch_size: the timed shape (batch 1 and ``batch_size``).
        k: int. Candidates healed. Defaults to 3.
        max_measured: int. Candidates timed at most. Defaults to 48.
        proxy_steps, heal_steps: hidden-state distillation steps of the
            proxy and of healing stage 1.
        heal_attention: float. Weight of the attention term in healing
            stage 1 (each student head learns the attention weights of the
            teacher head it was cut from); 0: hidden states alone.
            Defaults to ``HEAL_ATTENTION``.
        epochs, learning_rate: healing stage 2; None (the default): the
            fine-tuning recipe's (``trimzoo.training.recipes``).
        train_examples: int. Stage 2 training examples (0: all).
        seed: int. Defaults to 0.
        time_budget_min: float or None. No new proxy or heal starts after
            this many minutes.
        augment: int. Stage 2 also trains on this many word-replaced
            copies of each training example, labelled by the teacher
            (``distill.augment``, ``trimzoo.data.augment``); 0 (the
            default): none.
        speedup_against: str or None. The runtime the teacher is timed on
            (one of ``RUNTIMES``): speed-ups and latencies are against the
            teacher there while the candidates run on ``runtime``, e.g.
            ``runtime="tflite_int8", speedup_against="keras"`` for "15x
            faster in TFLite int8 than the teacher in Keras float32".
            None (the default): ``runtime``.
        export: bool. Export the chosen model to TFLite (parity gate).
        measure: callable(backbone) -> cost dict or None. Replaces the
            timing (tests).
        compare: str or None. A compression table's ``results.json``: its
            single-route rows join the report and the plot.
        overwrite: bool. Start over in an ``out`` that holds a compression
            run of other settings: what compress wrote there is removed,
            nothing else. Defaults to False.

    Returns:
        dict: ``results.json``'s content (``chosen``, ``rows``, ``teacher``,
        ``model``).

    Raises:
        BudgetError: nothing fits the budget.
    """
    return Compressor(teacher, out, budget, make_config, **kwargs).run()


# -- report -------------------------------------------------------------------

def _x(value):
    return "" if value is None else f"{value:.2f}x"


def _against(results):
    """``" (speed-ups against the teacher on R)"`` when the teacher's
    runtime differs from the candidates', else ``""``."""
    against = results.get("speedup_against") or results["runtime"]
    return ("" if against == results["runtime"]
            else f" (speed-ups against the teacher on {against})")


def _pct(value, reference):
    return f"{100 * value / reference:.1f}%" if reference else "n/a"


#: The 1-minute load average counts this run's own training just before a
#: timing (up to one per core), so other work is assumed above this many
#: times the number of cores.
BUSY_LOAD = 1.5


def busy_timings(load):
    """A note on the timings taken while the 1-minute load average was above
    ``BUSY_LOAD`` times the number of cores (``results.json``'s ``load``),
    or ``""``.

    >>> busy_timings({"teacher_timed": [5.1, 4.0, 3.0],
    ...               "final_timing": [2.0, 1.0, 1.0], "cores": 2})
    'load 5.1 on 2 cores while the teacher was timed'
    >>> busy_timings({"teacher_timed": [0.9, 1, 1], "final_timing": None,
    ...               "cores": 2})
    ''
    """
    load = load or {}
    cores = load.get("cores") or 1
    where = {"teacher_timed": "while the teacher was timed",
             "final_timing": "during the final timing"}
    return "; ".join(f"load {load[k][0]:g} on {cores} cores {text}"
                     for k, text in where.items()
                     if load.get(k) and load[k][0] > BUSY_LOAD * cores)


def write_report(out, results):
    """``report.md`` and ``pareto.png`` of a compression run."""
    teacher = results["teacher"]
    lines = [
        "# Compression to a budget", "",
        f"Teacher: `{teacher['folder']}`; runtime {results['runtime']}"
        + _against(results) + ", "
        f"{results['seq_len']} tokens; budget: "
        + Budget(**results["budget"]).describe(teacher["latency_ms"]) + ".",
        f"Candidates: {results['candidates']}, timed {results['timed']}, on "
        f"the frontier {len(results['frontier'])}, healed "
        f"{len(results['rows'])}; chosen on validation: "
        f"**{results['chosen']}**. Data: "
        + "; ".join(f"{k}: {v}" for k, v in results["data"].items()) + ".",
        "",
        "| model | params | proxy error | validation | test | % of teacher "
        "(test) | ms (batch 1) | speedup | speedup, round-robin | vs Keras "
        "float32 teacher |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for row in [teacher] + sorted(results["rows"],
                                  key=lambda r: -r["validation_accuracy"]):
        mark = " (chosen)" if row["name"] == results["chosen"] else ""
        proxy = row.get("proxy_error")
        lines.append(
            f"| {row['name']}{mark} | {row['params']:,} | "
            f"{'' if proxy is None else f'{proxy:.3f}'} | "
            f"{row['validation_accuracy']:.4f} | {row['test_accuracy']:.4f} | "
            f"{_pct(row['test_accuracy'], teacher['test_accuracy'])} | "
            f"{row['latency_ms']:.2f} | {row['speedup']:.2f}x | "
            f"{_x(row.get('speedup_round_robin'))} | "
            f"{_x(row.get('speedup_vs_keras_float32'))} |")
    if results.get("compare"):
        lines += ["", "Single routes for comparison (the compression table, "
                  f"`{results['compare_source']}`):", "",
                  "| route | % of teacher (test) | speed-up |", "|---|---|---|"]
        lines += [f"| {r['name']} | {r['percent_of_teacher']:.1f}% | "
                  f"{r['speedup']:.2f}x |" for r in results["compare"]]
    if "export" in results:
        e = results["export"]
        lines += ["", f"Export: `{e['path']}` ({e['quantize']}), parity gate "
                  f"passed: label agreement "
                  f"{e['parity'].get('label_agreement', float('nan')):.4f}"
                  + (f"; test accuracy of the file {e['test_accuracy']:.4f}"
                     if "test_accuracy" in e else "") + "."]
    for warning in results.get("warnings", []):
        lines += ["", f"**Warning**: {warning}"]
    busy = busy_timings(results.get("load"))
    if busy:
        lines += ["", f"**Timed on a busy machine** ({busy}): other work "
                  "shared the CPU, so the speed-ups may be off; re-run the "
                  "same command on a quiet machine to time again (the "
                  "healed models are kept)."]
    lines += ["", f"{results['minutes']:.1f} minutes."]
    write_text(os.path.join(out, "report.md"), "\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    rows = results["rows"]

    def x(row):
        return row.get("speedup_round_robin") or row["speedup"]

    def y(row):
        return 100 * row["test_accuracy"] / teacher["test_accuracy"]

    ax.scatter([x(r) for r in rows], [y(r) for r in rows],
               label="healed candidates (this run)")
    for r in rows:
        mark = " (chosen)" if r["name"] == results["chosen"] else ""
        ax.annotate(r["name"] + mark, (x(r), y(r)), fontsize=7)
    ax.scatter([1.0], [100.0], marker="*", s=120, label="teacher")
    compare = results.get("compare") or []
    if compare:
        ax.scatter([r["speedup"] for r in compare],
                   [r["percent_of_teacher"] for r in compare], marker="x",
                   color="grey", label="single routes (compression table)")
    if results.get("max_ms"):
        ax.axvline(teacher["latency_ms"] / results["max_ms"], ls="--",
                   color="red", label="budget")
    ax.set_xlabel(f"speed-up over the teacher ({results['runtime']}"
                  + _against(results) + ", batch 1, round-robin)")
    ax.set_ylabel("test accuracy, % of the teacher's")
    ax.legend(fontsize=7)
    save_figure(fig, os.path.join(out, "pareto.png"))
    plt.close(fig)
