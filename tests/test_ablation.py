"""The pretraining ablation (``trimzoo.experiments.ablation``,
``tools/ablate.py``): its grid, its report, and the tool end to end."""

import json
import math
import os
import subprocess
import sys

import pytest

from trimzoo.experiments import ablation
from trimzoo.layers import NORMALIZERS

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
if ROOT not in sys.path:  # configs/ is a folder of the checkout
    sys.path.insert(0, ROOT)

from configs.pretrain import get_config  # noqa: E402  (after the path)


def test_ablation_grid_and_configs():
    variants = ablation.default_variants()
    groups = {}
    for v in variants:
        groups.setdefault(v.group, []).append(v)
    assert {v.overrides.get("ffn_layers") for v in groups["ffn"]} == {
        None, "every_2", "every_3", "none"}
    assert {v.overrides["attention_normalizer"]
            for v in groups["normalizer"]} == set(NORMALIZERS)
    assert [v.distill for v in groups["distillation"]] == [False, True]
    # Asking for distillation alone brings the teacher along.
    chosen = ablation.select(variants, ["distillation"])
    assert [v.name for v in chosen][0] == ablation.BASELINE
    with pytest.raises(ValueError, match="Unknown groups"):
        ablation.select(variants, ["dropout"])

    base = get_config("model=bert_mini")
    kd = next(v for v in variants if v.distill)
    config = ablation.variant_config(base, kd, teacher="/teacher")
    assert config.model == "bort_mini"
    assert config.distill.teacher == "/teacher"
    norm = groups["normalizer"][0]
    config = ablation.variant_config(base, norm)
    assert config.model == "trimbert_mini" and not config.distill.teacher
    assert (config.model_overrides.attention_normalizer
            == norm.overrides["attention_normalizer"])
    assert base.model == "bert_mini"  # the base config is not modified


def test_ablation_report(tmp_path):
    def row(name, group, loss, step_ms, overrides=None, distill=False):
        history = [{"step": s, "mlm_loss": 10 - s / 10, "loss": 10 - s / 10,
                    "mlm_accuracy": 0.01 * s} for s in (1, 10, 20)]
        return {"name": name, "group": group, "preset": "bert_mini",
                "overrides": overrides or {}, "distill": distill,
                "note": "", "params": 1e7, "eval_mlm_loss": loss,
                "eval_mlm_accuracy": 0.1, "train_mlm_loss": loss,
                "step_ms": step_ms, "log_step_ms": (step_ms or 90) * 1.1,
                "history": history}

    rows = [row("bert", "ffn", 7.0, 100),
            row("ffn_none", "ffn", 7.5, 60, {"ffn_layers": "none"}),
            row("trimbert_relu", "normalizer", 7.4, 70,
                {"attention_normalizer": "relu"}),
            row("trimbert_softmax", "normalizer", 7.2, 72,
                {"attention_normalizer": "softmax"}),
            row("trimbert_sigmoid", "normalizer", 7.6, 71,
                {"attention_normalizer": "sigmoid"}),
            row("bort_student_kd", "distillation", 7.9, None, distill=True)]
    rec = ablation.recommend_normalizer(rows)
    # Softmax is the reference TrimBERT replaces, never the recommendation.
    assert rec["normalizer"] == "relu" and rec["runner_up"] == "sigmoid"
    assert rec["margin"] == pytest.approx(0.2)
    assert rec["gap_to_softmax"] == pytest.approx(0.2)
    results = {"config": json.loads(get_config().to_json()),
               "batch_size": 8, "seq_len": 128, "variants": rows,
               "recommended_normalizer": rec}
    text = ablation.markdown(results)
    assert "**relu**" in text and "+0.200 for the replacement" in text
    assert "ffn_none loss +0.500, step x0.60." in text
    path = tmp_path / "loss.png"
    ablation.plot_loss_vs_time(results, str(path))
    assert path.stat().st_size > 0


@pytest.mark.slow
def test_ablation_tool_end_to_end(tmp_path):
    """tools/ablate.py on tiny models: learns its vocabulary, pretrains
    every variant (the distilled one from the BERT run), evaluates, times
    and reports; a re-run reads the finished runs back."""
    out = tmp_path / "ablation"
    command = [sys.executable, os.path.join(ROOT, "tools", "ablate.py"),
               f"--out={out}", "--steps=2", "--batch_size=4", "--seq_len=32",
               "--log_every=1", "--eval_batches=1", "--timing_rounds=1",
               "--vocab_size=400", "--bert=bert_tiny", "--trimbert=bert_tiny",
               "--student=bert_tiny", "--groups=layernorm,normalizer,"
               "distillation"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(command, capture_output=True, text=True,
                            timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((out / "ablation.json").read_text())
    names = [r["name"] for r in data["variants"]]
    assert names[0] == "bert" and "bort_student_kd" in names
    assert {"layernorm_one_per_block", "trimbert_relu",
            "trimbert_softmax"} <= set(names)
    vocab = (out / "vocab_400" / "vocab.txt").read_text().split("\n")
    for row in data["variants"]:
        assert row["model_kwargs"]["vocabulary_size"] <= 400
        assert row["model_kwargs"]["vocabulary_size"] >= len(vocab) - 1
        assert math.isfinite(row["eval_mlm_loss"]) and row["step_ms"] or (
            row["distill"])
    kwargs = {r["name"]: r["model_kwargs"] for r in data["variants"]}
    assert kwargs["trimbert_relu"]["attention_normalizer"] == "relu"
    assert kwargs["layernorm_one_per_block"]["layer_norm"] == (
        "one_per_block")
    # Same seed and data: the distilled student differs from its twin only
    # by the teacher's loss term.
    rows = {r["name"]: r for r in data["variants"]}
    assert rows["bort_student_kd"]["eval_mlm_loss"] != (
        rows["bort_student"]["eval_mlm_loss"])
    rec = data["recommended_normalizer"]
    assert rec["normalizer"] != "softmax" and "gap_to_softmax" in rec
    assert (out / "loss_vs_time.png").stat().st_size > 0
    assert "Pretraining ablations" in (out / "ablation.md").read_text()
    # Finished runs are read back, not retrained.
    again = subprocess.run(command, capture_output=True, text=True,
                           timeout=900, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((out / "ablation.json").read_text())["variants"][0][
        "eval_mlm_loss"] == data["variants"][0]["eval_mlm_loss"]
    # ... and never under other settings.
    other = subprocess.run([c.replace("--steps=2", "--steps=3")
                            for c in command], capture_output=True,
                           text=True, timeout=900, env=env)
    assert other.returncode != 0
    assert ("trained with other settings (train.checkpoint_every, "
            "train.steps)") in other.stderr
