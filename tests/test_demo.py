"""``make demo``'s pipeline end to end on a budget of a few steps (the real
run is ``tools/demo.py``; its numbers are in docs/compression.md)."""

import json
import os

import pytest

from configs.finetune import get_config
from trimzoo.demo import load_results, run_demo


def tiny_config():
    config = get_config("task=rotten_tomatoes")
    config.train.max_steps_per_epoch = 2
    config.data.max_eval_examples = 32
    return config


@pytest.mark.slow
def test_demo_compresses_the_teacher_to_a_budget(tmp_path):
    out = str(tmp_path / "demo")
    rows = run_demo(out, tiny_config, train_examples=64, epochs=1,
                    max_seq_length=32, export=True, teacher_epochs=1,
                    bucket_width=8, route="budget", speedup=1.5,
                    compress_settings=dict(max_measured=8, rounds=2,
                                           proxy_steps=2, heal_steps=2,
                                           eval_examples=32))
    assert [r["key"] for r in rows] == ["minilm", "compressed"]
    teacher, compressed = rows
    assert compressed["params"] < teacher["params"]
    assert compressed["speedup_when_chosen"] >= 1.5
    results = json.load(open(os.path.join(out, "compress", "results.json")))
    assert results["chosen"] in compressed["model"]
    # The compressed model is the one exported, behind the parity gate.
    assert compressed["folder"] == os.path.join(out, "compress", "model")
    assert os.path.isfile(os.path.join(out, "tflite", "export_report.json"))
    assert "tflite_int8_ms_b1" in compressed
    # ...with MediaPipe metadata: the file an app runs, and its latency.
    assert os.path.isfile(os.path.join(
        out, "tflite", "text_classifier_dynamic_int8.tflite"))
    assert compressed["app_ms_per_text"] > 0
    report = open(os.path.join(out, "report.md")).read()
    assert "compressed to a budget" in report
    assert "App file of" in report and "ms a text" in report
    assert load_results(out) == rows


def test_demo_refuses_an_unknown_route(tmp_path):
    with pytest.raises(ValueError, match="route must be one of"):
        run_demo(str(tmp_path), tiny_config, route="prune")


@pytest.mark.slow
def test_demo_trains_teacher_and_distilled_student(tmp_path):
    out = str(tmp_path / "demo")
    rows = run_demo(out, tiny_config, train_examples=64, epochs=1,
                    max_seq_length=32, export=False, teacher_epochs=2,
                    bucket_width=8, precision="bfloat16", route="drop")
    # The teacher trains in the precision asked for, the students in
    # float32; the report says so.
    assert [r["precision"] for r in rows] == ["bfloat16", "float32"]
    assert [r["key"] for r in rows] == ["minilm", "minilm_top2_distilled"]
    assert [r["distilled"] for r in rows] == [False, True]
    assert [r["layers"] for r in rows] == [6, 4]
    assert load_results(out) == rows
    epochs = []
    for row in rows:
        folder = os.path.dirname(row["folder"])
        record = json.load(open(os.path.join(folder, "metrics.json")))
        epochs.append(len(record["evals"]))
        # The reported validation accuracy is the best epoch's.
        assert row["validation_accuracy"] == max(
            e["validation"]["accuracy"] for e in record["evals"])
        config = json.load(open(os.path.join(folder, "config.json")))
        assert config["data"]["bucket_width"] == 8
        assert row["keras_ms_b1"] > 0
    assert epochs == [2, 1]  # teacher_epochs, then the student's epochs
    report = open(os.path.join(out, "report.md")).read()
    assert "Training precision: minilm bfloat16 (asked for)" in report


def test_demo_refuses_a_speedup_that_is_no_budget(tmp_path):
    with pytest.raises(ValueError, match="speedup must be > 1"):
        run_demo(str(tmp_path), tiny_config, route="budget", speedup=1)
