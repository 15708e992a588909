"""Writes a benchmark run: ``results.json``, ``report.md`` and PNG plots.

``results.json`` holds everything the run measured; ``models`` is one
object per row (preset or layer-dropped preset) with at least
:data:`REQUIRED_COLUMNS`. ``report.md`` is the same numbers for a reader:
machine and command, the main table, the keras-hub peer ratios, the
trade-off table against the reference, the goals (met or missed, and why),
what helps (XLA), the FLOPs check, and the plots.
"""

import json
import math
import os

#: Columns every row of ``results.json`` has (None where not measured).
REQUIRED_COLUMNS = ("model", "params", "non_embedding_params",
                    "flops_per_token", "infer_ms_b1", "infer_tok_s_b8",
                    "train_tok_s", "tflite_fp32_ms_b1", "tflite_int8_ms_b1",
                    "peer_infer_ratio", "peer_train_ratio",
                    "matmul_fraction_b1", "peak_rss_infer_mb",
                    "peak_rss_train_mb")
PLOTS = ("params.png", "latency.png", "scaling_seq_len.png",
         "scaling_batch.png", "tradeoff.png")


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


def _rows_with_columns(results):
    rows = []
    for row in results["models"]:
        row = dict(row)
        for column in REQUIRED_COLUMNS:
            row.setdefault(column, None)
        rows.append(row)
    return rows


def write_json(results, out_dir):
    results = dict(results, models=_rows_with_columns(results))
    path = os.path.join(out_dir, "results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1, sort_keys=False)
    return path


# --- Plots -----------------------------------------------------------------------

def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_params(results, path):
    plt = _plt()
    rows = results["models"]
    names = [r["model"] for r in rows]
    emb = [r["embedding_params"] / 1e6 for r in rows]
    rest = [r["non_embedding_params"] / 1e6 for r in rows]
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(rows)), 4))
    ax.bar(names, rest, label="non-embedding")
    ax.bar(names, emb, bottom=rest, label="embedding tables")
    ax.set_ylabel("parameters (millions)")
    ax.set_title("Parameters")
    ax.legend()
    ax.tick_params(axis="x", rotation=30)
    _save(plt, fig, path)


def plot_latency(results, path):
    plt = _plt()
    rows = results["models"]
    series = [("Keras fp32", "infer_ms_b1"),
              ("keras-hub peer fp32", "peer_infer_ms_b1"),
              ("TFLite fp32", "tflite_fp32_ms_b1"),
              ("TFLite dynamic int8", "tflite_int8_ms_b1")]
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(rows)), 4))
    for i, (label, key) in enumerate(series):
        values = [r.get(key) or 0.0 for r in rows]
        ax.bar([j + i * width for j in range(len(rows))], values, width,
               label=label)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))])
    ax.set_xticklabels([r["model"] for r in rows], rotation=30)
    ax.set_ylabel(f"ms per call (batch 1, {results['config']['seq_len']} "
                  "tokens)")
    ax.set_yscale("log")
    ax.set_title("Inference latency (median, lower is better)")
    ax.legend(fontsize=8)
    _save(plt, fig, path)


