"""tools/predict.py and trimzoo.predict: every model kind (folder,
SavedModel, TFLite), output formats, bad rows, evaluation."""

import csv
import json
import os
import subprocess
import sys

import keras_hub
import numpy as np
import pytest

import trimzoo
from trimzoo.data import DataError
from trimzoo.models import (BertWordPieceTokenizer, TrimzooClassifier,
                            TrimzooTextClassifierPreprocessor)
from trimzoo.predict import load_predictor, predict_file, read_rows

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "bad",
         "film", "plot", "great", "dull", "the", "was", "!"]
TEXTS = ["a good film", "the plot was dull", "great great film !",
         "bad bad plot", "the film"]


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    """A tiny trained 3-class classifier folder with label names."""
    backbone = trimzoo.models.bert_tiny(
        vocabulary_size=len(VOCAB), num_layers=1, hidden_dim=16, num_heads=2,
        intermediate_dim=32, max_sequence_length=32)
    model = TrimzooClassifier(
        backbone, num_classes=3, label_names=["neg", "neutral", "pos"],
        preprocessor=TrimzooTextClassifierPreprocessor(
            BertWordPieceTokenizer(VOCAB), sequence_length=16))
    model.fit(x=TEXTS * 4, y=[2, 0, 2, 0, 1] * 4, batch_size=4, epochs=1,
              verbose=0)
    path = str(tmp_path_factory.mktemp("cls") / "model")
    model.save_to_preset(path)
    return path


def _write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)


def _csv_input(tmp_path):
    rows = "".join(f'"{t}",{label}\n' for t, label in zip(
        TEXTS, ["pos", "neg", "pos", "neg", "neutral"]))
    return _write(tmp_path / "in.csv", "text,label\n" + rows)


