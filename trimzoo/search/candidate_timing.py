"""How compression times the teacher and its candidates on a runtime.

The teacher is timed on its own (round-robin medians at batch 1 and the
user's batch); every candidate is timed round-robin *with* the teacher, so
its speed-up is the median per-round ratio (steady on a busy machine) and
its latency the teacher's first measurement over that ratio: every
candidate is on the teacher's scale. With ``speedup_against`` the teacher is
also timed on another runtime and the ratios are scaled by the teacher's two
latencies, each timed on its own (calls of two runtimes in one rotation
interfere). Every cost is cached in the run's state by name.
"""

import os

from trimzoo.export.benchmark import median_latencies
from trimzoo.models.costs import parameter_counts
from trimzoo.search.budget import RUNTIMES
from trimzoo.search.costs import measure_costs, timed_calls
from trimzoo.utils import timing
from trimzoo.utils.hardware import load_average


class CandidateTimer:
    """Times models against ``teacher`` (a backbone) and caches each cost in
    ``costs`` (a dict of the run's state) by name; ``save`` is called after
    each new cost.

    Args:
        teacher: ``TrimzooBackbone``.
        settings: ``CompressSettings`` (runtime, speedup_against, seq_len,
            batch_size, rounds).
        costs: dict. ``{name: cost}``, updated in place.
        save: callable(). Persists the state.
        measure: callable(backbone) -> cost dict, or None. Replaces the
            timing of candidates (tests); the final timing is then skipped.
    """

    def __init__(self, teacher, settings, costs, save, measure=None):
        self.teacher = teacher
        self.runtime = settings.runtime
        self.against = settings.speedup_against
        self.seq_len, self.rounds = settings.seq_len, settings.rounds
        self.batch_sizes = sorted({1, settings.batch_size})
        self.costs, self.save, self._measure_fn = costs, save, measure
        # A stand-in replaces the timing (tests): no final timing then.
        self.stand_in = measure is not None
        self._teacher_calls = None
        self.final_load = None  # The load average at the final timing.

    def measure(self, name, model):
        """Costs of ``model`` (cached by ``name``): the teacher's own timing
        for ``"teacher"`` (and ``"teacher@<runtime>"``), else round-robin
        with the teacher."""
        if name not in self.costs:
            own = {"teacher": self.against,
                   f"teacher@{self.runtime}": self.runtime}
            if name in own and self._measure_fn is None:
                cost = measure_costs(model, RUNTIMES[own[name]],
                                     self.batch_sizes, self.seq_len,
                                     self.rounds)
            else:
                cost = self._time_candidate(model)
            cost["load"] = load_average()
            self.costs[name] = cost
            self.save()
        return self.costs[name]

    def confirm(self, name, model):
        """``name``'s cost timed a second time, its speed-ups the mean of
        both timings (cached; once per candidate)."""
        cost = self.costs[name]
        if cost.get("timings", 1) > 1:
            return cost
        again = self._time_candidate(model)
        teacher_ms = self.costs["teacher"]["latency_ms"]
        speedups = {b: (teacher_ms[b] / cost["latency_ms"][b]
                        + teacher_ms[b] / again["latency_ms"][b]) / 2
                    for b in cost["latency_ms"]}
        cost = dict(cost, speedup=speedups, timings=2, latency_ms={
            b: teacher_ms[b] / r for b, r in speedups.items()})
        self.costs[name] = cost
        self.save()
        return cost

    def _time_candidate(self, model):
        """A candidate's cost: the ``measure`` stand-in's, or timed
        round-robin with the teacher."""
        if self._measure_fn is not None:
            return self._measure_fn(model)
        return self._measure_against_teacher(model)

    def _measure_against_teacher(self, model):
        # Candidates are timed round-robin with the teacher on their own
        # runtime. Against a teacher on another runtime, that ratio is
        # scaled by the teacher's own two latencies, each timed on its own:
        # calls of two runtimes in one rotation interfere (TensorFlow's
        # threads still spin when a TFLite call starts; on 2 cores of an
        # AMD EPYC, 2026-12-03, that made sub-millisecond TFLite calls
        # 1.5-2x slower).
        cost_name = RUNTIMES[self.runtime]
        if self._teacher_calls is None:
            self._teacher_calls = timed_calls(
                self.teacher, cost_name, self.batch_sizes, self.seq_len)
        mine = timed_calls(model, cost_name, self.batch_sizes, self.seq_len)
        # One rotation per batch size: a batch-1 call right after a
        # batch-8 one runs on caches and threads the large call left,
        # which biased the ratios by up to 20% when they were mixed.
        speedups = {}
        for b in self.batch_sizes:
            times = timing.round_robin(
                {"teacher": self._teacher_calls[b], "model": mine[b]},
                rounds=self.rounds, warmup=2)
            speedups[str(b)] = timing.median_ratio(times["teacher"],
                                                   times["model"])
        teacher_ms = self.costs["teacher"]["latency_ms"]
        if self.against != self.runtime:
            own = self.costs[f"teacher@{self.runtime}"]["latency_ms"]
            speedups = {b: r * teacher_ms[b] / own[b]
                        for b, r in speedups.items()}
        counts = parameter_counts(model)
        return {"params": counts["params"],
                "non_embedding_params": counts["non_embedding_params"],
                "cost": cost_name, "seq_len": self.seq_len,
                "speedup": speedups,
                "latency_ms": {b: teacher_ms[b] / r
                               for b, r in speedups.items()}}

    def measure_teacher(self):
        """The teacher's cost on ``speedup_against`` (cached)."""
        return self.measure("teacher", self.teacher)

    def teacher_runtime_ms(self):
        """The teacher's batch-1 latency on ``runtime`` (timed on its own
        when ``speedup_against`` differs; cached)."""
        if self.against == self.runtime:
            return self.measure("teacher", self.teacher)["latency_ms"]["1"]
        return self.measure(f"teacher@{self.runtime}",
                            self.teacher)["latency_ms"]["1"]

    def final_timing(self, models, rounds=30):
        """The teacher and ``models`` (``{name: backbone}``) timed again
        round-robin (batch 1, median of ``rounds``; one rotation per
        runtime) on the runtime, the teacher's runtime and Keras float32
        (the reference of the speed goals): ``{(name, cost): ms}``, or None
        under a ``measure`` stand-in. Records the load average."""
        if self._measure_fn is not None:
            return None
        models = {"teacher": self.teacher, **models}
        costs = list(dict.fromkeys(
            [RUNTIMES[self.runtime], RUNTIMES[self.against], "keras"]))
        calls = {(name, cost): timed_calls(model, cost, (1,),
                                           self.seq_len)[1]
                 for cost in costs for name, model in models.items()}
        ms = {key: value["median_ms"] for key, value in median_latencies(
            calls, rounds=rounds, warmup=3,
            rotation=lambda key: key[1]).items()}  # one per runtime
        self.final_load = load_average()
        return ms

    def load(self):
        """The load averages at the teacher's timing and the final timing,
        and the number of cores (``results.json``'s ``load``)."""
        return {"teacher_timed": self.costs["teacher"].get("load"),
                "final_timing": self.final_load, "cores": os.cpu_count()}
