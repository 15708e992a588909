"""The search's outputs: ``report.md``, ``pareto.png`` and the placement of
a named architecture among the candidates.

Examples:

>>> rows = [{"name": "D2-A4-H8-I8", "num_layers": 2, "num_heads": 4,
...          "hidden_dim": 8, "intermediate_dim": 8, "params": 10,
...          "inference_cost": 1.0},
...         {"name": "D4-A4-H8-I8", "num_layers": 4, "num_heads": 4,
...          "hidden_dim": 8, "intermediate_dim": 8, "params": 20,
...          "inference_cost": 2.0}]
>>> placement(rows, "4,4,8,8")["params_rank"]
2
"""

import os

from trimzoo.search.algorithm import pareto_front
from trimzoo.utils.figures import pyplot
from trimzoo.utils.io import save_figure, write_text

_DIMS = ("num_layers", "num_heads", "hidden_dim", "intermediate_dim")


def placement(rows, mark):
    """Where the architecture ``mark`` (``"D,A,H,I"``) falls among the
    candidates: its rank (1 = smallest / fastest) by parameters and by
    inference cost, and how many candidates are both smaller and faster.

    Raises:
        ValueError: if ``mark`` is not four integers or not in the space.
    """
    if isinstance(mark, str):
        mark = mark.replace("(", "").replace(")", "").split(",")
    try:
        shape = tuple(int(v) for v in mark)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 4:
        raise ValueError(f"mark must be 'D,A,H,I' (four integers), got "
                         f"{mark!r}.")
    found = [r for r in rows if tuple(r[d] for d in _DIMS) == shape]
    if not found:
        raise ValueError(f"The architecture {mark} is not in the space.")
    row = found[0]
    cost = row["inference_cost"]
    return {
        "name": row["name"], "params": row["params"],
        "inference_cost": cost, "latency_ms": row.get("latency_ms"),
        "candidates": len(rows),
        "params_rank": 1 + sum(r["params"] < row["params"] for r in rows),
        "cost_rank": 1 + sum(r["inference_cost"] < cost for r in rows),
        "smaller_and_faster": sum(r["params"] < row["params"]
                                  and r["inference_cost"] < cost
                                  for r in rows),
    }


def _cost_label(results):
    cost = results["settings"]["costs"]["cost"]
    return {"flops": "forward GFLOPs per sequence",
            "keras": "Keras float32 latency, batch 1 (ms)",
            "tflite": "TFLite dynamic-int8 latency, batch 1 (ms)"}[cost]


def _x(row):
    return (row["inference_cost"] / 1e9 if row["cost"] == "flops"
            else row["inference_cost"])


def plot(results, path):
    """Error against measured inference cost of the trained candidates
    (marker area proportional to parameters; the front joined, the chosen
    one starred); costs only: parameters against inference cost."""
    rows = results["candidates"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    biggest = max(r["params"] for r in rows)
    if "chosen" in results:
        trained = [r for r in rows if r["trained"]]
        xs, ys = [_x(r) for r in trained], [r["error"] for r in trained]
        ax.scatter(xs, ys, s=[300 * r["params"] / biggest for r in trained],
                   alpha=0.5, label="trained (size: parameters)")
        front = pareto_front(xs, ys)
        ax.plot([xs[k] for k in front], [ys[k] for k in front], "k--",
                lw=1, label="Pareto front")
        best = next(r for r in trained if r["name"] == results["chosen"])
        ax.scatter([_x(best)], [best["error"]], marker="*", s=300, c="red",
                   label=f"chosen {best['name']} (max W)")
        ax.set_ylabel("error estimate")
    else:
        ax.scatter([_x(r) for r in rows], [r["params"] / 1e6 for r in rows],
                   s=12, alpha=0.6, label="candidates")
        ax.set_ylabel("parameters (M)")
    mark = results.get("mark")
    if mark:
        row = next(r for r in rows if r["name"] == mark["name"])
        y = (row["error"] if "chosen" in results and row.get("error")
             else row["params"] / 1e6 if "chosen" not in results else None)
        if y is not None:
            ax.scatter([_x(row)], [y], marker="D", s=80, c="orange",
                       label=mark["name"])
    ax.set_xlabel(_cost_label(results))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, format="png", dpi=120)
    plt.close(fig)


def _fmt(value, digits=4):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _table(rows, columns):
    lines = ["| " + " | ".join(c for c, _ in columns) + " |",
             "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(fn(r)) for _, fn in columns)
                     + " |")
    return lines


