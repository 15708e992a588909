"""The papers' claims at small scale: pretraining ablations on real text.

Every variant is pretrained from scratch with ``trimzoo.training.pretrain``
(the project's masked-LM loop) at the same number of steps, on the same
data in the same order (same seed), and evaluated on held-out text with
fixed masks:

- ``ffn``: BERT with a feed-forward sublayer in every layer, every 2nd,
  every 3rd, or none (TrimBERT removes most of them);
- ``layernorm``: all layernorms vs one per block (TrimBERT halves them);
- ``normalizer``: each attention score normaliser on the TrimBERT shape
  (FFN every 3rd layer, one layernorm per block): decides the TrimBERT
  default;
- ``distillation``: a Bort-shaped student with and without knowledge
  distillation from a teacher with the same vocabulary (the pretrained
  BERT variant of the ``ffn`` group).

Step times come from two places: the training log (sequential, affected by
whatever else runs) and an interleaved round-robin timing of every
architecture's training step (``trimzoo.bench.workloads.TrainStep``, the
speed benchmark's), which is what the loss-vs-time plot uses.
"""

import copy
import dataclasses
import json
import os

import keras

from trimzoo.bench import workloads
from trimzoo.data import pretraining as data_lib
from trimzoo.layers.normalizers import NORMALIZERS
from trimzoo.models import TrimzooBackbone
from trimzoo.models.tokenizers import special_token_ids
from trimzoo.training import pretrain
from trimzoo.training.objectives import MaskedLMObjective
from trimzoo.utils import timing
from trimzoo.utils.figures import pyplot
from trimzoo.utils.io import save_figure, write_text



# Everything the ablation writes in its folder (``trimzoo.utils.run_folder``;
# ``tools/ablate.py`` also learns its vocabulary into ``vocab_<size>``).
OUTPUTS = ("runs", "ablation.json", "ablation.md", "loss_vs_time.png")


@dataclasses.dataclass
class Variant:
    """One pretraining run: a preset, ``TrimzooBackbone`` overrides, and
    whether it distils from the teacher run."""

    name: str
    group: str
    preset: str
    overrides: dict = dataclasses.field(default_factory=dict)
    distill: bool = False
    note: str = ""


#: The variant of the ``ffn`` group that is plain BERT: the reference of
#: the ``ffn`` and ``layernorm`` groups and the distillation teacher.
BASELINE = "bert"


def default_variants(bert="bert_mini", trimbert="trimbert_mini",
                     student="bort_mini"):
    """The ablation grid at ``mini`` widths."""
    variants = [
        Variant(BASELINE, "ffn", bert, note="FFN in every layer (BERT)"),
        Variant("ffn_every_2", "ffn", bert, {"ffn_layers": "every_2"},
                note="FFN in every 2nd layer"),
        Variant("ffn_every_3", "ffn", bert, {"ffn_layers": "every_3"},
                note="FFN in every 3rd layer (TrimBERT)"),
        Variant("ffn_none", "ffn", bert, {"ffn_layers": "none"},
                note="no FFN"),
        Variant("layernorm_one_per_block", "layernorm", bert,
                {"layer_norm": "one_per_block"},
                note="one layernorm per block (TrimBERT); vs 'bert'"),
    ]
    for name in NORMALIZERS:
        variants.append(Variant(
            f"trimbert_{name}", "normalizer", trimbert,
            {"attention_normalizer": name},
            note=f"{trimbert} with the {name} normaliser"))
    variants += [
        Variant("bort_student", "distillation", student,
                note=f"{student} trained on the MLM loss alone"),
        Variant("bort_student_kd", "distillation", student, distill=True,
                note=f"{student} distilled from '{BASELINE}'"),
    ]
    return variants


def select(variants, groups):
    """The variants of ``groups`` (all when empty), plus the baseline when
    a distilled variant needs it as teacher."""
    if not groups:
        return list(variants)
    known = sorted({v.group for v in variants})
    unknown = [g for g in groups if g not in known]
    if unknown:
        raise ValueError(f"Unknown groups {unknown}. Valid: {known}.")
    chosen = [v for v in variants if v.group in groups]
    if any(v.distill for v in chosen) and BASELINE not in {
            v.name for v in chosen}:
        chosen.insert(0, next(v for v in variants if v.name == BASELINE))
    return chosen


