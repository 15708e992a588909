"""Writes a benchmark run: ``results.json``, ``report.md`` and PNG plots.

``results.json`` holds everything the run measured; ``models`` is one
object per row (preset or layer-dropped preset) with at least
:data:`REQUIRED_COLUMNS`. ``report.md`` is the same numbers for a reader:
machine and command, the main table (with the roofline columns: the share
of the measured matmul rate and of the CPU's theoretical FMA peak), the
keras-hub peer ratios, the precisions table (bfloat16, Keras int8... against
float32 and against the peer in the same precision), the trade-off table
against the reference, the goals (met or missed, and why), what helps (XLA), where the time goes, the FLOPs
check, and the plots (:mod:`trimzoo.bench.plots`); one function per
section.
"""

import math
import os

from trimzoo.bench import plots
from trimzoo.bench.plots import (  # noqa: F401  (names of this module)
    PLOTS,
    plot_latency,
    plot_params,
    plot_scaling,
    plot_tradeoff,
    write_plots,
)
from trimzoo.utils import io

#: Columns every row of ``results.json`` has (None where not measured).
REQUIRED_COLUMNS = ("model", "params", "non_embedding_params",
                    "flops_per_token", "infer_ms_b1", "infer_tok_s_b8",
                    "train_tok_s", "tflite_fp32_ms_b1", "tflite_int8_ms_b1",
                    "peer_infer_ratio", "peer_train_ratio",
                    "matmul_fraction_b1", "peak_fraction_b1",
                    "peak_rss_infer_mb", "peak_rss_train_mb")


# Everything a benchmark run writes in its folder (``trimzoo.utils.run_folder``).
OUTPUTS = ("results.json", "report.md", "params.png", "latency.png",
           "scaling_seq_len.png", "scaling_batch.png", "tradeoff.png")


def _fmt(value, spec=".2f", suffix=""):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:{spec}}{suffix}"


def _millions(value):
    return _fmt(None if value is None else value / 1e6, ".1f", "M")


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def with_columns(results):
    """``results`` with every row holding :data:`REQUIRED_COLUMNS` (None
    where not measured): what ``results.json`` and the plots get."""
    rows = []
    for row in results["models"]:
        row = dict(row)
        for column in REQUIRED_COLUMNS:
            row.setdefault(column, None)
        rows.append(row)
    return dict(results, models=rows)


# --- Markdown ------------------------------------------------------------------------

def goal_state(goal):
    """``"met"``, ``"missed"``, ``"not judged"`` (measured, but the target
    is not for this machine) or ``"not measured"``."""
    if goal["met"] is None:
        return "not measured" if goal["measured"] is None else "not judged"
    return "met" if goal["met"] else "missed"


def _met(goal):
    state = goal_state(goal)
    return f"**{state}**" if goal["met"] is not None else state


def _goal_value(goal):
    value = goal["measured"]
    if value is None:
        return "–"
    if goal["target"].endswith("%"):
        return f"{100 * value:.0f}%"
    if "x" in goal["target"]:
        return f"{value:.2f}x"
    return f"{value:.2f}"


def _header(results, rows):
    cfg = results["config"]
    env = results["environment"]
    out = ["# trimzoo benchmark", ""]
    out.append(f"Command: `{results.get('command') or '(library call)'}`  ")
    out.append(f"Finished {results.get('finished')} after "
               f"{results.get('seconds', 0) / 60:.1f} min.  ")
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    out.append(f"Machine: {env['cpu']}, {env['cores']} cores, "
               f"{env['memory_gb']} GB; {env['platform']}.  ")
    peak = env.get("cpu_peak")
    if peak and peak.get("gflops"):
        out.append(f"Theoretical float32 peak: {peak['gflops']:.0f} GFLOP/s "
                   f"= {peak['formula']}.  ")
    out += _units(env)
    out.append(f"Versions: {versions}; oneDNN {env['onednn']}; TF threads "
               f"intra {env['tf_threads']['intra_op'] or 'default'}, inter "
               f"{env['tf_threads']['inter_op'] or 'default'}.  ")
    load = results.get("load", {})
    out.append(f"Load average (1/5/15 min) at start {load.get('start')}, at "
               f"end {load.get('end')}: with a load above the core count "
               "other processes share the CPU, absolute times are inflated "
               "and only the ratios (measured round-robin) are comparable "
               "between runs.")
    out.append("")
    out.append(f"Shapes: {cfg['seq_len']} tokens of real text per sequence; "
               f"inference at batch 1 and {cfg['batch_size']}; the MLM "
               "training step (forward with dropout, loss on 15% masked "
               "positions, backward, AdamW) at batch "
               f"{cfg['train_batch_size']}. Medians of {cfg['infer_rounds']}"
               f" (inference), {cfg['train_rounds']} (training) and "
               f"{cfg['tflite_rounds']} (TFLite) round-robin rounds after "
               "warm-up.")
    out.append("")
    return out


