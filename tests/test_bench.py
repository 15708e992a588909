"""Benchmark: report generation on tiny models, FLOPs, goals logic.

Speed itself is never asserted: only that every number is measured,
written and labelled.
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from trimzoo.bench import goals, report, runner, workloads
from trimzoo.data.text_inputs import text_inputs
from trimzoo.models import costs as flops
from trimzoo.utils import timing
from trimzoo.bench.environment import environment
import trimzoo

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
if ROOT not in sys.path:  # configs/ is a folder of the checkout
    sys.path.insert(0, ROOT)
# Tiny widths that keep each preset's structure (3 layers: trimbert keeps
# one FFN, bort keeps one segment).
SMALL = dict(num_layers=3, hidden_dim=32, num_heads=2, intermediate_dim=48,
             vocabulary_size=500, max_sequence_length=64)


def _config(**kwargs):
    base = dict(
        models=("bert_tiny", "trimbert_mini"), drops=(), overrides=SMALL,
        seq_len=16, batch_size=8, train_batch_size=2, infer_rounds=2,
        train_rounds=2, tflite_rounds=2, scaling_rounds=1,
        seq_lens=(16, 32), batch_sizes=(1, 2), tflite_isolate=False,
        variants=False, memory=False, progress=False, isolate_phases=False,
        precisions=("float32",), onednn_probe=False)
    base.update(kwargs)
    return runner.BenchmarkConfig(**base)


def _number(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """One run with every phase on two tiny rows (one with a peer)."""
    out = tmp_path_factory.mktemp("bench")
    results = runner.run(_config(memory=True, variants=True,
                                 precisions=("bfloat16", "int8"),
                                 onednn_probe=True),
                         command="pytest")
    report.write_report(results, str(out))
    return results, out


@pytest.mark.slow
def test_report_files_exist(full_run):
    _, out = full_run
    for name in ("report.md", "results.json", *report.PLOTS):
        path = out / name
        assert path.exists(), name
        assert path.stat().st_size > 0, name
    with open(out / "params.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_results_json_columns(full_run):
    _, out = full_run
    with open(out / "results.json") as f:
        data = json.load(f)
    rows = {row["model"]: row for row in data["models"]}
    assert list(rows) == ["bert_tiny", "trimbert_mini"]
    for row in rows.values():
        for column in report.REQUIRED_COLUMNS:
            assert column in row, column
        for column in ("params", "non_embedding_params", "flops_per_token",
                       "infer_ms_b1", "infer_tok_s_b8", "train_tok_s",
                       "tflite_fp32_ms_b1", "tflite_int8_ms_b1",
                       "matmul_fraction_b1", "peak_rss_infer_mb",
                       "peak_rss_train_mb"):
            assert _number(row[column]) and row[column] > 0, (
                row["model"], column, row[column])
        assert row["non_embedding_params"] < row["params"]
    # A peer exists for BERT, not for TrimBERT (FFN in 1 of 3 layers).
    bert, trim = rows["bert_tiny"], rows["trimbert_mini"]
    assert bert["peer"] == "keras_hub.models.BertBackbone"
    assert _number(bert["peer_infer_ratio"])
    assert _number(bert["peer_train_ratio"])
    assert bert["peer_max_abs_diff"] < 1e-2
    assert trim["peer"] is None and trim["peer_infer_ratio"] is None
    assert "FFN in 1 of 3 layers" in trim["peer_reason"]
    # Fewer FLOPs and parameters for TrimBERT at equal widths.
    assert trim["flops_per_token"] < bert["flops_per_token"]
    assert trim["params"] < bert["params"]
    assert data["flops_check"]["ok"]
    assert set(data["scaling"]) == {"seq_len", "batch_size"}
    assert set(data["scaling"]["seq_len"]["bert_tiny"]) == {"16", "32"}
    assert data["variants"]["rows"], "XLA variants missing"
    assert data["environment"]["cores"] >= 1
    assert data["command"] == "pytest"


@pytest.mark.slow
def test_report_markdown_sections(full_run):
    _, out = full_run
    text = (out / "report.md").read_text()
    for heading in ("## Models", "## trimzoo vs keras-hub",
                    "## Trade-offs vs bert_tiny", "## Goals",
                    "## What helps", "## Where the time goes",
                    "## FLOPs check", "## Plots"):
        assert heading in text, heading
    assert "Command: `pytest`" in text
    assert "## Precisions" in text and "oneDNN v" in text
    assert "bert_base not in this run" in text
    for plot in report.PLOTS:
        assert f"({plot})" in text


@pytest.mark.slow
def test_profiles_split_time(full_run):
    results, _ = full_run
    train = results["profiles"]["bert_tiny"]["train"]
    assert set(train["share"]) == set(
        ["matmul", "matmul_backward", "optimizer", "elementwise",
         "elementwise_backward"])
    assert abs(sum(train["share"].values()) - 1) < 1e-2
    assert train["ms"]["optimizer"] > 0
    assert train["ms"]["matmul_backward"] > 0
    bf16 = results["profiles"]["bert_tiny"]["train_bfloat16"]
    assert bf16["ms"]["matmul_backward"] > 0 and bf16["ms"]["optimizer"] > 0
    infer = results["profiles"]["bert_tiny"]["infer_b1"]
    assert infer["ms"]["optimizer"] == 0
    assert infer["ms"]["matmul_backward"] == 0


@pytest.mark.slow
def test_drop_rows_and_goals_listed():
    results = runner.run(_config(
        models=("bert_tiny",), drops=("bert_tiny:1", "bert_base:4"),
        tflite=False, scaling=False, profile=False, flops_check=False,
        peers=False))
    names = [row["model"] for row in results["models"]]
    assert names == ["bert_tiny", "bert_tiny-drop1"]
    drop = results["models"][1]
    assert drop["num_layers"] == SMALL["num_layers"] - 1
    assert drop["peer"] is None and drop["peer_reason"] == (
        "peers switched off")
    assert _number(drop["infer_speedup_vs_ref_b1"])
    assert _number(drop["train_speedup_vs_ref"])
    unmeasured = [g for g in results["goals"] if g["met"] is None]
    # Peers off, no base/large models, bfloat16 not timed.
    assert len(unmeasured) == 7


@pytest.mark.slow
def test_phase_in_fresh_process():
    run = runner.Run(_config(models=("bert_tiny",), isolate_phases=True))
    run._execute("build", "build")
    assert run.rows["bert_tiny"]["peer"] == "keras_hub.models.BertBackbone"
    assert run.rows["bert_tiny"]["flops_per_token"] > 0
    assert not run.context._backbones, "an isolated phase built models here"
    # The phase's own exception comes back from its process.
    run._execute("train_group", "training bert_tiny", "no_such_row")
    assert run.results["errors"]["training bert_tiny"] == (
        "KeyError: 'no_such_row'")


def test_config_errors():
    with pytest.raises(ValueError, match="Valid names"):
        runner.resolve_specs(_config(models=("bert_huge",)))
    with pytest.raises(ValueError, match="preset:k"):
        runner.parse_drops(["bert_base"], ["bert_base"])
    with pytest.raises(ValueError, match="not one of the rows"):
        runner.Run(_config(reference="bort"))
    with pytest.raises(ValueError, match=r"Unknown precisions \['fp8'\]. "
                       r"Valid values: \['float32', 'bfloat16', 'int8'"):
        runner.Run(_config(precisions=("bfloat16", "fp8")))
    assert runner.resolve_precisions(_config(precisions=("int8",))) == (
        "float32", "int8")


def _precisions_run(precisions, batch_size):
    """The build and precisions phases of a one-layer bert_tiny row."""
    run = runner.Run(_config(models=("bert_tiny",),
                             overrides=dict(SMALL, num_layers=1),
                             precisions=precisions, batch_size=batch_size,
                             infer_rounds=1, train_rounds=1, profile=False,
                             onednn_probe=False))
    run._execute("build", "build")
    run._execute("precisions", "precisions bert_tiny", "bert_tiny")
    assert "errors" not in run.results, run.results["errors"]
    return run, run.rows["bert_tiny"], run.results["rounds"]


def test_int8_inference_rows_in_results_and_report():
    """Keras int8 against float32 at batch 1 and batch_size: the row's
    ratios are the medians of the rounds it records, and the report shows
    them and the CPU's units."""
    run, row, rounds = _precisions_run(("int8",), batch_size=4)
    for batch in (1, 4):
        times = rounds[f"precisions_infer_b{batch}_bert_tiny"]
        assert set(times) == {"bert_tiny@float32", "bert_tiny@int8"}
        assert row[f"int8_infer_ratio_b{batch}"] == timing.median_ratio(
            times["bert_tiny@float32"], times["bert_tiny@int8"])
    # Quantized: inference only, without the peer.
    assert "precisions_train_bert_tiny" not in rounds
    assert "int8_train_ratio" not in row
    assert "peer_int8_infer_ratio_b1" not in row
    # It really ran quantized: near float32, not equal to it.
    assert 0 < row["int8_max_abs_diff"] < 0.1

    results = dict(run.results, models=[row],
                   environment=environment(onednn=False))
    text = report.markdown(results)
    assert "## Precisions: bfloat16 and Keras quantization vs float32" in text
    line = next(l for l in text.splitlines()
                if l.startswith("| bert_tiny | int8 |"))
    assert f"| {row['int8_infer_ratio_b1']:.2f}x |" in line
    assert f"| {row['int8_infer_ratio_b4']:.2f}x |" in line
    for unit in ("AMX-BF16", "AVX512-BF16", "AMX-INT8", "AVX512-VNNI"):
        assert unit in text


