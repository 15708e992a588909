"""The speed goals of the zoo, judged on one benchmark run.

Every goal is a ratio measured within one run (round-robin, so machine load
cancels). A goal whose models are not in the run is listed as not measured;
a missed goal carries a ``why`` computed from the run's FLOPs and profiles.
"""

from trimzoo.utils import timing
from trimzoo.bench.profile import matmul_share

#: (goal id, text, threshold).
PEER_INFER = 1.0
PEER_TRAIN = 1.2
MATMUL_FRACTION = 0.85
TRIMBERT_TRAIN = 1.4
BORT_INFER = 11.0
DROP4_REDUCTION = 0.30
#: bfloat16 over float32 on CPUs with AMX-BF16 tiles (judged only there).
BF16_INFER_AMX = 1.8
BF16_TRAIN_AMX = 1.7


def _rows(results):
    return {row["model"]: row for row in results.get("models", [])}


def _pair_ratio(results, phase, slow, fast):
    """Median per-round ``time(slow) / time(fast)`` in ``phase``, or None."""
    rounds = results.get("rounds", {}).get(phase, {})
    if slow not in rounds or fast not in rounds:
        return None
    return timing.median_ratio(rounds[slow], rounds[fast])


def _profile(results, name, key):
    return results.get("profiles", {}).get(name, {}).get(key)


def _share_text(breakdown):
    if not breakdown or "share" not in breakdown:
        return "no profile"
    share = breakdown["share"]
    total = sum(breakdown["ms"].values())
    parts = [f"{total:.0f} ms of kernel time",
             f"matmul {100 * matmul_share(breakdown):.0f}%"]
    if share.get("optimizer"):
        parts.append(f"optimizer {100 * share['optimizer']:.0f}%")
    rest = share["elementwise"] + share["elementwise_backward"]
    parts.append(f"other {100 * rest:.0f}%")
    return ", ".join(parts)


def _kernel_ms(breakdown, categories):
    if not breakdown or "ms" not in breakdown:
        return None
    return sum(breakdown["ms"][c] for c in categories)


def _peer_why(results, name, kind):
    rows = _rows(results)
    own = _profile(results, name, f"{kind}" if kind == "train"
                   else "infer_b1")
    peer = _profile(results, name, f"peer_{kind}" if kind == "train"
                    else "peer_infer_b1")
    text = (f"Profile ({'training step' if kind == 'train' else 'batch 1'}):"
            f" trimzoo {_share_text(own)}; keras-hub {_share_text(peer)}.")
    mm = ("matmul", "matmul_backward")
    own_mm, peer_mm = _kernel_ms(own, mm), _kernel_ms(peer, mm)
    if own_mm and peer_mm:
        other = ("elementwise", "elementwise_backward", "optimizer")
        text += (f" Matrix products: {own_mm:.0f} vs {peer_mm:.0f} ms; "
                 f"everything else: {_kernel_ms(own, other):.0f} vs "
                 f"{_kernel_ms(peer, other):.0f} ms.")
    if kind == "train" and own and "share" in own:
        opt = own["share"].get("optimizer", 0)
        text += (f" The two models run the same oneDNN matrix kernels and the"
                 f" same AdamW update ({100 * opt:.0f}% of the step), so a"
                 " model-side change can only win back part of the rest.")
    elif kind == "infer" and own and "share" in own:
        text += (" Both run the same oneDNN matrix kernels; with matrix "
                 "products at this share of the time, inference is near its"
                 " roofline and the ratio can only move by the remainder.")
    row = rows.get(name, {})
    diff = row.get("peer_max_abs_diff")
    if diff is not None:
        text += (f" (Outputs of the two differ by at most {diff:.1e}: the "
                 "exact-erf vs tanh gelu.)")
    return text