def _units(env):
    """The header's lines on the CPU's low-precision units (present or
    not) and what oneDNN dispatches to.

    >>> print("\\n".join(_units({"cpu_units": {"amx_bf16": False,
    ...     "avx512_bf16": True}, "onednn_dispatch": {"version": "v3.7",
    ...     "isa": "AVX-512", "kernels": {"float32": "gemm_api",
    ...     "int8": None}}})))
    Low-precision units: AMX-BF16 no, AVX512-BF16 yes.  
    oneDNN v3.7 dispatches to AVX-512; matrix products: float32 gemm_api, int8 not through oneDNN.  
    """
    out = []
    units = env.get("cpu_units")
    if units:
        out.append("Low-precision units: " + ", ".join(
            f"{flag.upper().replace('_', '-')} "
            f"{'yes' if present else 'no'}"
            for flag, present in units.items()) + ".  ")
    dispatch = env.get("onednn_dispatch")
    if dispatch and "error" in dispatch:
        out.append(f"oneDNN probe failed: {dispatch['error']}  ")
    elif dispatch:
        kernels = ", ".join(f"{dtype} {kernel or 'not through oneDNN'}"
                            for dtype, kernel in dispatch["kernels"].items())
        out.append(f"oneDNN {dispatch['version']} dispatches to "
                   f"{dispatch['isa']}; matrix products: {kernels}.  ")
    return out


def _pair(row, key, batch, spec=".2f"):
    return f"{_fmt(row.get(f'{key}_b1'), spec)} / " \
        f"{_fmt(row.get(f'{key}_b{batch}'), spec)}"


def _models(results, rows):
    cfg = results["config"]
    batch = cfg["batch_size"]
    header = ["model", "params", "non-emb", "FLOPs/token",
              "Keras ms b1", f"tok/s b{batch}", "train tok/s",
              "TFLite fp32 ms", "TFLite int8 ms",
              f"matmul rate b1/b{batch}", f"FMA peak b1/b{batch}",
              "peak MB infer/train"]
    table = [[
        r["model"], _millions(r["params"]),
        _millions(r["non_embedding_params"]),
        _fmt(r["flops_per_token"] / 1e6, ".1f", "M"),
        _fmt(r["infer_ms_b1"], ".1f"),
        _fmt(r.get(f"infer_tok_s_b{batch}"), ".0f"),
        _fmt(r["train_tok_s"], ".0f"),
        _fmt(r["tflite_fp32_ms_b1"], ".1f"),
        _fmt(r["tflite_int8_ms_b1"], ".1f"),
        _pair(r, "matmul_fraction", batch), _pair(r, "peak_fraction", batch),
        f"{_fmt(r['peak_rss_infer_mb'], '.0f')} / "
        f"{_fmt(r['peak_rss_train_mb'], '.0f')}",
    ] for r in rows]
    out = ["## Models", "", _table(header, table), ""]
    out.append(
        "FLOPs/token: analytic forward matrix-product FLOPs at "
        f"{cfg['seq_len']} tokens. " + _roofline_text(results)
        + " Peak MB: peak resident memory of a fresh process after "
        f"inference at batch {batch} / after a training step (the process "
        "with TensorFlow loaded and nothing built: "
        + _fmt(next((r.get('peak_rss_baseline_mb') for r in rows
                     if r.get('peak_rss_baseline_mb')), None), ".0f")
        + " MB).")
    errors = [(r["model"], k, v) for r in rows for k, v in r.items()
              if k.endswith("_error") and v]
    errors += [("phase", k, v) for k, v in results.get("errors", {}).items()]
    if errors:
        out += ["", "Errors:"]
        out += [f"- {m} `{k}`: {v}" for m, k, v in errors]
    out.append("")
    return out


