"""The file an app runs as is: a ``.tflite`` with MediaPipe task metadata,
written by the export, checked in MediaPipe's own task, read by predict
without a tokenizer; what MediaPipe cannot run is refused in one line.

One tiny classifier is exported once per session (float32 token-id file,
its app file, the token-id probe): ~10 s.
"""

import csv
import json
import os
import shutil

import numpy as np
import pytest

import trimzoo
from trimzoo.export import export_model
from trimzoo.export.app_file import (
    MediaPipeRunner,
    read_app_file,
    refusal,
    vocabulary_fingerprint,
)
from trimzoo.models import (BertWordPieceTokenizer,
                            TrimzooTextClassifierPreprocessor)
from trimzoo.predict import load_predictor

from helpers import LETTERS, WORDS

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = list(dict.fromkeys(SPECIAL + [".", ",", "!", "東", "京"] + WORDS
                           + LETTERS + ["##" + c for c in LETTERS]))
LABELS = ["neg", "pos"]
#: Texts the reference WordPiece and MediaPipe's tokenizer treat alike...
PLAIN = ["a good movie .", "the plot was dull", "a very funny story !",
         "Not a Good Film", "東京 film", "good 😀 movie",
         " ".join(WORDS * 3)]  # ...also past the length (truncated).
#: ...and differently: accents, zero-width and control characters.
DIFFERENT = ["a naïve café movie", "the film\u200bwas good",
             "bad\x07plot", "ÉCOLE film"]