def _flops_why(results, slow, fast, phase, measured):
    rows = _rows(results)
    key = "train_flops_per_token" if phase.startswith("train") else (
        "flops_per_token")
    ideal = rows[slow][key] / rows[fast][key]
    prof_key = "train" if phase.startswith("train") else "infer_b1"
    slow_p = _profile(results, slow, prof_key)
    fast_p = _profile(results, fast, prof_key)
    text = (f"The FLOPs ratio is {ideal:.2f}x; the measured time ratio is "
            f"{measured:.2f}x. Time does not shrink with the FLOPs because "
            "per-layer work the FLOPs leave out (layernorms, activations, "
            "dropout, transposes, embedding lookups, the optimizer over all "
            "parameters including embeddings) does not shrink as much. "
            f"Profile: {slow} {_share_text(slow_p)}; "
            f"{fast} {_share_text(fast_p)}.")
    return text


def _goal(goal, target, measured, met, detail="", why=None):
    entry = {"goal": goal, "target": target, "measured": measured,
             "met": met, "detail": detail}
    if met is False:
        entry["why"] = why
    return entry


def _bf16_goals(results, rows, batch):
    """bfloat16 against float32 on the reference (the AMX targets) and
    trimzoo against keras-hub, both in bfloat16, on every peer row."""
    goals = []
    ref = rows.get(results.get("reference"), {})
    units = results.get("environment", {}).get("cpu_units") or {}
    amx = units.get("amx_bf16")
    for title, key, threshold, other in (
            (f"inference (batch {batch})", f"infer_ratio_b{batch}",
             BF16_INFER_AMX, "infer_ratio_b1"),
            ("MLM training step", "train_ratio", BF16_TRAIN_AMX, None)):
        goal = (f"{ref.get('model', 'reference')}: bfloat16 {title} vs "
                "float32, on AMX-BF16 CPUs")
        value = ref.get(f"bfloat16_{key}")
        if value is None:
            goals.append(_goal(goal, f">= {threshold:.1f}x", None, None,
                               "bfloat16 not timed (--precisions)"))
            continue
        detail = f"batch 1: {ref[f'bfloat16_{other}']:.2f}x; " if (
            other) else ""
        if not amx:
            goals.append(_goal(goal, f">= {threshold:.1f}x", value, None,
                               detail + "not judged: this CPU has no "
                               "AMX-BF16"))
            continue
        met = value >= threshold
        goals.append(_goal(goal, f">= {threshold:.1f}x", value, met,
                           detail.rstrip("; "), None if met else (
                               "bfloat16 runs on the AMX-BF16 tiles only "
                               "where oneDNN dispatches to them (see the "
                               "header); the parts of the step that stay "
                               "in float32 (layernorms, softmax, the "
                               "optimizer) do not speed up.")))
    for row in rows.values():
        b1 = row.get("peer_bfloat16_infer_ratio_b1")
        bb = row.get(f"peer_bfloat16_infer_ratio_b{batch}")
        if b1 is None or bb is None:
            continue
        value = min(b1, bb)
        met = value >= PEER_INFER
        train = row.get("peer_bfloat16_train_ratio")
        goals.append(_goal(
            f"{row['model']}: bfloat16 inference vs keras-hub "
            f"BertBackbone in bfloat16 (batch 1 and {batch})",
            f">= {PEER_INFER:.1f}x", value, met,
            f"batch 1: {b1:.2f}x, batch {batch}: {bb:.2f}x"
            + (f"; training step: {train:.2f}x" if train else ""),
            None if met else (
                "Both models run the same oneDNN bfloat16 matrix kernels; "
                "the ratio moves with the work around them (casts between "
                "bfloat16 and float32, layernorms, softmax) and with the "
                "noise of the run (see the float32 ratio of the same row "
                "for comparison).")))
    return goals


