"""The report of a compression run: ``report.md`` and ``pareto.png``."""

import os

from trimzoo.search.budget import RETIME_TOLERANCE, Budget
from trimzoo.utils.figures import pyplot
from trimzoo.utils.io import save_figure, write_text


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


def _score(value):
    return "n/a" if value is None else f"{value:.4f}"


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
        "Candidates are named by their shape: `D` layers, `A` attention "
        "heads, `H` hidden size, `I` feed-forward (intermediate) size, e.g. "
        "`D3-A8-H256-I768`; `-F2` keeps the feed-forward sublayer in every "
        "2nd layer and `-Nsigmoid` normalises attention scores with a "
        "sigmoid (the TrimBERT knobs).",
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
    recorded = teacher.get("recorded")
    if recorded:
        lines += ["", "The teacher as its fine-tuning recorded it "
                  f"(`metrics.json`, {recorded['seq_len']} tokens): "
                  f"validation {_score(recorded['validation_accuracy'])}, "
                  f"test {_score(recorded['test_accuracy'])}; measured here at "
                  f"{results['seq_len']} tokens: validation "
                  f"{teacher['validation_accuracy']:.4f}, test "
                  f"{teacher['test_accuracy']:.4f} (the percentages above are "
                  "of these)."]
    if "export" in results:
        e = results["export"]
        lines += ["", f"Export (for --runtime={results['runtime']}): "
                  f"`{e['path']}` ({e.get('format', e['quantize'])}), "
                  "parity gate "
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
    lines += ["", f"{results['minutes']:.1f} minutes"
              + (f"; the folder holds {results['folder_mb']:.0f} MB (the "
                 "healed candidates' training checkpoints removed)"
                 if "folder_mb" in results else "") + "."]
    write_text(os.path.join(out, "report.md"), "\n".join(lines) + "\n")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    rows = results["rows"]

    def x(row):
        return row.get("speedup_round_robin") or row["speedup"]

    def y(row):
        return 100 * row["test_accuracy"] / teacher["test_accuracy"]

    others = [r for r in rows if r["name"] != results["chosen"]]
    chosen = [r for r in rows if r["name"] == results["chosen"]]
    ax.scatter([x(r) for r in others], [y(r) for r in others],
               label="healed candidates (this run)")
    ax.scatter([x(r) for r in chosen], [y(r) for r in chosen], marker="D",
               s=70, color="tab:green", zorder=3, label="chosen")
    for i, r in enumerate(sorted(rows, key=x)):
        mark = " (chosen)" if r["name"] == results["chosen"] else ""
        # Labels point inward (none leaves the frame) and step up by turns,
        # so that neighbours do not write over each other.
        ax.annotate(r["name"] + mark, (x(r), y(r)), fontsize=7,
                    xytext=(-4, 5 + 9 * (i % 3)), textcoords="offset points",
                    ha="right", annotation_clip=True)
    ax.scatter([1.0], [100.0], marker="*", s=120, label="teacher")
    compare = results.get("compare") or []
    if compare:
        ax.scatter([r["speedup"] for r in compare],
                   [r["percent_of_teacher"] for r in compare], marker="x",
                   color="grey", label="single routes (compression table)")
    if results.get("max_ms"):
        limit = teacher["latency_ms"] / results["max_ms"]
        ax.axvline(limit, ls="--", color="red", label="budget")
        ax.axvspan(limit / RETIME_TOLERANCE, limit, color="red", alpha=0.1,
                   label=f"tolerance when re-timed ({RETIME_TOLERANCE - 1:.0%})")
    ax.set_xlabel(f"speed-up over the teacher ({results['runtime']}"
                  + _against(results) + ", batch 1, round-robin)")
    ax.set_ylabel("test accuracy, % of the teacher's")
    ax.margins(x=0.25, y=0.15)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    save_figure(fig, os.path.join(out, "pareto.png"))
    plt.close(fig)