def _roofline_text(results):
    """What the two roofline columns are, with this run's reference
    rates."""
    rates = results.get("matmul_rate", {})
    peak = (results.get("environment", {}).get("cpu_peak") or {}).get(
        "gflops")
    parts = []
    for suffix, rate in rates.items():
        shape = "x".join(str(d) for d in rate["shape"])
        text = f"{suffix}: {rate['gflops']:.0f} GFLOP/s ({shape}"
        if rate.get("peak_fraction") is not None:
            text += f", {rate['peak_fraction']:.2f} of the FMA peak"
        parts.append(text + ")")
    return (
        "Matmul rate: the model's FLOPs per second over the fastest of "
        "several float32 matrix products (a square 2048^3, rows x 1024 x "
        "4096 and each model's feed-forward product) timed in the same "
        "rounds, the median of per-round ratios ("
        + ("; ".join(parts) or "not measured") + "). FMA peak: the model's "
        "FLOPs per second over the CPU's theoretical float32 peak ("
        + (f"{peak:.0f} GFLOP/s" if peak else "unknown") + ", see the "
        "header).")


def _peers(results, rows):
    batch = results["config"]["batch_size"]
    out = ["## trimzoo vs keras-hub at the same architecture", ""]
    peer_rows = [r for r in rows if r.get("peer")]
    if peer_rows:
        out.append(_table(
            ["model", "keras-hub ms b1", "trimzoo ms b1", "inference ratio b1",
             f"ratio b{batch}", "keras-hub train ms", "trimzoo train ms",
             "training ratio", "max |diff|"],
            [[r["model"], _fmt(r.get("peer_infer_ms_b1"), ".1f"),
              _fmt(r["infer_ms_b1"], ".1f"),
              _fmt(r.get("peer_infer_ratio_b1"), ".2f", "x"),
              _fmt(r.get(f"peer_infer_ratio_b{batch}"), ".2f", "x"),
              _fmt(r.get("peer_train_step_ms"), ".0f"),
              _fmt(r.get("train_step_ms"), ".0f"),
              _fmt(r.get("peer_train_ratio"), ".2f", "x"),
              _fmt(r.get("peer_max_abs_diff"), ".1e")]
             for r in peer_rows]))
        out.append("")
        out.append("Ratio = keras-hub time / trimzoo time, the median of "
                   "per-round ratios (above 1: trimzoo is faster). Both models"
                   " hold the same weights; they differ in the gelu form "
                   "(trimzoo: exact erf as the BERT reference; keras-hub: "
                   "tanh) and in how attention is laid out (trimzoo: one "
                   "fused query/key/value product).")
    skipped = [r for r in peer_rows if r.get("peer_train_skipped")]
    if skipped:
        out.append("")
        out.append("Training peer not timed: " + "; ".join(
            f"{r['model']} ({r['peer_train_skipped']})" for r in skipped)
            + ".")
    no_peer = [r for r in rows if not r.get("peer")]
    if no_peer:
        out.append("")
        out.append("No keras-hub peer: " + "; ".join(
            f"{r['model']} ({r.get('peer_reason')})" for r in no_peer) + ".")
    out.append("")
    return out


def _precisions(results, rows):
    """Each row in each precision of the run against float32, and
    against its keras-hub peer in the same precision."""
    cfg = results["config"]
    batch = cfg["batch_size"]
    precisions = [p for p in cfg.get("precisions", ()) if p != "float32"]
    measured = [r for r in rows if any(
        r.get(f"{p}_infer_ratio_b1") for p in precisions)]
    if not measured:
        return []
    table = [[r["model"], p,
              _fmt(r.get(f"{p}_infer_ratio_b1"), ".2f", "x"),
              _fmt(r.get(f"{p}_infer_ratio_b{batch}"), ".2f", "x"),
              _fmt(r.get(f"{p}_train_ratio"), ".2f", "x"),
              _fmt(r.get(f"{p}_max_abs_diff"), ".1e"),
              _fmt(r.get(f"peer_{p}_infer_ratio_b1"), ".2f", "x"),
              _fmt(r.get(f"peer_{p}_infer_ratio_b{batch}"), ".2f", "x"),
              _fmt(r.get(f"peer_{p}_train_ratio"), ".2f", "x")]
             for r in measured for p in precisions]
    return ["## Precisions: bfloat16 and Keras quantization vs float32", "",
            _table(["model", "precision", "vs float32 b1",
                    f"vs float32 b{batch}", "training vs float32",
                    "max |diff|", "vs keras-hub b1", f"vs keras-hub b{batch}",
                    "training vs keras-hub"], table), "",
            "vs float32: the row's float32 time over its time in the "
            "precision, timed round-robin with it (above 1: faster). "
            "bfloat16 is Keras's mixed_bfloat16 policy (float32 variables, "
            "bfloat16 products and activations); int8, int4 and float8 are "
            "Keras post-training quantization (`model.quantize`) of the "
            "float32 model, inference only and timed without the peer. "
            "max |diff|: the largest difference of the batch-1 hidden "
            "states from float32's. vs keras-hub: the peer's time over "
            "trimzoo's, both in the same precision and the same rounds "
            "(above 1: trimzoo is faster). "
            "The header says which bfloat16 and int8 units this CPU has "
            "and where oneDNN runs each product.", ""]


