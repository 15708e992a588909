"""The benchmark run: every number of the report, measured in one process.

Speed is measured round-robin (``trimzoo.bench.timing.round_robin``): the
models of a comparison run in turn within every round, so ratios (trimzoo
vs its keras-hub peer, a preset vs the reference) are medians of per-round
ratios and hold on a machine shared with other work, where absolute times
move with the load.

Phases: build (parameters, FLOPs, peers) -> Keras inference at batch 1 and
at ``batch_size`` (with a matrix-product probe) -> masked-LM training step
(each row with its peer and the reference) -> TFLite float32 and dynamic
int8 -> scaling with sequence length and batch size -> peak memory (one
fresh process per row) -> what-helps variants (XLA) of the reference ->
FLOPs check against the TF profiler.
"""

import dataclasses
import gc
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

from trimzoo.bench import flops as flops_lib
from trimzoo.bench import memory as memory_lib
from trimzoo.bench import profile as profile_lib
from trimzoo.bench import timing
from trimzoo.bench import workloads

#: ``make bench``: one mini model per paper, minutes on two cores.
DEFAULT_MODELS = ("bert_mini", "trimbert_mini", "bort_mini")
#: The run the goals are about (``docs/benchmarks.md``).
FULL_MODELS = ("bert_base", "trimbert_base", "bort", "bert_large")
#: Layer-dropped rows (Poor Man's BERT, top strategy): ``preset:k``.
DEFAULT_DROPS = ("bert_base:4",)
PEER = "keras_hub"


@dataclasses.dataclass
class ModelSpec:
    """One row of the benchmark: a preset, optionally with its top ``k``
    layers dropped."""

    name: str
    preset: str
    overrides: dict = dataclasses.field(default_factory=dict)
    drop_top: int = 0

    def to_json(self):
        return {"preset": self.preset, "overrides": self.overrides,
                "drop_top": self.drop_top}


@dataclasses.dataclass
class BenchmarkConfig:
    """What to measure and how often.

    Attributes:
        models: preset names (rows), see ``trimzoo.models.list_models()``.
        reference: the row ratios are taken against; defaults to
            ``bert_base`` when present, else the first BERT row, else the
            first row.
        drops: ``"preset:k"`` rows with the top ``k`` layers dropped
            (skipped when ``preset`` is not in ``models``).
        overrides: ``TrimzooBackbone`` arguments applied to every preset
            (to shrink models, e.g. in tests).
        seq_len, batch_size, train_batch_size: the shapes (tokens per
            sequence; batch of the throughput column; batch of the
            training step).
        infer_rounds, train_rounds, tflite_rounds, scaling_rounds: timed
            rounds per phase.
        seq_lens, batch_sizes: the scaling sweeps (batch 1 / ``seq_len``).
        peers, tflite, scaling, memory, variants, profile, flops_check:
            switch phases on or off.
        train_peer_max_params: rows above this size get no keras-hub
            training peer: two AdamW states of a BERT-large (4 GB each) do
            not fit next to everything else on a small machine.
        tflite_isolate: convert in a subprocess (TF's converter leaks
            memory per call; off only for small models).
        isolate_phases: run every phase in a fresh process (see ``Run``);
            off only for small models (tests).
    """

    models: tuple = DEFAULT_MODELS
    reference: str = None
    drops: tuple = DEFAULT_DROPS
    overrides: dict = dataclasses.field(default_factory=dict)
    seq_len: int = 128
    batch_size: int = 8
    train_batch_size: int = 4
    infer_rounds: int = 15
    train_rounds: int = 5
    tflite_rounds: int = 15
    scaling_rounds: int = 3
    seq_lens: tuple = (64, 128, 256, 512)
    batch_sizes: tuple = (1, 2, 4, 8, 16)
    peers: bool = True
    train_peer_max_params: int = 200_000_000
    tflite: bool = True
    tflite_isolate: bool = True
    scaling: bool = True
    memory: bool = True
    variants: bool = True
    profile: bool = True
    flops_check: bool = True
    seed: int = 0
    progress: bool = True
    isolate_phases: bool = True