def test_bfloat16_training_rows():
    """The bfloat16 training step and inference against float32 and
    against keras-hub's in bfloat16, in the same rounds."""
    _, row, rounds = _precisions_run(("bfloat16",), batch_size=1)
    assert set(rounds["precisions_infer_b1_bert_tiny"]) == {
        "bert_tiny@float32", "bert_tiny@bfloat16",
        "bert_tiny@keras_hub@bfloat16"}
    train = rounds["precisions_train_bert_tiny"]
    assert set(train) == {"bert_tiny@float32", "bert_tiny@bfloat16",
                          "bert_tiny@keras_hub@bfloat16"}
    assert row["bfloat16_train_ratio"] == timing.median_ratio(
        train["bert_tiny@float32"], train["bert_tiny@bfloat16"])
    assert row["peer_bfloat16_train_ratio"] == timing.median_ratio(
        train["bert_tiny@keras_hub@bfloat16"], train["bert_tiny@bfloat16"])
    assert _number(row["bfloat16_infer_ratio_b1"])
    assert _number(row["peer_bfloat16_infer_ratio_b1"])
    assert 0 < row["bfloat16_max_abs_diff"] < 0.1


def test_classifier_in_each_precision(tmp_path):
    """A fine-tuned classifier folder: labels compared with float32's on
    the test split's texts, and timed round-robin at batch 1 and
    batch_size."""
    from helpers import make_classifier_run

    folder = os.path.join(make_classifier_run(tmp_path), "best")
    run = runner.Run(_config(models=("bert_tiny",), classifier=folder,
                             classifier_examples=12, precisions=("int8",),
                             batch_size=2, infer_rounds=2))
    run._execute("classifier", "classifier")
    assert "errors" not in run.results, run.results["errors"]
    out = run.results["classifier"]
    assert (out["folder"], out["examples"]) == (folder, 12)
    assert set(out["precisions"]) == {"float32", "int8"}
    f32, int8 = out["precisions"]["float32"], out["precisions"]["int8"]
    assert f32["agreement"] == 1.0 and 0 <= f32["accuracy"] <= 1
    assert 0.5 <= int8["agreement"] <= 1.0  # 3 classes: chance is 1/3
    assert f32["max_abs_diff"] == 0 and 0 < int8["max_abs_diff"] < 0.1
    rounds = run.results["rounds"]
    for batch in (1, 2):
        times = rounds[f"classifier_b{batch}"]
        assert int8[f"infer_ratio_b{batch}"] == timing.median_ratio(
            times["float32"], times["int8"])
    text = "\n".join(report._classifier(run.results))
    assert f"\n| int8 | {100 * int8['agreement']:.1f}% |" in text