def variant_config(base_config, variant, teacher=None):
    """``base_config`` (from ``configs/pretrain.py``) for one variant."""
    config = copy.deepcopy(base_config)
    with config.unlocked():
        config.model = variant.preset
        for key, value in variant.overrides.items():
            config.model_overrides[key] = value
        config.distill.teacher = teacher if variant.distill else ""
        config.train.checkpoint_every = int(config.train.steps)
    return config


def evaluate(model, config, tokenizer, num_batches=20, split="validation"):
    """Held-out masked-LM loss and accuracy of ``model``.

    The masks are fixed (seed 1234, no shuffling), so every variant is
    scored on the same positions of the same held-out sentences.
    """
    dataset = data_lib.make_pretraining_dataset(
        batch_size=int(config.train.batch_size), tokenizer=tokenizer,
        special_ids=special_token_ids(tokenizer),
        max_seq_length=int(config.data.max_seq_length),
        texts=data_lib.load_corpus_texts(split), seed=1234,
        shuffle_buffer=0)
    objective = MaskedLMObjective(model)  # the one pretraining trains
    sums = {}
    for batch in dataset.take(num_batches):
        for name, value in objective.evaluate_step(batch).items():
            sums[name] = sums.get(name, 0.0) + float(value)
    values = objective.metrics(sums)
    return {"eval_mlm_loss": values["mlm_loss"],
            "eval_mlm_accuracy": values["mlm_accuracy"],
            "eval_positions": int(sums["count"])}


def train_variant(config, workdir, eval_batches=12):
    """Pretrains (or resumes) one variant and evaluates it; returns its
    result dict."""
    trainer = pretrain.Pretrainer(config, workdir)
    summary = trainer.train()
    result = {
        "steps": summary["total_steps"],
        "model_kwargs": config_kwargs(trainer.config),
        "params": int(trainer.model.backbone.count_params()),
        "log_tokens_per_sec": summary.get("tokens_per_sec"),
        "train_mlm_loss": summary.get("last_logged", {}).get("mlm_loss"),
        "train_mlm_accuracy": summary.get("last_logged", {}).get(
            "mlm_accuracy"),
        "final": summary.get("final"),
    }
    tokens_per_step = (int(config.train.batch_size)
                       * int(config.data.max_seq_length))
    if result["log_tokens_per_sec"]:
        result["log_step_ms"] = (1000 * tokens_per_step
                                 / result["log_tokens_per_sec"])
    result.update(evaluate(trainer.model, trainer.config, trainer.tokenizer,
                           num_batches=eval_batches))
    result["history"] = [
        {k: h.get(k) for k in ("step", "loss", "mlm_loss", "mlm_accuracy")}
        for h in pretrain.read_metrics(workdir)]
    return result


def config_kwargs(config):
    """The resolved backbone arguments of a pretraining config."""
    return json.loads(json.dumps(config.resolved.model_kwargs.to_dict(),
                                 default=list))


def interleaved_step_ms(kwargs_by_name, batch_size, seq_len, rounds=5,
                        progress=None):
    """Median training-step time of each architecture, timed round-robin
    (same batch of real text, same step function)."""
    steps = {}
    for name, kwargs in kwargs_by_name.items():
        keras.utils.set_random_seed(0)
        kwargs = dict(kwargs, dtype="float32")
        backbone = TrimzooBackbone(**kwargs)
        batch = workloads.mlm_batch(batch_size, seq_len,
                                    backbone.vocabulary_size)
        steps[name] = workloads.TrainStep(workloads.masked_lm(backbone),
                                          batch)
    times = timing.round_robin(steps, rounds=rounds, progress=progress)
    return {name: 1000 * timing.median(t) for name, t in times.items()}


def recommend_normalizer(results):
    """The replacement for softmax with the lowest held-out MLM loss in the
    ``normalizer`` group, with the margin to the runner-up and the gap to
    softmax (TrimBERT replaces softmax, so softmax is the reference, not a
    candidate)."""
    rows = [r for r in results if r["group"] == "normalizer"
            and r.get("eval_mlm_loss") is not None]
    candidates = sorted(
        (r for r in rows if r["overrides"]["attention_normalizer"]
         != "softmax"), key=lambda r: r["eval_mlm_loss"])
    if not candidates:
        return None
    best = candidates[0]
    entry = {"normalizer": best["overrides"]["attention_normalizer"],
             "variant": best["name"],
             "eval_mlm_loss": best["eval_mlm_loss"],
             "eval_mlm_accuracy": best["eval_mlm_accuracy"]}
    if len(candidates) > 1:
        entry["runner_up"] = candidates[1]["overrides"][
            "attention_normalizer"]
        entry["margin"] = (candidates[1]["eval_mlm_loss"]
                           - best["eval_mlm_loss"])
    softmax = [r for r in rows
               if r["overrides"]["attention_normalizer"] == "softmax"]
    if softmax:
        entry["softmax_eval_mlm_loss"] = softmax[0]["eval_mlm_loss"]
        entry["gap_to_softmax"] = (best["eval_mlm_loss"]
                                   - softmax[0]["eval_mlm_loss"])
    return entry