def parse_drops(drops, models):
    """``ModelSpec`` rows for ``"preset:k"`` entries whose preset runs."""
    specs = []
    for entry in drops:
        preset, sep, k = entry.partition(":")
        if not sep or not k.isdigit() or int(k) < 1:
            raise ValueError(
                f"Bad drop entry {entry!r}: expected 'preset:k' with k >= 1,"
                " e.g. 'bert_base:4'.")
        if preset in models:
            specs.append(ModelSpec(f"{preset}-drop{k}", preset,
                                   drop_top=int(k)))
    return specs


def resolve_specs(config):
    """The rows of a run, checked against the preset table."""
    from trimzoo.models import list_models

    valid = list_models()
    unknown = [m for m in config.models if m not in valid]
    if unknown:
        raise ValueError(f"Unknown models {unknown}. Valid names: {valid}.")
    if not config.models:
        raise ValueError("No models to benchmark.")
    if len(set(config.models)) != len(config.models):
        raise ValueError(f"Duplicate models in {list(config.models)}.")
    specs = [ModelSpec(m, m) for m in config.models]
    specs += parse_drops(config.drops, config.models)
    for spec in specs:
        spec.overrides = dict(config.overrides)
    return specs


def resolve_reference(config, specs):
    names = [s.name for s in specs]
    if config.reference:
        if config.reference not in names:
            raise ValueError(f"reference {config.reference!r} is not one of "
                             f"the rows {names}.")
        return config.reference
    for candidate in ("bert_base", *[n for n in names
                                    if n.startswith("bert_")]):
        if candidate in names:
            return candidate
    return names[0]


# --- Environment --------------------------------------------------------------

def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass
    return None


def _load():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def environment():
    """Machine and library versions, for the report header."""
    import importlib.metadata as md

    import tensorflow as tf

    versions = {"python": platform.python_version()}
    for package in ("tensorflow", "keras", "keras-hub", "numpy",
                    "ai-edge-litert"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "platform": platform.platform(),
        "versions": versions,
        "tf_threads": {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        },
        "onednn": onednn,
    }


# --- The run -----------------------------------------------------------------

class _Progress:
    def __init__(self, enabled):
        self.enabled = enabled

    def bar(self, total, desc):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, disable=not self.enabled,
                    leave=False, file=sys.stderr)

    def rounds(self, calls, rounds, desc, **kwargs):
        with self.bar(rounds, desc) as bar:
            return timing.round_robin(
                calls, rounds=rounds,
                progress=lambda done: bar.update(1) if done <= rounds
                else None, **kwargs)