@pytest.fixture(scope="session")
def app_export(tmp_path_factory):
    """``(folder, output, report)``: a tiny 2-class classifier exported to
    float32 TFLite at 32 tokens, with its app file, checked on ``PLAIN +
    DIFFERENT``."""
    import keras

    keras.utils.set_random_seed(5)
    root = tmp_path_factory.mktemp("app")
    folder = str(root / "model")
    backbone = trimzoo.models.bert_tiny(
        vocabulary_size=len(VOCAB), num_layers=1, hidden_dim=16,
        num_heads=2, intermediate_dim=32, max_sequence_length=64)
    model = trimzoo.models.TrimzooClassifier(
        backbone, num_classes=2, label_names=LABELS,
        preprocessor=TrimzooTextClassifierPreprocessor(
            BertWordPieceTokenizer(VOCAB), sequence_length=32))
    model.save_to_preset(folder)
    data = root / "texts.csv"
    with open(data, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i, text in enumerate(PLAIN + DIFFERENT):
            writer.writerow([text, LABELS[i % 2]])
    out = str(root / "export")
    report = export_model(folder, out, formats="tflite", quantize="none",
                          seq_len=32, data=str(data), label_column="label")
    return folder, out, report


def _entry(report, fmt):
    return next(e for e in report["exports"] if e["format"] == fmt)


def test_app_file_is_written_checked_and_timed(app_export):
    _, out, report = app_export
    entry = _entry(report, "mediapipe_float32")
    assert entry["path"] == "text_classifier_float32.tflite"
    assert os.path.exists(os.path.join(out, entry["path"]))
    metrics = entry["parity"]["metrics"]
    assert entry["parity"]["passed"], entry["parity"]
    # The float32 file computes what Keras does on the texts MediaPipe
    # tokenises alike; every text gets the same label here.
    assert metrics["texts"] == len(PLAIN + DIFFERENT)
    assert metrics["texts_tokenized_alike"] == len(PLAIN)
    assert metrics["max_abs_diff"] < 1e-5
    assert metrics["label_agreement"] == 1.0
    assert "label_agreement_all_texts" in metrics
    latency = entry["latency_ms_per_text"]
    assert latency["mediapipe_task"] > 0 and latency["batch_size"] == 1
    assert latency["predict_token_ids_file"] > 0
    assert entry["size_bytes"] == os.path.getsize(
        os.path.join(out, entry["path"]))
    # The token-id file is still written beside it.
    assert _entry(report, "tflite_float32")["path"] == "model_float32.tflite"


def test_tokenisation_differences_are_counted_by_cause(app_export):
    _, _, report = app_export
    tokens = report["app_files"]["token_differences"]
    assert tokens["texts"] == len(PLAIN + DIFFERENT)
    assert tokens["differ"] == len(DIFFERENT)
    assert tokens["by_cause"] == {"accented letters": 2,
                                  "control or zero-width characters": 2}
    example = next(e for e in tokens["examples"]
                   if e["text"] == "a naïve café movie")
    assert "[UNK]" in example["mediapipe"] and "[UNK]" not in example["ours"]


def test_file_carries_vocabulary_labels_and_settings(app_export):
    _, out, report = app_export
    info = read_app_file(os.path.join(out, "text_classifier_float32.tflite"))
    assert info["kind"] == "classifier" and info["label_names"] == LABELS
    assert info["vocabulary"] == VOCAB and info["seq_len"] == 32
    fingerprint = vocabulary_fingerprint(VOCAB)
    settings = info["settings"]
    assert settings["vocabulary_sha256"] == fingerprint["sha256"]
    assert settings["lowercase"] and settings["sequence_length"] == 32
    # The report holds copies (not a path to the model folder).
    assert report["tokenizer"]["vocabulary_sha256"] == fingerprint["sha256"]
    assert report["tokenizer"]["label_names"] == LABELS
    # A token-id file has no metadata.
    assert read_app_file(os.path.join(out, "model_float32.tflite")) is None


def test_predict_reads_the_app_file_and_the_moved_export(app_export,
                                                         tmp_path):
    """MediaPipe's task on strings gives the Keras model's probabilities
    (the model folder's predictor, same strings); the shipped copy needs
    neither --tokenizer nor the model folder."""
    folder, out, _ = app_export
    moved = str(tmp_path / "shipped")
    shutil.copytree(out, moved)
    reference = load_predictor(folder)(PLAIN)
    app = load_predictor(os.path.join(moved,
                                      "text_classifier_float32.tflite"))
    try:
        assert app.label_names == tuple(LABELS)
        got = app(PLAIN)
    finally:
        app.close()
    np.testing.assert_allclose(_softmax(got), _softmax(reference),
                               atol=1e-5)
    # The token-id file works from the copy alone: tokenizer and labels
    # saved beside it, the model folder gone.
    hidden = folder + ".hidden"
    os.rename(folder, hidden)
    try:
        plain = load_predictor(os.path.join(moved, "model_float32.tflite"))
        assert plain.label_names == tuple(LABELS)
        np.testing.assert_allclose(plain(PLAIN[:3]), reference[:3],
                                   atol=1e-5)
    finally:
        os.rename(hidden, folder)


def test_predict_refuses_a_tokenizer_of_another_vocabulary(app_export,
                                                           tmp_path):
    _, out, _ = app_export
    other = tmp_path / "other"
    other.mkdir()
    (other / "vocab.txt").write_text("\n".join(VOCAB[:-1]) + "\n")
    for name, what in (("model_float32.tflite", "the export was made"),
                       ("text_classifier_float32.tflite", "carries")):
        with pytest.raises(ValueError, match=what) as err:
            load_predictor(os.path.join(out, name), tokenizer=str(other))
        assert "\n" not in str(err.value)
        assert f"{len(VOCAB) - 1} tokens" in str(err.value)


def test_refusals_are_one_line_reasons():
    from trimzoo.models.tokenizers.bpe import RobertaBPETokenizer

    wordpiece = BertWordPieceTokenizer(VOCAB)
    assert refusal("classifier", wordpiece, 2) is None
    assert refusal("backbone", wordpiece) is None
    bpe = RobertaBPETokenizer(
        {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, "a": 5,
         "b": 6, "ab": 7}, ["a b"])
    reasons = {
        "bpe": refusal("classifier", bpe, 2),
        "cased": refusal("classifier",
                         BertWordPieceTokenizer(VOCAB, lowercase=False), 2),
        "pairs": refusal("classifier", wordpiece, 2, pairs=True),
        "regression": refusal("classifier", wordpiece, 1),
    }
    assert "byte-level BPE" in reasons["bpe"]
    assert "cased" in reasons["cased"]
    assert "pairs" in reasons["pairs"]
    assert "regression" in reasons["regression"]
    assert all("\n" not in r for r in reasons.values())


def test_a_refused_model_still_gets_its_token_id_file(tmp_path):
    """A cased vocabulary: no app file, the reason in the report, the
    token-id file written and checked."""
    backbone = trimzoo.models.bert_tiny(
        vocabulary_size=len(VOCAB), num_layers=1, hidden_dim=16,
        num_heads=2, intermediate_dim=32, max_sequence_length=16)
    model = trimzoo.models.TrimzooClassifier(backbone, num_classes=2,
                                             label_names=LABELS)
    report = export_model(
        model, str(tmp_path), formats="tflite", quantize="none", seq_len=16,
        tokenizer=BertWordPieceTokenizer(VOCAB, lowercase=False),
        num_examples=8)
    assert "cased" in report["app_files"]["refused"]
    assert [e["format"] for e in report["exports"]] == ["tflite_float32"]
    assert sorted(os.listdir(tmp_path)) == [
        "export_report.json", "model_float32.tflite", "tokenizer"]
    with open(tmp_path / "export_report.json") as f:
        assert "cased" in json.load(f)["app_files"]["refused"]


def _softmax(logits):
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


@pytest.mark.slow
def test_backbone_gets_a_text_embedder_file(tmp_path):
    """A backbone's app file is a TextEmbedder: mean-pooled, L2-normalised
    embeddings equal to TrimzooTextEmbedder's; predict writes them."""
    from trimzoo.models import TrimzooTextEmbedder

    backbone = trimzoo.models.bert_tiny(
        vocabulary_size=len(VOCAB), num_layers=1, hidden_dim=16,
        num_heads=2, intermediate_dim=32, max_sequence_length=64)
    tokenizer = BertWordPieceTokenizer(VOCAB)
    report = export_model(backbone, str(tmp_path / "export"),
                          formats="tflite", quantize="none", seq_len=32,
                          tokenizer=tokenizer, num_examples=16)
    entry = _entry(report, "mediapipe_float32")
    assert entry["path"] == "text_embedder_float32.tflite"
    assert entry["parity"]["passed"]
    path = str(tmp_path / "export" / entry["path"])
    assert read_app_file(path)["kind"] == "embedder"
    embedder = TrimzooTextEmbedder(
        backbone, TrimzooTextClassifierPreprocessor(tokenizer,
                                                    sequence_length=32))
    predictor = load_predictor(path)
    try:
        assert predictor.kind == "embedder"
        got = predictor(PLAIN)
    finally:
        predictor.close()
    np.testing.assert_allclose(got, embedder.encode(PLAIN), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("tool,flag", [
    ("export.py", "--seq_len=4"), ("export.py", "--seq_len=nan"),
    ("predict.py", "--batch_size=0"), ("predict.py", "--sequence_length=-1"),
])
def test_tools_refuse_bad_numbers_in_one_line(tmp_path, tool, flag):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = ([f"--model={tmp_path}", f"--output={tmp_path}/out"]
            if tool == "export.py" else
            [f"--model={tmp_path}", f"--input={tmp_path}/in.txt",
             f"--output={tmp_path}/out.csv"])
    run = subprocess.run(
        [sys.executable, os.path.join(root, "tools", tool), *args, flag],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=root))
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: flag {flag.split('=')[0]}="), run.stderr
    assert not os.path.exists(tmp_path / "out")