def _synthetic_results(bort_speedup, drop_speedup):
    """A results dict as the runner writes it, with chosen round times."""
    rounds = 5
    base = [1.0] * rounds
    infer = {"bert_base": base, "bert_large": [3.0] * rounds,
             "bort": [3.0 / bort_speedup] * rounds,
             "bert_base-drop4": [1.0 / drop_speedup] * rounds}
    rows = [
        {"model": "bert_base", "flops_per_token": 170e6,
         "train_flops_per_token": 600e6, "matmul_fraction_b8": 0.9,
         "matmul_fraction_b1": 0.8, "peer_infer_ratio_b1": 1.05,
         "peer_train_ratio": 1.1},
        {"model": "bert_large", "flops_per_token": 600e6,
         "train_flops_per_token": 2e9},
        {"model": "bort", "flops_per_token": 48e6,
         "train_flops_per_token": 200e6},
        {"model": "bert_base-drop4", "flops_per_token": 115e6,
         "train_flops_per_token": 400e6},
        {"model": "trimbert_base", "flops_per_token": 100e6,
         "train_flops_per_token": 330e6},
    ]
    train = {"bert_base": [2.0] * rounds, "trimbert_base": [1.0] * rounds}
    return {"config": {"batch_size": 8}, "models": rows,
            "rounds": {"infer_b1": infer, "train_trimbert_base": train},
            "profiles": {}}


