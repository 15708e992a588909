"""The compression table end to end on a tiny teacher (the real run is
``tools/compression_table.py``; its results are in docs/compression.md)."""

import json
import os

import pytest

from trimzoo.experiments.compression_table import METHODS, compression_table

from helpers import small_config


def student_config():
    config = small_config()
    config.model_overrides = {}
    return config


@pytest.mark.slow
def test_table_cuts_trains_and_times_every_row(tmp_path, finetuned_run):
    teacher = finetuned_run["workdir"]
    out = str(tmp_path / "table")
    rows = compression_table(out, os.path.join(teacher, "best"),
                             student_config, methods=("top2", "prune50"),
                             max_seq_length=32, export=False, rounds=3)
    assert [(r["key"], r["distilled"]) for r in rows] == [
        ("teacher", False), ("top2", False), ("top2", True),
        ("prune50", False), ("prune50", True)]
    teacher_row = rows[0]
    for row in rows[1:]:
        assert row["params"] < teacher_row["params"]
        assert row["keras_ms_b1"] > 0 and row["speedup"] > 0
        assert row["percent_of_teacher"] == pytest.approx(
            100 * row["test_accuracy"] / teacher_row["test_accuracy"])
        record = json.load(open(os.path.join(
            os.path.dirname(row["folder"]), "metrics.json")))
        assert record["distilled"] is row["distilled"]
        assert record["test"]["accuracy"] == row["test_accuracy"]
    assert rows[1]["layers"] == 1  # 3 layers, top 2 dropped
    for name in ("table.md", "results.json", "accuracy_latency.png"):
        assert os.path.exists(os.path.join(out, name))
    assert set(METHODS) >= {"top2", "contribution2", "prune50", "trimbert"}


def test_healed_method_needs_a_pretraining_config(tmp_path):
    with pytest.raises(ValueError, match="make_pretrain_config"):
        compression_table(str(tmp_path), "unused", student_config,
                          methods=("trimbert_healed",))


@pytest.mark.slow
def test_healed_row_is_healed_in_pretraining_before_fine_tuning(
        tmp_path, finetuned_run):
    import numpy as np

    from configs.pretrain import get_config as pretrain_config
    from trimzoo.models import to_trimbert
    from trimzoo.checkpoints.folders import load_classifier_folder as load_classifier

    teacher_dir = finetuned_run["best"]  # bert_base: softmax, 2 LNs
    out = str(tmp_path / "table")
    rows = compression_table(out, teacher_dir, student_config,
                             methods=("trimbert_healed",), distill=(True,),
                             max_seq_length=32, export=False, rounds=3,
                             make_pretrain_config=pretrain_config,
                             heal_steps=4, bucket_width=8)
    row = rows[1]
    assert (row["key"], row["distilled"], row["heal_steps"]) == (
        "trimbert_healed", True, 4)
    summary = json.load(open(os.path.join(out, "heal", "trimbert_healed",
                                          "run", "summary.json")))
    assert summary["total_steps"] == 4
    # The hidden-state loss was the objective (alpha 0: no masked-LM term).
    config = json.load(open(os.path.join(out, "heal", "trimbert_healed",
                                         "run", "config.json")))
    assert config["distill"]["hidden_weight"] == 1.0
    assert config["distill"]["alpha"] == 0.0
    # The saved student is the converted teacher with healed weights: same
    # architecture, different backbone weights, the converted head.
    converted = to_trimbert(load_classifier(teacher_dir))
    student = load_classifier(os.path.join(out, "students",
                                           "trimbert_healed"))
    assert (student.backbone.get_config()["attention_normalizer"]
            == converted.backbone.get_config()["attention_normalizer"])
    changed = [not np.array_equal(a, b) for a, b in zip(
        student.backbone.get_weights(), converted.backbone.get_weights())]
    assert any(changed)

    def head(model):
        backbone = {id(v) for v in model.backbone.weights}
        return [v.numpy() for v in model.weights if id(v) not in backbone]

    assert head(student)
    for a, b in zip(head(student), head(converted)):
        np.testing.assert_array_equal(a, b)  # the head is not healed
    run = json.load(open(os.path.join(os.path.dirname(row["folder"]),
                                      "config.json")))
    assert run["data"]["bucket_width"] == 8