class Run:
    """One benchmark run: builds models on demand and fills ``results``.

    With ``config.isolate_phases`` every phase (and every training group)
    runs in a fresh Python process that builds only the models it needs
    (same seeds, so the same weights) and returns its numbers: memory the
    TensorFlow allocator keeps after a phase goes back to the system, and
    no phase holds more than one comparison's models.
    """

    def __init__(self, config, command=None):
        self.config = config
        self.specs = resolve_specs(config)
        self.reference = resolve_reference(config, self.specs)
        self.progress = _Progress(config.progress)
        self.rows = {}        # name -> result dict
        self._backbones = {}  # name -> TrimzooBackbone (built on demand)
        self._peers = {}      # name -> keras-hub BertBackbone
        self.results = {
            "command": command,
            "config": _jsonable(dataclasses.asdict(config)),
            "reference": self.reference,
            "load": {"start": _load()},
            "phases": {},
        }

    # -- models -------------------------------------------------------------

    def backbone(self, name):
        """The row's backbone, built (seeded by the row's position) on
        first use."""
        if name not in self._backbones:
            import keras

            from trimzoo.bench.memory import build_model

            index = [s.name for s in self.specs].index(name)
            keras.utils.set_random_seed(self.config.seed + index)
            spec = self.specs[index]
            self._backbones[name] = build_model(spec.to_json())
        return self._backbones[name]

    def peer(self, name):
        """The row's keras-hub peer (its weights copied into the row's
        backbone), or None when there is none or peers are off."""
        if not self.config.peers:
            return None
        if name not in self._peers:
            self._peers[name] = workloads.keras_hub_peer(self.backbone(name))
        return self._peers[name]

    def release(self):
        """Drops every model of this process."""
        self._backbones.clear()
        self._peers.clear()
        gc.collect()

    # -- helpers ------------------------------------------------------------

    def _keep_rounds(self, phase, times):
        """Keeps the per-round seconds (goals take ratios of any two rows
        timed in the same phase)."""
        self.results.setdefault("rounds", {})[phase] = {
            round_key(key): [float(t) for t in values]
            for key, values in times.items()}

    def _inputs(self, name, batch_size, seq_len):
        return workloads.text_inputs(batch_size, seq_len,
                                     self.rows[name]["vocabulary_size"])

    def progress_iter(self, items, desc):
        with self.progress.bar(len(items), desc) as bar:
            for item in items:
                yield item
                bar.update(1)

    # -- phases -------------------------------------------------------------

    def build(self):
        """Parameters, FLOPs and the peer check of every row."""
        for spec in self.progress_iter(self.specs, "build"):
            backbone = self.backbone(spec.name)
            row = {"model": spec.name, "preset": spec.preset,
                   "dropped_layers": spec.drop_top,
                   "num_layers": backbone.num_layers,
                   "hidden_dim": backbone.hidden_dim,
                   "vocabulary_size": backbone.vocabulary_size}
            row.update(flops_lib.parameter_counts(backbone))
            per_token = flops_lib.flops_per_token(backbone,
                                                  self.config.seq_len)
            row["flops_per_token"] = per_token["total"]
            row["train_flops_per_token"] = flops_lib.train_flops_per_token(
                backbone, self.config.seq_len)
            reason = workloads.peer_unavailable_reason(backbone)
            row["peer"] = None
            row["peer_reason"] = reason
            self.rows[spec.name] = row
            if reason is None and not self.config.peers:
                row["peer_reason"] = "peers switched off"
            elif reason is None:
                peer = self.peer(spec.name)
                row["peer"] = "keras_hub.models.BertBackbone"
                x = self._inputs(spec.name, 2, 16)
                a = backbone(x, training=False)["sequence_output"]
                b = peer(x, training=False)["sequence_output"]
                row["peer_max_abs_diff"] = float(np.max(np.abs(
                    np.asarray(a) - np.asarray(b))))
            self.release()

    def inference(self):
        cfg = self.config
        for batch, suffix in ((1, "b1"),
                              (cfg.batch_size, f"b{cfg.batch_size}")):
            calls = {}
            for name in self.rows:
                x = self._inputs(name, batch, cfg.seq_len)
                calls[name] = workloads.inference_call(self.backbone(name), x)
                if self.rows[name]["peer"]:
                    calls[(name, PEER)] = workloads.inference_call(
                        self.peer(name), x)
            probe, probe_flops = workloads.matmul_probe(batch * cfg.seq_len)
            calls["matmul_probe"] = probe
            times = self.progress.rounds(calls, cfg.infer_rounds,
                                         f"inference batch {batch}")
            del calls
            self._keep_rounds(f"infer_{suffix}", times)
            probe_rate = [probe_flops / t for t in times["matmul_probe"]]
            self.results.setdefault("matmul_rate", {})[suffix] = {
                "shape": [batch * cfg.seq_len, 1024, 4096],
                "gflops": round(timing.median(probe_rate) / 1e9, 2)}
            tokens = batch * cfg.seq_len
            for name, row in self.rows.items():
                t = times[name]
                row[f"infer_ms_{suffix}"] = 1000 * timing.median(t)
                row[f"infer_tok_s_{suffix}"] = tokens / timing.median(t)
                row[f"infer_spread_{suffix}"] = timing.spread(t)
                flops = row["flops_per_token"] * tokens
                row[f"infer_gflops_{suffix}"] = flops / timing.median(t) / 1e9
                row[f"matmul_fraction_{suffix}"] = timing.median(
                    [(flops / tm) / rate for tm, rate in zip(t, probe_rate)])
                if (name, PEER) in times:
                    tp = times[(name, PEER)]
                    row[f"peer_infer_ms_{suffix}"] = 1000 * timing.median(tp)
                    row[f"peer_infer_ratio_{suffix}"] = timing.median_ratio(
                        tp, t)
                    if suffix == "b1":
                        row["peer_infer_ratio"] = row["peer_infer_ratio_b1"]
                ref = times[self.reference]
                row[f"infer_speedup_vs_ref_{suffix}"] = timing.median_ratio(
                    ref, t)
        self.release()

    def training_order(self):
        """Training groups, the reference's first."""
        return [self.reference] + [n for n in self.rows
                                   if n != self.reference]

    def train_group(self, name):
        """Times the training step of row ``name`` round-robin with its
        keras-hub peer and the reference (and profiles them)."""
        cfg = self.config
        row = self.rows[name]
        batch = workloads.mlm_batch(cfg.train_batch_size, cfg.seq_len,
                                    row["vocabulary_size"], seed=cfg.seed)
        steps = {name: workloads.TrainStep(
            workloads.masked_lm(self.backbone(name)), batch)}
        if row["peer"]:
            if row["params"] <= cfg.train_peer_max_params:
                steps[(name, PEER)] = workloads.TrainStep(
                    workloads.masked_lm(self.peer(name)), batch)
            else:
                row["peer_train_skipped"] = (
                    f"{row['params'] / 1e6:.0f}M parameters is above "
                    f"train_peer_max_params="
                    f"{cfg.train_peer_max_params / 1e6:.0f}M (memory)")
        if name != self.reference:
            ref_batch = workloads.mlm_batch(
                cfg.train_batch_size, cfg.seq_len,
                self.rows[self.reference]["vocabulary_size"], seed=cfg.seed)
            steps[self.reference] = workloads.TrainStep(
                workloads.masked_lm(self.backbone(self.reference)),
                ref_batch)
        times = self.progress.rounds(steps, cfg.train_rounds,
                                     f"train {name}")
        self._keep_rounds(f"train_{name}", times)
        t = times[name]
        row["train_step_ms"] = 1000 * timing.median(t)
        row["train_tok_s"] = steps[name].tokens / timing.median(t)
        row["train_spread"] = timing.spread(t)
        row["train_loss_first_step"] = steps[name].last_loss
        if (name, PEER) in times:
            tp = times[(name, PEER)]
            row["peer_train_step_ms"] = 1000 * timing.median(tp)
            row["peer_train_ratio"] = timing.median_ratio(tp, t)
        if self.reference in times:
            row["train_speedup_vs_ref"] = timing.median_ratio(
                times[self.reference], t)
        if cfg.profile:
            entry = self.results.setdefault("profiles", {}).setdefault(
                name, {})
            entry["train"] = profile_lib.op_time_breakdown(steps[name])
            if (name, PEER) in steps:
                entry["peer_train"] = profile_lib.op_time_breakdown(
                    steps[(name, PEER)])
        del steps, times
        self.release()

    def profiles_inference(self):
        cfg = self.config
        profiles = self.results.setdefault("profiles", {})
        for name in self.progress_iter(list(self.rows), "profiles"):
            x = self._inputs(name, 1, cfg.seq_len)
            entry = profiles.setdefault(name, {})
            entry["infer_b1"] = profile_lib.op_time_breakdown(
                workloads.inference_call(self.backbone(name), x), steps=5)
            if self.rows[name]["peer"]:
                entry["peer_infer_b1"] = profile_lib.op_time_breakdown(
                    workloads.inference_call(self.peer(name), x), steps=5)
            self.release()

    def tflite(self):
        from trimzoo.export import TFLiteRunner, convert

        cfg = self.config
        calls = {}
        with tempfile.TemporaryDirectory(prefix="trimzoo_bench_") as tmp:
            for name in self.progress_iter(list(self.rows), "TFLite convert"):
                row = self.rows[name]
                x = self._inputs(name, 1, cfg.seq_len)
                for quantize, key in (("none", "fp32"), ("dynamic", "int8")):
                    try:
                        flatbuffer = convert(self.backbone(name),
                                             quantize=quantize,
                                             seq_len=cfg.seq_len,
                                             batch_size=1,
                                             isolate=cfg.tflite_isolate)
                    except Exception as e:  # Reported in the row.
                        row[f"tflite_{key}_error"] = (
                            f"{type(e).__name__}: {str(e)[:300]}")
                        continue
                    path = os.path.join(tmp, f"{name}_{key}.tflite")
                    with open(path, "wb") as f:
                        f.write(flatbuffer)
                    row[f"tflite_{key}_mb"] = len(flatbuffer) / 2 ** 20
                    del flatbuffer
                    runner = TFLiteRunner(path, num_threads=os.cpu_count())
                    arrays = {k: np.asarray(v, "int32") for k, v in x.items()}
                    runner.runner(**arrays)
                    calls[(name, key)] = (
                        lambda r=runner, a=arrays: r.runner(**a))
                self.release()
            times = self.progress.rounds(calls, cfg.tflite_rounds,
                                         "TFLite batch 1")
            del calls
            self._keep_rounds("tflite_b1", times)
            for (name, key), t in times.items():
                self.rows[name][f"tflite_{key}_ms_b1"] = 1000 * timing.median(t)
            gc.collect()

    def scaling(self):
        cfg = self.config
        sweeps = {"seq_len": [(1, length) for length in cfg.seq_lens],
                  "batch_size": [(b, cfg.seq_len) for b in cfg.batch_sizes]}
        out = self.results.setdefault("scaling", {})
        for sweep, points in sweeps.items():
            table = {name: {} for name in self.rows}
            for batch, length in points:
                calls = {}
                for name in self.rows:
                    backbone = self.backbone(name)
                    if length > backbone.max_sequence_length:
                        continue
                    calls[name] = workloads.inference_call(
                        backbone, self._inputs(name, batch, length))
                key = length if sweep == "seq_len" else batch
                times = self.progress.rounds(
                    calls, cfg.scaling_rounds, f"scaling {sweep}={key}")
                del calls
                for name, t in times.items():
                    table[name][str(key)] = 1000 * timing.median(t)
                gc.collect()
            out[sweep] = table
        self.release()

    def memory(self):
        cfg = self.config
        for spec in self.progress_iter(self.specs, "peak memory"):
            result = memory_lib.measure_in_subprocess(
                spec.to_json(), cfg.batch_size, cfg.seq_len,
                cfg.train_batch_size)
            row = self.rows[spec.name]
            if "error" in result:
                row["memory_error"] = result["error"]
                continue
            row["peak_rss_baseline_mb"] = result["baseline_mb"]
            row["peak_rss_infer_mb"] = result["infer_mb"]
            row["peak_rss_train_mb"] = result["train_mb"]

    def variants(self):
        """XLA (``jit_compile``) on and off for the reference and its peer:
        inference at batch 1 and the training step."""
        cfg = self.config
        name = self.reference
        backbone = self.backbone(name)
        models = {"trimzoo": backbone}
        peer = self.peer(name) if self.rows[name]["peer"] else None
        if peer is not None:
            models["keras-hub"] = peer
        x = self._inputs(name, 1, cfg.seq_len)
        calls = {}
        for label, model in models.items():
            for jit in (False, True):
                calls[(label, jit)] = workloads.inference_call(model, x, jit)
        infer = self.progress.rounds(calls, cfg.infer_rounds,
                                     "variants: inference")
        del calls
        batch = workloads.mlm_batch(cfg.train_batch_size, cfg.seq_len,
                                    backbone.vocabulary_size, seed=cfg.seed)
        steps = {}
        for label, model in models.items():
            task = workloads.masked_lm(model)
            for jit in (False, True):
                steps[(label, jit)] = workloads.TrainStep(task, batch,
                                                          jit_compile=jit)
        train = self.progress.rounds(steps, cfg.train_rounds,
                                     "variants: training")
        del steps
        self.release()
        base = ("keras-hub", False) if peer is not None else (
            "trimzoo", False)
        rows = []
        for key in infer:
            label, jit = key
            rows.append({
                "model": label, "jit_compile": jit,
                "infer_ms_b1": 1000 * timing.median(infer[key]),
                "train_step_ms": 1000 * timing.median(train[key]),
                "infer_speedup": timing.median_ratio(infer[base], infer[key]),
                "train_speedup": timing.median_ratio(train[base], train[key]),
            })
        self.results["variants"] = {"model": name, "baseline": list(base),
                                    "rows": rows}

    def check_flops(self):
        check = flops_lib.check_flops(self.backbone(self.reference),
                                      seq_len=self.config.seq_len)
        check["model"] = self.reference
        self.results["flops_check"] = check
        self.release()

    # -- all ----------------------------------------------------------------

    def _execute(self, phase, label, arg=None):
        """Runs one phase (method ``phase``, optional argument) here or in
        a fresh process, and records its time and the machine load."""
        start = time.perf_counter()
        load = _load()
        isolated = self.config.isolate_phases and phase != "memory"
        try:
            if isolated:
                update = _run_in_subprocess(self, phase, arg)
                for name, fields in update["rows"].items():
                    self.rows.setdefault(name, {}).update(fields)
                _deep_merge(self.results, update["results"])
            else:
                getattr(self, phase)(*(() if arg is None else (arg,)))
        except Exception as e:  # A failed phase is reported, not fatal.
            if phase == "build":
                raise
            self.results.setdefault("errors", {})[label] = (
                f"{type(e).__name__}: {str(e)[-1500:]}")
        self.results["phases"][label] = {
            "seconds": round(time.perf_counter() - start, 1),
            "load_start": load, "load_end": _load()}

    def run(self):
        cfg = self.config
        started = time.time()
        self.results["environment"] = environment()
        self._execute("build", "build")
        self._execute("inference", "inference")
        if cfg.profile:
            self._execute("profiles_inference", "profiles")
        for name in self.progress_iter(self.training_order(),
                                       "training groups"):
            self._execute("train_group", f"training {name}", name)
        optional = (("tflite", cfg.tflite), ("scaling", cfg.scaling),
                    ("variants", cfg.variants),
                    ("check_flops", cfg.flops_check),
                    ("memory", cfg.memory))
        for phase, enabled in optional:
            if enabled:
                self._execute(phase, phase)
        from trimzoo.bench import goals

        self.results["models"] = [self.rows[s.name] for s in self.specs]
        self.results["goals"] = goals.evaluate(self.results)
        self.results["load"]["end"] = _load()
        self.results["seconds"] = round(time.time() - started, 1)
        self.results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        return _jsonable(self.results)