def test_goals_met_and_missed():
    table = {g["goal"]: g for g in goals.evaluate(
        _synthetic_results(bort_speedup=12.0, drop_speedup=1.5))}
    assert table["bort inference vs bert_large (batch 1)"]["met"] is True
    drop = table["bert_base with the top 4 layers dropped: inference time "
                 "cut"]
    assert drop["met"] is True and abs(drop["measured"] - 1 / 3) < 1e-9
    assert table["trimbert_base training step vs bert_base"]["met"] is True
    peer_train = table["bert_base: MLM training step vs keras-hub "
                       "BertMaskedLM"]
    assert peer_train["met"] is False and "Profile" in peer_train["why"]

    table = {g["goal"]: g for g in goals.evaluate(
        _synthetic_results(bort_speedup=9.0, drop_speedup=1.2))}
    bort = table["bort inference vs bert_large (batch 1)"]
    assert bort["met"] is False
    assert "FLOPs ratio is 12.50x" in bort["why"]
    assert "9.00x" in bort["why"]
    drop = table["bert_base with the top 4 layers dropped: inference time "
                 "cut"]
    assert drop["met"] is False and drop["why"]


def test_bfloat16_goals_judged_on_amx_only():
    results = _synthetic_results(bort_speedup=12.0, drop_speedup=1.5)
    results["reference"] = "bert_base"
    results["models"][0].update(
        bfloat16_infer_ratio_b1=1.2, bfloat16_infer_ratio_b8=1.4,
        bfloat16_train_ratio=1.1, peer_bfloat16_infer_ratio_b1=1.05,
        peer_bfloat16_infer_ratio_b8=0.97, peer_bfloat16_train_ratio=1.0)

    def table(amx):
        results["environment"] = {"cpu_units": {"amx_bf16": amx}}
        return {g["goal"]: g for g in goals.evaluate(results)}

    infer = ("bert_base: bfloat16 inference (batch 8) vs float32, on "
             "AMX-BF16 CPUs")
    train = ("bert_base: bfloat16 MLM training step vs float32, on AMX-BF16 "
             "CPUs")
    peer = ("bert_base: bfloat16 inference vs keras-hub BertBackbone in "
            "bfloat16 (batch 1 and 8)")
    no_amx = table(False)
    assert no_amx[infer]["measured"] == 1.4 and no_amx[infer]["met"] is None
    assert report.goal_state(no_amx[infer]) == "not judged"
    assert "no AMX-BF16" in no_amx[infer]["detail"]
    assert no_amx[train]["measured"] == 1.1 and no_amx[train]["met"] is None
    # The peer goal holds everywhere; batch 8 is under 1.0x here.
    assert no_amx[peer]["measured"] == 0.97 and no_amx[peer]["met"] is False
    assert no_amx[peer]["why"]
    amx = table(True)
    assert amx[infer]["met"] is False and amx[infer]["why"]
    assert amx[train]["met"] is False
    results["models"][0].update(bfloat16_infer_ratio_b8=1.9,
                                bfloat16_train_ratio=1.75)
    amx = table(True)
    assert amx[infer]["met"] is True and amx[train]["met"] is True