def _classifier(results):
    """A fine-tuned classifier's labels and speed in each precision."""
    clf = results.get("classifier")
    if not clf:
        return []
    batch = results["config"]["batch_size"]
    order = ["float32"] + list(results["config"].get("precisions", ()))
    entries = [(p, clf["precisions"][p]) for p in dict.fromkeys(order)
               if p in clf["precisions"]]
    table = [[p, _fmt(100 * e["agreement"], ".1f", "%"),
              _fmt(100 * e["accuracy"], ".1f", "%"),
              _fmt(e.get("max_abs_diff"), ".1e"),
              _fmt(e.get("infer_ms_b1"), ".1f"),
              _fmt(e.get("infer_ratio_b1"), ".2f", "x"),
              _fmt(e.get(f"infer_ms_b{batch}"), ".1f"),
              _fmt(e.get(f"infer_ratio_b{batch}"), ".2f", "x")]
             for p, e in entries]
    return [f"## The classifier `{clf['folder']}` in each precision", "",
            _table(["precision", "labels as float32", "accuracy",
                    "max |logit diff|", "ms b1", "vs float32 b1", f"ms b{batch}",
                    f"vs float32 b{batch}"], table), "",
            f"Labels predicted on {clf['examples']} texts of the Rotten "
            "Tomatoes test split (accuracy: against its labels); times of "
            f"the model on {clf['sequence_length']}-token batches cut by "
            "its own preprocessor, round-robin, vs float32 as float32 time "
            "over the precision's.", ""]


def _tradeoffs(results, rows):
    batch = results["config"]["batch_size"]
    ref = results["reference"]
    ref_row = {r["model"]: r for r in rows}[ref]
    out = [f"## Trade-offs vs {ref}", ""]
    out.append(_table(
        ["model", "params", "non-emb params", "FLOPs/token",
         "inference speed-up b1", f"speed-up b{batch}",
         "training speed-up", "TFLite int8 speed-up"],
        [[r["model"],
          _fmt(r["params"] / ref_row["params"], ".2f", "x"),
          _fmt(r["non_embedding_params"] / ref_row["non_embedding_params"],
               ".2f", "x"),
          _fmt(r["flops_per_token"] / ref_row["flops_per_token"], ".2f", "x"),
          _fmt(r.get("infer_speedup_vs_ref_b1"), ".2f", "x"),
          _fmt(r.get(f"infer_speedup_vs_ref_b{batch}"), ".2f", "x"),
          _fmt(r.get("train_speedup_vs_ref"), ".2f", "x"),
          _fmt(_ratio(ref_row.get("tflite_int8_ms_b1"),
                      r.get("tflite_int8_ms_b1")), ".2f", "x")]
         for r in rows]))
    out.append("")
    out.append(f"Sizes are fractions of {ref}; speed-ups are {ref}'s time "
               "over the row's (median of per-round ratios; training: each "
               f"row timed next to {ref}).")
    out.append("")
    return out


def _goals(results):
    """The goals table and why the missed ones are missed.

    >>> print("\\n".join(_goals({"goals": [{"goal": "g", "target": ">= 2x",
    ...     "measured": 1.5, "met": False, "why": "too slow"}]})))
    ## Goals
    <BLANKLINE>
    | goal | target | measured | result | detail |
    |---|---|---|---|---|
    | g | >= 2x | 1.50x | **missed** |  |
    <BLANKLINE>
    Why the missed goals are missed (from this run's FLOPs and profiles):
    <BLANKLINE>
    - **g**: too slow
    <BLANKLINE>
    """
    out = ["## Goals", ""]
    out.append(_table(
        ["goal", "target", "measured", "result", "detail"],
        [[g["goal"], g["target"], _goal_value(g), _met(g),
          g.get("detail", "")] for g in results.get("goals", [])]))
    missed = [g for g in results.get("goals", []) if g["met"] is False]
    if missed:
        out += ["", "Why the missed goals are missed (from this run's FLOPs "
                "and profiles):", ""]
        out += [f"- **{g['goal']}**: {g['why']}" for g in missed]
    out.append("")
    return out