#: Top-level results a phase process sends back (the rest is the parent's).
_PHASE_RESULTS = ("rounds", "matmul_rate", "profiles", "scaling",
                  "variants", "flops_check")


def _deep_merge(target, update):
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = value


def _run_in_subprocess(run, phase, arg):
    """Runs ``Run.<phase>(arg)`` in a fresh Python process (see
    :func:`main`); returns ``{"rows": ..., "results": ...}``."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="trimzoo_phase_") as tmp:
        task = os.path.join(tmp, "task.json")
        output = os.path.join(tmp, "output.json")
        with open(task, "w") as f:
            json.dump(_jsonable({
                "config": dataclasses.asdict(run.config),
                "rows": run.rows, "phase": phase, "arg": arg}), f)
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        result = subprocess.run(
            [sys.executable, "-m", "trimzoo.bench.runner", task, output],
            stdout=subprocess.PIPE, stderr=None, text=True, env=env)
        if result.returncode or not os.path.exists(output):
            raise RuntimeError(
                f"phase {phase!r} ({arg or ''}) exited with code "
                f"{result.returncode} (killed for memory if -9)")
        with open(output) as f:
            return json.load(f)


def main(argv=None):
    """Phase process: ``python -m trimzoo.bench.runner TASK OUTPUT``."""
    task_path, output_path = (argv or sys.argv)[1:3]
    import tensorflow as tf

    # Every timed shape gets its own tf.function on purpose.
    tf.get_logger().setLevel("ERROR")
    with open(task_path) as f:
        task = json.load(f)
    config = BenchmarkConfig(**task["config"])
    run = Run(config)
    run.rows = task["rows"]
    method = getattr(run, task["phase"])
    method(*(() if task["arg"] is None else (task["arg"],)))
    with open(output_path, "w") as f:
        json.dump(_jsonable({
            "rows": run.rows,
            "results": {k: v for k, v in run.results.items()
                        if k in _PHASE_RESULTS}}), f)


def round_key(key):
    """``"bert_base"``, ``"bert_base@keras_hub"``, ``"bort@int8"``..."""
    if isinstance(key, tuple):
        return "@".join(str(k) for k in key)
    return str(key)


def run(config, command=None):
    """Runs the benchmark; returns the JSON-able results dict (see
    ``trimzoo.bench.report`` for its layout)."""
    return Run(config, command=command).run()


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: _jsonable(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return None if not np.isfinite(value) else value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def load_results(path):
    """Reads a ``results.json`` written by ``trimzoo.bench.report``."""
    with open(path) as f:
        return json.load(f)


if __name__ == "__main__":
    main()