def markdown(results, top=25):
    """The text of ``report.md``."""
    rows = results["candidates"]
    s = results["settings"]["costs"]
    lat = ("latency_ms" in rows[0])
    columns = [("candidate", lambda r: r["name"]),
               ("params (M)", lambda r: r["params"] / 1e6),
               ("GFLOPs", lambda r: r["flops"] / 1e9)]
    if lat:
        for b in sorted(rows[0]["latency_ms"], key=int):
            columns.append((f"b{b} ms", lambda r, b=b: r["latency_ms"][b]))
    lines = ["# Sub-architecture search", "",
             f"- reference: {results['reference']}",
             f"- teacher: {s['teacher'] or '-'}; reference preset: "
             f"{s['reference'] or '-'}",
             f"- cost: {s['cost']} (sequence length {s['seq_len']}, batch "
             f"sizes {s['batch_sizes']})",
             f"- candidates: {len(rows)}; ε = {results['epsilon']:.4g}, "
             f"{results['groups']} cells"]
    if "chosen" in results:
        lines += [f"- trained: {results['trained']}, skipped: "
                  f"{results['skipped']}",
                  f"- chosen (max W): **{results['chosen']}**, saved in "
                  f"`{results['chosen_folder']}`"]
        for b, sp in results["speedup"].items():
            lines.append(f"- chosen vs teacher, batch {b} ({sp['cost']}, "
                         f"round-robin): {sp['speedup']:.2f}x "
                         f"({sp['model_ms']:.2f} ms vs "
                         f"{sp['reference_ms']:.2f} ms)")
        columns += [("error", lambda r: r["error"]),
                    ("W", lambda r: r["W"])]
        trained = sorted((r for r in rows if r["trained"]),
                         key=lambda r: -r["W"])
        lines += ["", f"## Trained candidates by W (top {top})", ""]
        lines += _table(trained[:top], columns)
    check = results.get("check")
    if check:
        lines += ["", "## Proxy error against fine-tuned test error", "",
                  f"Spearman ρ = {check['spearman']:.3f} (p = "
                  f"{check['spearman_pvalue']:.3g}, n = {check['n']}); "
                  f"teacher test accuracy "
                  f"{check['teacher']['test_accuracy']:.4f}.", ""]
        lines += ["| candidate | proxy error | test accuracy | of teacher |",
                  "|---|---|---|---|"]
        for name, c in check["candidates"].items():
            lines.append(
                f"| {name} | {c['proxy_error']:.4f} | "
                f"{c['test_accuracy']:.4f} | "
                f"{c['test_accuracy'] / check['teacher']['test_accuracy']:.3f}"
                " |")
        teacher_acc = check["teacher"]["test_accuracy"]
        chosen = check["chosen"]
        undistilled = check["candidates"][chosen]["test_accuracy"]
        distilled = check["chosen_distilled"]["test_accuracy"]
        speed = results["speedup"]["1"]["speedup"]
        lines += ["", f"The chosen {chosen}: test accuracy "
                  f"{undistilled:.4f} fine-tuned on labels "
                  f"({undistilled / teacher_acc:.1%} of the teacher), "
                  f"**{distilled:.4f}** task-distilled from the fine-tuned "
                  f"teacher (**{distilled / teacher_acc:.1%}**), at "
                  f"**{speed:.2f}x** the teacher's batch-1 speed."]
    mark = results.get("mark")
    if mark:
        lines += ["", f"## Placement of {mark['name']}", "",
                  f"{mark['params'] / 1e6:.2f} M parameters: rank "
                  f"{mark['params_rank']} of {mark['candidates']} by size; "
                  f"inference cost rank {mark['cost_rank']}; "
                  f"{mark['smaller_and_faster']} candidates are both smaller "
                  "and faster."]
    if "chosen" not in results:
        lines += ["", f"## Candidates by inference cost (first {top})", ""]
        lines += _table(sorted(rows, key=lambda r: r["inference_cost"])[:top],
                        columns)
    lines += ["", "![Pareto plot](pareto.png)", "",
              "Every candidate is in `results.json`."]
    return "\n".join(lines) + "\n"


def write(results, folder):
    """``report.md`` and ``pareto.png`` in ``folder``."""
    plot(results, os.path.join(folder, "pareto.png"))
    write_text(os.path.join(folder, "report.md"), markdown(results))
