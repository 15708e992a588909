"""The budget's frontier: the candidates that fit, none dominated by
another that fits.

Only candidates inside the budget are timed: those whose FLOPs cannot fit
are skipped, then candidates are timed from the largest down; one no larger
in every dimension than a candidate that already fits is not timed (it
fits, and holds less). Once a few are timed, a latency model fitted to them
(:func:`trimzoo.search.budget.predict_latency`) skips candidates it
predicts far slower than the limit; a candidate that fits by a hair is
timed a second time.
"""

import keras
from tqdm.auto import tqdm

from trimzoo.models import TrimzooBackbone
from trimzoo.models.costs import flops_per_token, parameter_counts
from trimzoo.search.budget import BudgetError, dominated, predict_latency
from trimzoo.search.space import candidate_config

# FLOPs fall faster than latency as a model shrinks (fixed per-call and
# per-layer overheads), so a candidate whose FLOPs are above the budget's
# share of the teacher's by more than this factor cannot fit; nearer ones
# are timed.
FLOPS_MARGIN = 1.25

# Once this many candidates are timed, a latency model fitted to them
# (``Frontier._predicted_ms``) skips candidates it predicts slower than
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


def architecture(teacher, candidate, head_dim):
    """A backbone of ``candidate``'s shape with ``teacher``'s other options
    (weights do not matter for its costs)."""
    return TrimzooBackbone.from_config(
        candidate_config(teacher.get_config(), candidate, head_dim))


class Frontier:
    """Finds the frontier of ``candidates`` under ``budget``.

    Args:
        candidates: list of ``Candidate``.
        budget: ``Budget``.
        timer: ``CandidateTimer`` (its teacher is the reference).
        shapes: dict. ``{name: {"params", "flops"}}``, cached in place.
        head_dim: int. The teacher's head width.
        max_measured: int. Candidates timed at most.
        say: callable(str). Progress lines.
        progress: bool. Show progress bars.
    """

    def __init__(self, candidates, budget, timer, shapes, head_dim,
                 max_measured, say, progress=True):
        self.candidates = candidates
        self.by_name = {c.name: c for c in candidates}
        self.budget, self.timer, self.shapes = budget, timer, shapes
        self.head_dim, self.max_measured = head_dim, max_measured
        self.say, self.progress = say, progress

    def architecture(self, candidate):
        return architecture(self.timer.teacher, candidate, self.head_dim)

    def shape(self, candidate):
        """Parameters and FLOPs of ``candidate`` (cached)."""
        if candidate.name not in self.shapes:
            model = self.architecture(candidate)
            self.shapes[candidate.name] = {
                "params": parameter_counts(model)["params"],
                "flops": float(flops_per_token(
                    model, self.timer.seq_len)["total"])}
            del model
        return self.shapes[candidate.name]

    def find(self, teacher_cost):
        """The candidates that fit, none dominated by another that fits."""
        teacher_ms = teacher_cost["latency_ms"]["1"]
        limit = self.budget.max_ms(teacher_ms)
        # The FLOPs share of the teacher's that can fit, on the runtime
        # the candidates run on.
        runtime_ms = self.timer.teacher_runtime_ms()
        teacher_flops = float(flops_per_token(self.timer.teacher,
                                              self.timer.seq_len)["total"])
        shapes = {c.name: self.shape(c) for c in tqdm(
            self.candidates, desc="shapes (parameters and FLOPs of each "
            "candidate)", disable=not self.progress)}
        self.timer.save()
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
        self.say(f"{len(fitting)} candidates on the budget's frontier "
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
                self.say(f"   timed {measured} candidates (max_measured); "
                         "the rest are left out")
                break
            model = self.architecture(c)
            cost = self.timer.measure(c.name, model)
            if (limit is not None and self.budget.fits(cost, teacher_ms)
                    and cost["latency_ms"]["1"] * CONFIRM_MARGIN > limit):
                cost = self.timer.confirm(c.name, model)
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
        """Batch-1 latency of ``candidate`` by ``predict_latency`` on the
        candidates ``walked`` (timed earlier in this walk); None until
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
            [(features(n), self.timer.costs[n]["latency_ms"]["1"])
             for n in timed], features(candidate.name))

    def _impossible(self, teacher_ms, shapes, measured):
        cheapest = min(self.candidates,
                       key=lambda c: (shapes[c.name]["flops"], c.name))
        cost = self.timer.measure(cheapest.name, self.architecture(cheapest))
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
            f", runtime {self.timer.runtime}). The cheapest, {cheapest.name}, "
            f"runs {cost['latency_ms']['1']:.2f} ms at batch 1 "
            f"({teacher_ms / cost['latency_ms']['1']:.2f}x the teacher's "
            f"{teacher_ms:.2f} ms on {self.timer.against}) with "
            f"{cost['params']:,} parameters.")