def plot_scaling(results, sweep, path):
    plt = _plt()
    table = results.get("scaling", {}).get(sweep, {})
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in table.items():
        if not points:
            continue
        xs = sorted(int(k) for k in points)
        ax.plot(xs, [points[str(x)] for x in xs], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    if sweep == "seq_len":
        ax.set_xlabel("sequence length (batch 1)")
        ax.set_title("Latency vs sequence length")
    else:
        ax.set_xlabel(f"batch size ({results['config']['seq_len']} tokens)")
        ax.set_title("Latency vs batch size")
    ax.set_ylabel("ms per call (median)")
    ax.grid(True, which="both", alpha=0.3)
    if table:
        ax.legend(fontsize=8)
    _save(plt, fig, path)


def plot_tradeoff(results, path):
    plt = _plt()
    rows = results["models"]
    ref = results["reference"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for row in rows:
        x = row["params"] / 1e6
        for key, marker, label in (
                ("infer_speedup_vs_ref_b1", "o", "inference (batch 1)"),
                ("train_speedup_vs_ref", "s", "training step")):
            y = row.get(key)
            if y is None:
                continue
            ax.scatter([x], [y], marker=marker,
                       color="C0" if marker == "o" else "C1",
                       label=label if row is rows[0] else None)
        y = row.get("infer_speedup_vs_ref_b1")
        if y is not None:
            ax.annotate(row["model"], (x, y), fontsize=8,
                        textcoords="offset points", xytext=(4, 4))
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters (millions)")
    ax.set_ylabel(f"speed-up vs {ref}")
    ax.set_title("Trade-off: size vs speed")
    ax.legend(fontsize=8)
    _save(plt, fig, path)


def write_plots(results, out_dir):
    plot_params(results, os.path.join(out_dir, "params.png"))
    plot_latency(results, os.path.join(out_dir, "latency.png"))
    plot_scaling(results, "seq_len",
                 os.path.join(out_dir, "scaling_seq_len.png"))
    plot_scaling(results, "batch_size",
                 os.path.join(out_dir, "scaling_batch.png"))
    plot_tradeoff(results, os.path.join(out_dir, "tradeoff.png"))


# --- Markdown ------------------------------------------------------------------------

def _met(value):
    return {True: "**met**", False: "**missed**", None: "not measured"}[value]


def _goal_value(goal):
    value = goal["measured"]
    if value is None:
        return "–"
    if goal["target"].endswith("%"):
        return f"{100 * value:.0f}%"
    if "x" in goal["target"]:
        return f"{value:.2f}x"
    return f"{value:.2f}"


def markdown(results):
    """The report as a Markdown string."""
    cfg = results["config"]
    env = results["environment"]
    batch = cfg["batch_size"]
    rows = _rows_with_columns(results)
    ref = results["reference"]
    out = ["# trimzoo benchmark", ""]
    out.append(f"Command: `{results.get('command') or '(library call)'}`  ")
    out.append(f"Finished {results.get('finished')} after "
               f"{results.get('seconds', 0) / 60:.1f} min.  ")
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    out.append(f"Machine: {env['cpu']}, {env['cores']} cores, "
               f"{env['memory_gb']} GB; {env['platform']}.  ")
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
               f"inference at batch 1 and {batch}; the MLM training step "
               f"(forward with dropout, loss on 15% masked positions, "
               f"backward, AdamW) at batch {cfg['train_batch_size']}. "
               f"Medians of {cfg['infer_rounds']} (inference), "
               f"{cfg['train_rounds']} (training) and {cfg['tflite_rounds']}"
               " (TFLite) round-robin rounds after warm-up.")
    out.append("")

    out += ["## Models", ""]
    header = ["model", "params", "non-emb", "FLOPs/token",
              "Keras ms b1", f"tok/s b{batch}", "train tok/s",
              "TFLite fp32 ms", "TFLite int8 ms", "matmul rate b1/b"
              f"{batch}", "peak MB infer/train"]
    table = []
    for r in rows:
        table.append([
            r["model"], _millions(r["params"]),
            _millions(r["non_embedding_params"]),
            _fmt(r["flops_per_token"] / 1e6, ".1f", "M"),
            _fmt(r["infer_ms_b1"], ".1f"), _fmt(r.get(f"infer_tok_s_b{batch}"), ".0f"),
            _fmt(r["train_tok_s"], ".0f"),
            _fmt(r["tflite_fp32_ms_b1"], ".1f"),
            _fmt(r["tflite_int8_ms_b1"], ".1f"),
            f"{_fmt(r['matmul_fraction_b1'])} / "
            f"{_fmt(r.get(f'matmul_fraction_b{batch}'))}",
            f"{_fmt(r['peak_rss_infer_mb'], '.0f')} / "
            f"{_fmt(r['peak_rss_train_mb'], '.0f')}",
        ])
    out.append(_table(header, table))
    rate = results.get("matmul_rate", {})
    out.append("")
    out.append(
        "FLOPs/token: analytic forward matrix-product FLOPs at "
        f"{cfg['seq_len']} tokens. Matmul rate: the model's FLOPs per second "
        "over the rate of a float32 matrix product "
        + ", ".join(f"{v['shape'][0]}x{v['shape'][1]}x{v['shape'][2]} "
                    f"({v['gflops']:.0f} GFLOP/s)" for v in rate.values())
        + " timed in the same rounds. Peak MB: peak resident memory of a "
        "fresh process after inference at batch "
        f"{batch} / after a training step (the process with TensorFlow "
        "loaded and nothing built: "
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

    out += ["## trimzoo vs keras-hub at the same architecture", ""]
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

    out += [f"## Trade-offs vs {ref}", ""]
    by_name = {r["model"]: r for r in rows}
    ref_row = by_name[ref]
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

    out += ["## Goals", ""]
    out.append(_table(
        ["goal", "target", "measured", "result", "detail"],
        [[g["goal"], g["target"], _goal_value(g), _met(g["met"]),
          g.get("detail", "")] for g in results.get("goals", [])]))
    missed = [g for g in results.get("goals", []) if g["met"] is False]
    if missed:
        out += ["", "Why the missed goals are missed (from this run's FLOPs "
                "and profiles):", ""]
        out += [f"- **{g['goal']}**: {g['why']}" for g in missed]
    out.append("")

    variants = results.get("variants")
    if variants:
        base = " ".join(str(v) for v in variants["baseline"])
        out += [f"## What helps: XLA on {variants['model']}", ""]
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

    profiles = results.get("profiles")
    if profiles:
        out += ["## Where the time goes", ""]
        prof_rows = []
        for name, entry in profiles.items():
            for key, label in (("infer_b1", "inference b1"),
                               ("peer_infer_b1", "keras-hub inference b1"),
                               ("train", "training step"),
                               ("peer_train", "keras-hub training step")):
                p = entry.get(key)
                if not p or "share" not in p:
                    continue
                s = p["share"]
                prof_rows.append([
                    name, label, _fmt(sum(p["ms"].values()), ".0f"),
                    _fmt(100 * s["matmul"], ".0f", "%"),
                    _fmt(100 * s["matmul_backward"], ".0f", "%"),
                    _fmt(100 * s["elementwise"], ".0f", "%"),
                    _fmt(100 * s["elementwise_backward"], ".0f", "%"),
                    _fmt(100 * s["optimizer"], ".0f", "%")])
        out.append(_table(["model", "call", "kernel ms", "matmul",
                           "matmul (backward)", "other", "other (backward)",
                           "optimizer"], prof_rows))
        out.append("")
        out.append("TensorFlow profiler traces, kernel time summed over "
                   "threads (so above wall time when kernels overlap). "
                   "\"other\" is everything but matrix products: layernorms,"
                   " activations, softmax, dropout, transposes, gathers.")
        out.append("")

    check = results.get("flops_check")
    if check:
        out += ["## FLOPs check", ""]
        out.append(
            f"{check['model']} at batch {check['batch_size']} x "
            f"{check['seq_len']}: analytic matrix-product FLOPs "
            f"{check['analytic_matmul'] / 1e9:.3f} G; the TF profiler "
            f"counts {check['profiler_matmul'] / 1e9:.3f} G in "
            "MatMul/BatchMatMul nodes (relative difference "
            f"{100 * check['relative_difference']:.3f}%: "
            f"{'agrees' if check['ok'] else 'DISAGREES'}) and "
            f"{check['profiler_total'] / 1e9:.3f} G in all; the "
            f"{100 * check['elementwise_share']:.1f}% the analytic count "
            "leaves out are elementwise ops.")
        out.append("")

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
    write_json(results, out_dir)
    write_plots(dict(results, models=_rows_with_columns(results)), out_dir)
    path = os.path.join(out_dir, "report.md")
    with open(path, "w") as f:
        f.write(markdown(results))
    return path
