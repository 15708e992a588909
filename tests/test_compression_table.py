"""The compression table end to end on a tiny teacher (the real run is
``tools/compress.py``; its results are in docs/compression.md)."""

import json
import os

import pytest

from trimzoo.bench.compression import METHODS, compression_table
from trimzoo.training.finetune import finetune

from test_finetune import small_config


def student_config():
    config = small_config()
    config.model_overrides = {}
    return config


@pytest.mark.slow
def test_table_cuts_trains_and_times_every_row(tmp_path):
    teacher = str(tmp_path / "teacher")
    finetune(small_config(), teacher)
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
