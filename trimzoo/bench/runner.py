"""The benchmark run: every number of the report.

Speed is measured round-robin (``trimzoo.utils.timing.round_robin``): the
models of a comparison run in turn within every round, so ratios (trimzoo
vs its keras-hub peer, a preset vs the reference) are medians of per-round
ratios and hold on a machine shared with other work, where absolute times
move with the load.

The phases are in :mod:`trimzoo.bench.phases`; :class:`Run` runs them in
order, each (with ``isolate_phases``) in a fresh process, and collects
their numbers.

Examples:

>>> results = run(BenchmarkConfig(
...     models=("bert_tiny",), drops=(), seq_len=8, batch_size=2,
...     overrides=dict(vocabulary_size=100, num_layers=1, hidden_dim=16,
...                    num_heads=2, intermediate_dim=32,
...                    max_sequence_length=16),
...     peers=False, tflite=False, scaling=False, memory=False,
...     variants=False, profile=False, flops_check=False, infer_rounds=1,
...     train_rounds=1, progress=False, isolate_phases=False,
...     precisions=("float32",), onednn_probe=False))
>>> row = results["models"][0]
>>> row["model"], row["num_layers"], row["infer_ms_b1"] > 0
('bert_tiny', 1, True)
"""

import dataclasses
import time

from trimzoo.bench import goals
from trimzoo.bench.config import (  # noqa: F401  (names of this module)
    DEFAULT_DROPS,
    DEFAULT_MODELS,
    DEFAULT_PRECISIONS,
    FULL_MODELS,
    PEER,
    PRECISIONS,
    BenchmarkConfig,
    ModelSpec,
    parse_drops,
    resolve_precisions,
    resolve_reference,
    resolve_specs,
    round_key,
)
from trimzoo.bench.context import Context
from trimzoo.bench.environment import environment
from trimzoo.utils.hardware import load_average
from trimzoo.bench.phases import PHASES
from trimzoo.bench.phases import training as training_phase
from trimzoo.utils.io import jsonable, read_json
from trimzoo.utils.process import quiet_tensorflow_env, run_in_fresh_process


def run_phase(config, rows, phase, arg=None):
    """Runs phase ``phase`` (see ``trimzoo.bench.phases.PHASES``) on
    ``rows``; returns ``{"rows": ..., "results": ...}`` (plain values, so
    it can run in a fresh process)."""
    ctx = Context(config, rows)
    PHASES[phase](ctx, *(() if arg is None else (arg,)))
    return jsonable({"rows": ctx.rows, "results": ctx.results})


def _deep_merge(target, update):
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = value


class Run:
    """One benchmark run: runs the phases and fills ``results``.

    With ``config.isolate_phases`` every phase (and every training group)
    runs in a fresh Python process that builds only the models it needs
    (same seeds, so the same weights) and returns its numbers: memory the
    TensorFlow allocator keeps after a phase goes back to the system, and
    no phase holds more than one comparison's models. The memory phase
    runs here and starts one fresh process per row itself.
    """

    def __init__(self, config, command=None):
        self.config = config
        self.rows = {}
        self.context = Context(config, self.rows)
        self.specs = self.context.specs
        self.reference = self.context.reference
        self.results = {
            "command": command,
            "config": jsonable(dataclasses.asdict(config)),
            "reference": self.reference,
            "load": {"start": load_average()},
            "phases": {},
        }

    def _execute(self, phase, label, arg=None):
        """Runs one phase here or in a fresh process, and records its time
        and the machine load; a failed phase (other than ``build``) is
        reported in ``results["errors"]``."""
        start = time.perf_counter()
        load = load_average()
        try:
            if self.config.isolate_phases and phase != "memory":
                update = run_in_fresh_process(
                    run_phase, self.config, self.rows, phase, arg,
                    env=quiet_tensorflow_env())
            else:
                update = run_phase(self.config, self.rows, phase, arg)
            for name, fields in update["rows"].items():
                self.rows.setdefault(name, {}).update(fields)
            _deep_merge(self.results, update["results"])
        except Exception as e:  # A failed phase is reported, not fatal.
            if phase == "build":
                raise
            self.results.setdefault("errors", {})[label] = (
                f"{type(e).__name__}: {str(e)[-1500:]}")
        self.results["phases"][label] = {
            "seconds": round(time.perf_counter() - start, 1),
            "load_start": load, "load_end": load_average()}

    def run(self):
        cfg = self.config
        started = time.time()
        self.results["environment"] = environment(cfg.onednn_probe)
        self._execute("build", "build")
        self._execute("inference", "inference")
        if cfg.profile:
            self._execute("profiles_inference", "profiles")
        for name in self.context.each(training_phase.order(self.context),
                                      "training groups"):
            self._execute("train_group", f"training {name}", name)
        if len(self.context.precisions) > 1:
            for name in self.context.each(self.context.rows,
                                          "precision groups"):
                self._execute("precisions", f"precisions {name}", name)
        optional = (("classifier", bool(cfg.classifier)),
                    ("tflite", cfg.tflite), ("scaling", cfg.scaling),
                    ("variants", cfg.variants),
                    ("check_flops", cfg.flops_check),
                    ("memory", cfg.memory))
        for phase, enabled in optional:
            if enabled:
                self._execute(phase, phase)
        self.results["models"] = [self.rows[s.name] for s in self.specs]
        self.results["goals"] = goals.evaluate(self.results)
        self.results["load"]["end"] = load_average()
        self.results["seconds"] = round(time.time() - started, 1)
        self.results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        return jsonable(self.results)


def run(config, command=None):
    """Runs the benchmark; returns the JSON-able results dict (see
    ``trimzoo.bench.report`` for its layout)."""
    return Run(config, command=command).run()


def load_results(path):
    """Reads a ``results.json`` written by ``trimzoo.bench.report``."""
    return read_json(path)