def run_ablation(base_config, out_dir, variants=None, eval_batches=12,
                 timing_rounds=5, progress=True):
    """Trains and evaluates every variant; writes ``ablation.json``,
    ``ablation.md`` and ``loss_vs_time.png`` to ``out_dir``.

    Runs live in ``out_dir/runs/<variant>``; an interrupted ablation resumes
    where it stopped (finished runs are read back, not retrained).

    Returns:
        The results dict.
    """
    from tqdm.auto import tqdm

    variants = list(variants or default_variants())
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"Duplicate variant names: {names}.")
    if any(v.distill for v in variants) and BASELINE not in names:
        raise ValueError(f"Distilled variants need the '{BASELINE}' "
                         "variant as teacher.")
    # The teacher trains first.
    variants.sort(key=lambda v: (v.name != BASELINE, v.distill))
    os.makedirs(out_dir, exist_ok=True)
    runs = os.path.join(out_dir, "runs")
    rows = []
    teacher = None
    for variant in tqdm(variants, desc="ablation", disable=not progress):
        workdir = os.path.join(runs, variant.name)
        cached = os.path.join(workdir, "ablation_result.json")
        config = variant_config(base_config, variant, teacher)
        settings = json.loads(config.to_json())
        if os.path.exists(cached):
            with open(cached) as f:
                row = json.load(f)
            _check_same_settings(workdir, row.get("settings"), settings)
        else:
            row = dict(dataclasses.asdict(variant))
            row.update(train_variant(config, workdir, eval_batches))
            row["settings"] = settings
            write_text(cached, json.dumps(row, indent=1))
        if variant.name == BASELINE:
            teacher = row["final"]
        rows.append(row)

    batch = int(base_config.train.batch_size)
    seq_len = int(base_config.data.max_seq_length)
    kwargs = {r["name"]: r["model_kwargs"] for r in rows if not r["distill"]}
    with tqdm(total=timing_rounds, desc="step timing",
              disable=not progress) as bar:
        step_ms = interleaved_step_ms(kwargs, batch, seq_len, timing_rounds,
                                      progress=lambda _: bar.update(1))
    for row in rows:
        # A distilled student's architecture is its undistilled twin's.
        twin = row["name"] if row["name"] in step_ms else next(
            (r["name"] for r in rows if not r["distill"]
             and r["preset"] == row["preset"]
             and r["overrides"] == row["overrides"]), None)
        row["step_ms"] = step_ms.get(twin)
        row["step_ms_note"] = ("" if twin == row["name"] else
                               "architecture only; distillation adds the "
                               "teacher's forward pass (see log_step_ms)")
    results = {
        "config": json.loads(base_config.to_json()),
        "batch_size": batch,
        "seq_len": seq_len,
        "variants": rows,
        "recommended_normalizer": recommend_normalizer(rows),
    }
    write_text(os.path.join(out_dir, "ablation.json"),
               json.dumps(results, indent=1))
    plot_loss_vs_time(results, os.path.join(out_dir, "loss_vs_time.png"))
    write_text(os.path.join(out_dir, "ablation.md"), markdown(results))
    return results


def _check_same_settings(workdir, cached, current):
    """A finished run is reused only under the settings it was trained
    with; anything else would mix two experiments in one table."""
    if cached == current:
        return
    cached = cached or {}
    keys = sorted(_flat(cached).items() ^ _flat(current).items())
    names = sorted({k for k, _ in keys})
    raise ValueError(
        f"{workdir} was trained with other settings ({', '.join(names)}). "
        "Use a new --out, or delete that run to retrain it.")