def evaluate(results):
    """The goals table: a list of dicts with ``goal``, ``target``,
    ``measured`` (a number or None), ``met`` (True, False, or None when
    the run lacks the models), ``detail`` and, when missed, ``why``."""
    rows = _rows(results)
    batch = results.get("config", {}).get("batch_size", 8)
    goals = []

    peer_rows = [r for r in rows.values() if r.get("peer_infer_ratio_b1")]
    if not peer_rows:
        goals.append(_goal("trimzoo inference vs keras-hub (same "
                           "architecture)", f">= {PEER_INFER:.1f}x", None,
                           None, "no row with a keras-hub peer in this run"))
    for row in peer_rows:
        name = row["model"]
        value = row["peer_infer_ratio_b1"]
        b8 = row.get(f"peer_infer_ratio_b{batch}")
        met = value >= PEER_INFER
        goals.append(_goal(
            f"{name}: inference vs keras-hub BertBackbone (batch 1)",
            f">= {PEER_INFER:.1f}x", value, met,
            f"batch {batch}: {b8:.2f}x" if b8 else "",
            None if met else _peer_why(results, name, "infer")))
    for row in peer_rows:
        name = row["model"]
        value = row.get("peer_train_ratio")
        if value is None:
            continue
        met = value >= PEER_TRAIN
        goals.append(_goal(
            f"{name}: MLM training step vs keras-hub BertMaskedLM",
            f">= {PEER_TRAIN:.1f}x", value, met, "",
            None if met else _peer_why(results, name, "train")))

    base = rows.get("bert_base")
    if base is None:
        goals.append(_goal("bert_base inference: share of the matmul rate",
                           f">= {MATMUL_FRACTION:.2f}", None, None,
                           "bert_base not in this run"))
    else:
        value = base.get(f"matmul_fraction_b{batch}")
        met = value is not None and value >= MATMUL_FRACTION
        why = None
        if not met:
            prof = _profile(results, "bert_base", "infer_b1")
            why = (f"Matrix products are {100 * (matmul_share(prof) or 0):.0f}%"
                   " of the kernel time at batch 1; the rest runs below the "
                   "matmul rate, and the model's products are smaller than "
                   "the probe's (768-wide vs 1024x4096). "
                   f"Profile: {_share_text(prof)}.")
        goals.append(_goal(
            f"bert_base inference (batch {batch}): share of the measured "
            "matmul rate", f">= {MATMUL_FRACTION:.2f}", value, met,
            f"batch 1: {base.get('matmul_fraction_b1', float('nan')):.2f}",
            why))

    def ratio_goal(title, slow, fast, phase, threshold, fmt):
        if slow not in rows or fast not in rows:
            goals.append(_goal(title, fmt(threshold), None, None,
                               f"needs {slow} and {fast} in the run"))
            return
        value = _pair_ratio(results, phase, slow, fast)
        if value is None:
            goals.append(_goal(title, fmt(threshold), None, None,
                               f"{slow} and {fast} not timed together"))
            return
        met = value >= threshold
        goals.append(_goal(title, fmt(threshold), value, met, "",
                           None if met else _flops_why(
                               results, slow, fast, phase, value)))

    ratio_goal("trimbert_base training step vs bert_base", "bert_base",
               "trimbert_base", "train_trimbert_base", TRIMBERT_TRAIN,
               lambda t: f">= {t:.1f}x")
    ratio_goal("bort inference vs bert_large (batch 1)", "bert_large",
               "bort", "infer_b1", BORT_INFER, lambda t: f">= {t:.0f}x")

    title = "bert_base with the top 4 layers dropped: inference time cut"
    drop = "bert_base-drop4"
    if "bert_base" in rows and drop in rows:
        speedup = _pair_ratio(results, "infer_b1", "bert_base", drop)
        value = 1.0 - 1.0 / speedup
        met = value >= DROP4_REDUCTION
        why = None
        if not met:
            why = _flops_why(results, "bert_base", drop, "infer_b1", speedup)
        b8 = _pair_ratio(results, f"infer_b{batch}", "bert_base", drop)
        goals.append(_goal(title, f">= {100 * DROP4_REDUCTION:.0f}%", value,
                           met, f"batch {batch}: {100 * (1 - 1 / b8):.0f}%"
                           if b8 else "", why))
    else:
        goals.append(_goal(title, f">= {100 * DROP4_REDUCTION:.0f}%", None,
                           None, "needs bert_base (with --drops=bert_base:4)"))
    goals += _bf16_goals(results, rows, batch)
    return goals