def test_folder_predictions_with_label_names_and_metrics(classifier_dir,
                                                         tmp_path):
    predictor = load_predictor(classifier_dir)
    assert predictor.kind == "classifier"
    assert predictor.label_names == ("neg", "neutral", "pos")
    out = str(tmp_path / "out.csv")
    result = predict_file(predictor, _csv_input(tmp_path), out,
                          label_column="label", evaluate=True,
                          progress=False)
    with open(out, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert result["rows"] == len(rows) == len(TEXTS)
    # Rows counted from 1 without the header, in input order, with the
    # text beside the prediction.
    assert [r["row"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert [r["text"] for r in rows] == TEXTS
    model = TrimzooClassifier.from_preset(classifier_dir)
    logits = model.predict(TEXTS, verbose=0)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    names = ["neg", "neutral", "pos"]
    assert [r["label"] for r in rows] == [names[i] for i in
                                          logits.argmax(-1)]
    got = np.array([[float(r[f"p_{n}"]) for n in names] for r in rows])
    np.testing.assert_allclose(got, probs, atol=1e-5)
    labels = np.array([2, 0, 2, 0, 1])
    accuracy = float(np.mean(labels == logits.argmax(-1)))
    assert result["metrics"]["accuracy"] == pytest.approx(accuracy)


def test_folder_predictor_equals_keras_predict_in_chunks(classifier_dir):
    """The folder predictor (eager preprocessor + predict_on_batch, in
    chunks of batch_size) gives keras-hub's ``predict`` logits."""
    model = keras_hub.models.TextClassifier.from_preset(classifier_dir)
    want = model.predict(TEXTS, batch_size=8, verbose=0)
    for batch_size in (2, 32):
        got = load_predictor(classifier_dir, batch_size=batch_size)(TEXTS)
        got = got["logits"] if isinstance(got, dict) else got
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_bfloat16_predictions_are_float32_and_close_to_float32s(
        classifier_dir, tmp_path):
    inp = _csv_input(tmp_path)
    probs, logits = {}, {}
    for precision in ("float32", "bfloat16"):
        predictor = load_predictor(classifier_dir, precision=precision)
        assert (predictor.precision, predictor.precision_reason) == (
            precision, "asked for")
        logits[precision] = predictor(TEXTS)
        assert logits[precision].dtype == np.float32
        out = str(tmp_path / f"{precision}.csv")
        predict_file(predictor, inp, out, progress=False)
        with open(out, encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        probs[precision] = np.array([[float(r[f"p_{n}"]) for n in (
            "neg", "neutral", "pos")] for r in rows])
        probs[precision + " labels"] = [r["label"] for r in rows]
    assert probs["float32 labels"] == probs["bfloat16 labels"]
    np.testing.assert_allclose(probs["bfloat16"], probs["float32"],
                               atol=0.02)
    # Computed in bfloat16 (8 significant bits): close to float32's
    # logits, but further than float32 rounding (~1e-7) would move them.
    difference = (np.abs(logits["float32"] - logits["bfloat16"]).max()
                  / np.abs(logits["float32"]).max())
    assert 1e-5 < difference < 0.05


def test_exports_refuse_a_precision_other_than_float32(classifier_dir,
                                                       tmp_path):
    tflite = _write(tmp_path / "model.tflite", "never read")
    saved = tmp_path / "saved_model"
    saved.mkdir()
    _write(saved / "saved_model.pb", "never read")
    for path in (tflite, str(saved)):
        for precision in ("bfloat16", "auto"):
            with pytest.raises(ValueError, match="model folders only"):
                load_predictor(path, precision=precision)
    with pytest.raises(ValueError, match="Valid values"):
        load_predictor(classifier_dir, precision="fp8")


@pytest.mark.slow
def test_saved_model_and_tflite_give_the_folder_labels(classifier_dir,
                                                       tmp_path):
    from trimzoo.export import export_model

    export = tmp_path / "export"
    export_model(classifier_dir, str(export), formats="saved_model,tflite",
                 num_examples=8)
    inp = _csv_input(tmp_path)
    reference = load_predictor(classifier_dir)(TEXTS)
    for path in ("saved_model", "saved_model_text", "model_float32.tflite"):
        predictor = load_predictor(str(export / path))
        assert predictor.label_names == ("neg", "neutral", "pos"), path
        out = str(tmp_path / f"{path}.jsonl")
        predict_file(predictor, inp, out, progress=False)
        with open(out, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f]
        assert [r["label"] for r in rows] == [
            ["neg", "neutral", "pos"][i] for i in reference.argmax(-1)], path
        # Export parity tolerance of float32 exports.
        np.testing.assert_allclose(predictor(TEXTS), reference, atol=1e-4)


def test_bad_rows_have_clear_errors_and_can_be_skipped(classifier_dir,
                                                       tmp_path):
    long_text = "good " * 20_000  # 100k characters: truncated, predicted.
    path = tmp_path / "in.jsonl"
    with open(path, "wb") as f:
        f.write(b'{"text": "a good film"}\n')
        f.write(b'{"text": ""}\n')
        f.write('{"text": "naïve caf\u00e9"}\n'.encode("latin-1"))
        f.write(b'{"other": "x"}\n')
        f.write(b'not json\n')
        f.write(json.dumps({"text": long_text}).encode() + b"\n")
    predictor = load_predictor(classifier_dir)
    out = str(tmp_path / "out.jsonl")
    with pytest.raises(DataError, match=r"line 2: empty text"):
        predict_file(predictor, str(path), out, progress=False)
    assert not os.path.exists(out)  # Nothing written: no stub.
    result = predict_file(predictor, str(path), out, skip_bad_rows=True,
                          progress=False)
    assert result["rows"] == 2
    assert [s.split(":")[0] for s in result["skipped"]] == [
        "line 2", "line 3", "line 4", "line 5"]
    assert "not UTF-8" in result["skipped"][1]
    assert "missing key(s) ['text']" in result["skipped"][2]
    assert "invalid JSON" in result["skipped"][3]
    with open(out, encoding="utf-8") as f:
        assert [json.loads(line)["row"] for line in f] == [1, 6]


def test_missing_column_and_folder_without_tokenizer(classifier_dir,
                                                     tmp_path):
    inp = _write(tmp_path / "in.tsv", "sentence\tlabel\ngood\tpos\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['text'\]"):
        list(read_rows(inp))
    bom = _write(tmp_path / "bom.csv", "\ufefftext,label\ngood,pos\n")
    assert [texts for _, texts, _, _ in read_rows(bom)] == [("good",)]
    backbone = trimzoo.models.bert_tiny(vocabulary_size=20, num_layers=1)
    folder = str(tmp_path / "notok")
    trimzoo.checkpoints.save_pretrained(backbone, None, folder)
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        load_predictor(folder)


def test_embedder_writes_npy(tmp_path):
    from trimzoo.utils.embedded import minilm_path

    inp = _write(tmp_path / "in.txt", "a great film\nthe stock market\n")
    out = str(tmp_path / "out.npy")
    predictor = load_predictor(minilm_path())
    assert predictor.kind == "embedder"
    predict_file(predictor, inp, out, batch_size=1, progress=False)
    vectors = np.load(out)
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0,
                               atol=1e-5)
    with pytest.raises(ValueError, match="embeddings to a .npy"):
        predict_file(predictor, inp, str(tmp_path / "out.csv"),
                     progress=False)


@pytest.mark.slow
def test_tool_prints_metrics_and_fails_clearly(classifier_dir, tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="")
    tool = os.path.join(ROOT, "tools", "predict.py")
    run = subprocess.run(
        [sys.executable, tool, f"--model={classifier_dir}",
         f"--input={_csv_input(tmp_path)}",
         f"--output={tmp_path / 'out.csv'}", "--evaluate",
         "--label_column=label"], env=env, capture_output=True, text=True,
        timeout=300)
    assert run.returncode == 0, run.stderr
    assert "metrics: {\"accuracy\"" in run.stdout
    assert "cuInit" not in run.stderr and "cuda" not in run.stderr.lower()
    bad = _write(tmp_path / "bad.csv", "text,id\ngood,1\n,2\n")
    run = subprocess.run(
        [sys.executable, tool, f"--model={classifier_dir}",
         f"--input={bad}", f"--output={tmp_path / 'o.csv'}"], env=env,
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert "bad.csv, line 3: empty text in column 'text'" in run.stderr


def test_output_is_atomic_and_never_replaced_by_accident(classifier_dir,
                                                         tmp_path):
    """An existing output was overwritten without asking, a failed run
    truncated it to its header, and --output equal to --input destroyed
    the input."""
    predictor = load_predictor(classifier_dir)
    inp = _csv_input(tmp_path)
    out = str(tmp_path / "out.csv")
    predict_file(predictor, inp, out, progress=False)
    with open(out, encoding="utf-8") as f:
        before = f.read()
    again = _write(tmp_path / "again.csv", "text\nthe film\n")
    with pytest.raises(FileExistsError, match="out.csv exists; pass "
                       "--overwrite"):
        predict_file(predictor, again, out, progress=False)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"text\ngood film\nnot \xff utf-8\n")
    with pytest.raises(DataError, match="bad.csv, line 3: not UTF-8"):
        predict_file(predictor, str(bad), out, overwrite=True,
                     progress=False)
    with open(out, encoding="utf-8") as f:
        assert f.read() == before  # The earlier output, whole.
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp")]
    with open(inp, encoding="utf-8") as f:
        source = f.read()
    for same in (inp, os.path.join(str(tmp_path), ".", "in.csv")):
        with pytest.raises(ValueError, match="is the input file"):
            predict_file(predictor, inp, same, overwrite=True,
                         progress=False)
    with open(inp, encoding="utf-8") as f:
        assert f.read() == source
    predict_file(predictor, again, out, overwrite=True, progress=False)
    with open(out, encoding="utf-8") as f:
        assert [r["text"] for r in csv.DictReader(f)] == ["the film"]


def test_bom_long_fields_and_id_column(classifier_dir, tmp_path):
    """A header with a byte-order mark was refused; a field over Python's
    csv limit (131,072 characters) failed."""
    long_text = "good " * 40_000  # 200k characters.
    path = tmp_path / "in.csv"
    path.write_bytes("\ufeffid,text\n7,a good film\n8,".encode("utf-8")
                     + long_text.encode() + b"\n")
    out = str(tmp_path / "out.jsonl")
    predictor = load_predictor(classifier_dir)
    result = predict_file(predictor, str(path), out, id_column="id",
                          progress=False)
    assert result["rows"] == 2
    with open(out, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    assert [(r["row"], r["id"]) for r in rows] == [(1, "7"), (2, "8")]
    assert "text" not in rows[0]