def _variants(results):
    variants = results.get("variants")
    if not variants:
        return []
    base = " ".join(str(v) for v in variants["baseline"])
    out = [f"## What helps: XLA on {variants['model']}", ""]
    out.append(_table(
        ["model", "jit_compile", "inference ms b1", "training step ms",
         "inference speed-up", "training speed-up"],
        [[v["model"], v["jit_compile"], _fmt(v["infer_ms_b1"], ".1f"),
          _fmt(v["train_step_ms"], ".0f"),
          _fmt(v["infer_speedup"], ".2f", "x"),
          _fmt(v["train_speedup"], ".2f", "x")]
         for v in variants["rows"]]))
    out.append("")
    out.append(f"Speed-ups are against {base} (jit_compile=False, "
               "keras-hub's default on CPU).")
    out.append("")
    return out


_PROFILE_CALLS = (("infer_b1", "inference b1"),
                  ("peer_infer_b1", "keras-hub inference b1"),
                  ("train", "training step"),
                  ("peer_train", "keras-hub training step"),
                  ("train_bfloat16", "training step, bfloat16"))


def _profiles(results):
    profiles = results.get("profiles")
    if not profiles:
        return []
    prof_rows = []
    for name, entry in profiles.items():
        for key, label in _PROFILE_CALLS:
            p = entry.get(key)
            if not p or "share" not in p:
                continue
            s = p["share"]
            prof_rows.append(
                [name, label, _fmt(sum(p["ms"].values()), ".0f")]
                + [_fmt(100 * s[c], ".0f", "%") for c in (
                    "matmul", "matmul_backward", "elementwise",
                    "elementwise_backward", "optimizer")])
    return ["## Where the time goes", "",
            _table(["model", "call", "kernel ms", "matmul",
                    "matmul (backward)", "other", "other (backward)",
                    "optimizer"], prof_rows), "",
            "TensorFlow profiler traces, kernel time summed over threads (so "
            "above wall time when kernels overlap). \"other\" is everything "
            "but matrix products: layernorms, activations, softmax, dropout, "
            "transposes, gathers.", ""]


def _flops_check(results):
    check = results.get("flops_check")
    if not check:
        return []
    return ["## FLOPs check", "",
            f"{check['model']} at batch {check['batch_size']} x "
            f"{check['seq_len']}: analytic matrix-product FLOPs "
            f"{check['analytic_matmul'] / 1e9:.3f} G; the TF profiler "
            f"counts {check['profiler_matmul'] / 1e9:.3f} G in "
            "MatMul/BatchMatMul nodes (relative difference "
            f"{100 * check['relative_difference']:.3f}%: "
            f"{'agrees' if check['ok'] else 'DISAGREES'}) and "
            f"{check['profiler_total'] / 1e9:.3f} G in all; the "
            f"{100 * check['elementwise_share']:.1f}% the analytic count "
            "leaves out are elementwise ops.", ""]


def markdown(results):
    """The report as a Markdown string, one section after the other."""
    rows = with_columns(results)["models"]
    out = _header(results, rows)
    out += _models(results, rows)
    out += _peers(results, rows)
    out += _precisions(results, rows)
    out += _classifier(results)
    out += _tradeoffs(results, rows)
    out += _goals(results)
    out += _variants(results)
    out += _profiles(results)
    out += _flops_check(results)
    out += ["## Plots", ""]
    out += [f"![{p[:-4]}]({p})" for p in PLOTS]
    out.append("")
    return "\n".join(out)


def _ratio(a, b):
    if not a or not b:
        return None
    return a / b


def write_report(results, out_dir):
    """Writes ``results.json``, ``report.md`` and the plots to ``out_dir``;
    returns the report path."""
    os.makedirs(out_dir, exist_ok=True)
    results = with_columns(results)
    io.write_json(os.path.join(out_dir, "results.json"), results)
    plots.write_plots(results, out_dir)
    path = os.path.join(out_dir, "report.md")
    io.write_text(path, markdown(results))
    return path