def _flat(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = json.dumps(value)
    return out


def plot_loss_vs_time(results, path):
    """Training MLM loss against training time (step x interleaved step
    time), one line per variant."""
    plt = pyplot()
    groups = sorted({r["group"] for r in results["variants"]})
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 4),
                             squeeze=False)
    for ax, group in zip(axes[0], groups):
        for row in results["variants"]:
            # The layernorm variants are compared with plain BERT.
            shown = row["group"] == group or (
                group == "layernorm" and row["name"] == BASELINE)
            if not shown or not row.get("history"):
                continue
            step_ms = row.get("log_step_ms") if row["distill"] else (
                row.get("step_ms") or row.get("log_step_ms"))
            if not step_ms:
                continue
            hist = [h for h in row["history"] if h.get("mlm_loss")]
            xs = [h["step"] * step_ms / 1000 for h in hist]
            ax.plot(xs, [h["mlm_loss"] for h in hist], label=row["name"])
        ax.set_title(group)
        ax.set_xlabel("training time (s)")
        ax.set_ylabel("MLM loss (train)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Loss vs step time (equal steps)")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def _f(value, spec):
    return "–" if value is None else f"{value:{spec}}"


def _vocabulary_text(rows):
    sizes = {r.get("model_kwargs", {}).get("vocabulary_size") for r in rows}
    sizes.discard(None)
    if len(sizes) != 1:
        return "the pretraining config's vocabulary"
    return f"a {sizes.pop():,}-token WordPiece vocabulary"


def markdown(results):
    rows = results["variants"]
    cfg = results["config"]
    out = ["# Pretraining ablations", ""]
    out.append(
        f"Every variant: {cfg['train']['steps']} steps from scratch on the "
        f"embedded corpus (training split), batch {results['batch_size']} x "
        f"{results['seq_len']} tokens, seed {cfg['seed']}, AdamW peak "
        f"learning rate {cfg['train']['learning_rate']} with "
        f"{cfg['train']['warmup_steps']} warm-up steps, "
        + _vocabulary_text(rows) + ". Evaluation: held-out"
        " validation split, fixed masks. Step time: round-robin timing of "
        "the architectures' training steps; log step time: the training "
        "run's own (sequential, moves with machine load).")
    out.append("")
    base = {r["name"]: r for r in rows}.get(BASELINE)
    header = ["variant", "group", "params", "eval MLM loss", "eval MLM acc",
              "train MLM loss", "step ms", "log step ms", "note"]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        out.append("| " + " | ".join([
            r["name"], r["group"], f"{r['params'] / 1e6:.2f}M",
            _f(r.get("eval_mlm_loss"), ".3f"),
            _f(r.get("eval_mlm_accuracy"), ".3f"),
            _f(r.get("train_mlm_loss"), ".3f"),
            _f(r.get("step_ms"), ".0f"), _f(r.get("log_step_ms"), ".0f"),
            r.get("note", "") + (f" ({r['step_ms_note']})"
                                 if r.get("step_ms_note") else ""),
        ]) + " |")
    out.append("")
    if base and base.get("step_ms"):
        out.append(f"Relative to '{BASELINE}' (eval loss "
                   f"{base['eval_mlm_loss']:.3f}, step "
                   f"{base['step_ms']:.0f} ms): " + "; ".join(
                       f"{r['name']} loss {r['eval_mlm_loss'] - base['eval_mlm_loss']:+.3f}, "
                       f"step x{r['step_ms'] / base['step_ms']:.2f}"
                       for r in rows if r["name"] != BASELINE
                       and r.get("step_ms") and r["group"] in ("ffn",
                                                               "layernorm"))
                   + ".")
        out.append("")
    rec = results.get("recommended_normalizer")
    if rec:
        text = (f"Replacement for softmax with the lowest held-out MLM "
                f"loss on the TrimBERT shape: **{rec['normalizer']}** "
                f"({rec['eval_mlm_loss']:.3f}, accuracy "
                f"{rec['eval_mlm_accuracy']:.3f})")
        if "runner_up" in rec:
            text += (f", ahead of {rec['runner_up']} by "
                     f"{rec['margin']:.4f}")
        if "gap_to_softmax" in rec:
            text += (f"; softmax itself: {rec['softmax_eval_mlm_loss']:.3f}"
                     f" ({rec['gap_to_softmax']:+.3f} for the replacement)")
        out.append(text + ".")
        out.append("")
    out.append("![loss vs time](loss_vs_time.png)")
    out.append("")
    return "\n".join(out)