def test_flops_match_profiler_and_structure():
    backbone = trimzoo.models.trimbert_mini(**SMALL)
    check = flops.check_flops(backbone, seq_len=16)
    assert check["ok"], check
    assert check["profiler_matmul"] == pytest.approx(
        check["analytic_matmul"], rel=1e-6)
    per_token = flops.flops_per_token(backbone, 16)
    h, i = SMALL["hidden_dim"], SMALL["intermediate_dim"]
    # FFN only in the 3rd of 3 layers (every_3).
    assert per_token["ffn"] == 4 * h * i
    counts = flops.parameter_counts(backbone)
    assert counts["embedding_params"] == (
        SMALL["vocabulary_size"] + SMALL["max_sequence_length"] + 2) * h


def test_round_robin_and_ratios():
    calls = {"a": lambda: None, "b": lambda: sum(range(1000))}
    times = timing.round_robin(calls, rounds=4, warmup=0)
    assert {k: len(v) for k, v in times.items()} == {"a": 4, "b": 4}
    assert timing.median_ratio([2.0, 4.0, 6.0], [1.0, 2.0, 2.0]) == 2.0
    with pytest.raises(ValueError):
        timing.median_ratio([1.0], [])
    with pytest.raises(ValueError, match="rounds"):
        timing.round_robin(calls, rounds=0)


def test_inputs_are_real_text_and_masked():
    inputs = text_inputs(2, 24, 30522)
    ids = inputs["token_ids"]
    assert ids.shape == (2, 24) and inputs["padding_mask"].all()
    assert len(np.unique(ids)) > 10  # real text, not a constant
    small = text_inputs(2, 24, 50)
    assert small["token_ids"].max() < 50
    batch, labels, weights = workloads.mlm_batch(2, 40, 30522)
    assert labels.shape == (2, 6) == weights.shape
    positions = batch["mask_positions"]
    rows = np.arange(2)[:, None]
    assert (batch["token_ids"][rows, positions] == 103).all()  # [MASK]
    assert (labels != 103).all()


@pytest.mark.slow
def test_tool_lists_flags():
    tool = os.path.join(ROOT, "tools", "benchmark.py")
    # absl prints the help and exits with status 1.
    result = subprocess.run([sys.executable, tool, "--helpfull"],
                            capture_output=True, text=True, timeout=300)
    assert "Traceback" not in result.stderr
    for flag in ("--models", "--drops", "--out", "--train_batch_size",
                 "--[no]memory", "--precisions"):
        assert flag in result.stdout
