"""The benchmark's PNG plots: parameters, latency per format, scaling with
sequence length and batch size, and the size/speed trade-off."""

import os

from trimzoo.utils.figures import pyplot
from trimzoo.utils.io import save_figure

plt = pyplot()

#: File names of the plots, in report order.
PLOTS = ("params.png", "latency.png", "scaling_seq_len.png",
         "scaling_batch.png", "tradeoff.png")


def _save(fig, path):
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def plot_params(results, path):
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
    _save(fig, path)


def plot_latency(results, path):
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
    _save(fig, path)


def plot_scaling(results, sweep, path):
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
    _save(fig, path)


def plot_tradeoff(results, path):
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
    _save(fig, path)


def write_plots(results, out_dir):
    plot_params(results, os.path.join(out_dir, "params.png"))
    plot_latency(results, os.path.join(out_dir, "latency.png"))
    plot_scaling(results, "seq_len",
                 os.path.join(out_dir, "scaling_seq_len.png"))
    plot_scaling(results, "batch_size",
                 os.path.join(out_dir, "scaling_batch.png"))
    plot_tradeoff(results, os.path.join(out_dir, "tradeoff.png"))
