"""Nothing silent: every bad input, file or run either works or fails with a
clear error naming the problem (docs/reliability.md lists the guarantees).

Each test reproduces a failure that once went unnoticed (a wrong result with
exit status 0, or a traceback naming no file).
"""

import json
import logging
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import trimzoo
from trimzoo.checkpoints import save_pretrained
from trimzoo.data import DataError, load_task_data
from trimzoo.utils.embedded import minilm_path
from trimzoo.data.files import read_examples
from trimzoo.models.tokenizers import load_tokenizer
from trimzoo.models import TrimzooBackbone, TrimzooClassifier

from conftest import TINY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HF_TINY_BERT = os.path.join(ROOT, "tests", "fixtures", "hf_tiny_bert")


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _tool(name, *args, timeout=300):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", name), *args],
        capture_output=True, text=True, env=_env(), timeout=timeout)


def _inputs(ids, segments=None, mask=None):
    ids = np.asarray(ids, "int32")
    return {"token_ids": ids,
            "segment_ids": (np.zeros_like(ids) if segments is None
                            else np.asarray(segments, "int32")),
            "padding_mask": (np.ones_like(ids) if mask is None
                             else np.asarray(mask, "int32"))}


# --- Labels of task=files. ----------------------------------------------------

def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_integer_labels_are_names_in_every_split(tmp_path):
    """Train labels {1, 2}, validation labels {0, 1}: "0" was read as index
    0 and "1" as the name "1", so every validation example became class 0
    (accuracy 0.0, exit 0). Now "0" is an unknown label."""
    files = {
        "train": _write(tmp_path / "train.csv",
                        "text,label\na,1\nb,2\nc,1\n"),
        "validation": _write(tmp_path / "validation.csv",
                             "text,label\nd,0\ne,1\n"),
    }
    args = dict(files=files, text_columns="text")
    train, spec = load_task_data("files", "train", **args)
    assert spec.label_names == ("1", "2")
    assert [int(e[-1]) for e in train] == [0, 1, 0]
    with pytest.raises(DataError, match=r"validation\.csv, line 2: unknown "
                       r"label '0'; known labels: \['1', '2'\]\. .*"
                       "label_names") as err:
        load_task_data("files", "validation", **args)
    assert "indices" not in str(err.value)  # No index reading offered.
    # Listing every class explicitly maps both splits consistently.
    validation, spec = load_task_data("files", "validation",
                                      label_names=["0", "1", "2"], **args)
    assert [int(e[-1]) for e in validation] == [0, 1]
    # Names that are not integers still take GLUE-style 0/1 indices.
    path = _write(tmp_path / "glue.tsv", "sentence\tlabel\nx\t0\ny\t1\n")
    examples, names = read_examples(path, "sentence", "label",
                                    label_names=["negative", "positive"])
    assert [e[-1] for e in examples] == [0, 1]


def test_label_spellings_of_one_value_are_one_class(tmp_path):
    """"1", "1.0" and "1 " were three classes."""
    path = _write(tmp_path / "train.csv",
                  "text,label\na,1\nb,1.0\nc,1 \nd,0\ne, 0.0\n")
    examples, names = read_examples(path, "text", "label")
    assert names == ("0", "1")
    assert [e[-1] for e in examples] == [1, 1, 1, 0, 0]
    jsonl = _write(tmp_path / "train.jsonl",
                   '{"t": "a", "y": 1}\n{"t": "b", "y": 1.0}\n'
                   '{"t": "c", "y": "1"}\n{"t": "d", "y": " 0 "}\n')
    examples, names = read_examples(jsonl, "t", "y")
    assert names == ("0", "1")
    assert [e[-1] for e in examples] == [1, 1, 1, 0]
    jsonl = _write(tmp_path / "names.jsonl",
                   '{"t": "a", "y": "neg"}\n{"t": "d", "y": " pos "}\n')
    assert read_examples(jsonl, "t", "y")[1] == ("neg", "pos")
    with pytest.raises(ValueError, match="same label twice"):
        read_examples(path, "text", "label", label_names=["1", "1.0"])


def test_csv_row_with_more_fields_than_the_header(tmp_path):
    """`hello, world,1` silently dropped a field and made " world" a
    label."""
    path = _write(tmp_path / "train.csv",
                  "text,label\ngood,1\nhello, world,1\nbad,0\n")
    with pytest.raises(DataError, match=r"train\.csv, line 3: 3 field\(s\), "
                       r"expected 2 .*quote a field that holds a comma"):
        read_examples(path, "text", "label")
    quoted = _write(tmp_path / "quoted.csv",
                    'text,label\ngood,1\n"hello, world",1\nbad,0\n')
    examples, _ = read_examples(quoted, "text", "label")
    assert examples[1] == ("hello, world", 1)


# Each label a probe saw become a class (exit 0), and the line it is on.
BAD_LABELS = {
    "empty": ("csv", "text,label\na,pos\nb,\nc,neg\n", 3,
              "the label is empty"),
    "null": ("jsonl", '{"text": "a", "label": "pos"}\n{"text": "b", '
             '"label": null}\n{"text": "c", "label": "neg"}\n', 2,
             "the label is null"),
    "boolean": ("jsonl", '{"text": "a", "label": true}\n{"text": "b", '
                '"label": false}\n', 1, "label true is a JSON boolean"),
    "non_integer": ("jsonl", '{"text": "a", "label": 1}\n{"text": "b", '
                    '"label": 1.5}\n{"text": "c", "label": 0}\n', 2,
                    "label 1.5 is a number but not an integer"),
    "integer_among_names": ("csv", "text,label\na,pos\nb,neg\nc,1\n", 4,
                            "label '1' is an integer, but line 2 has the "
                            "name 'pos'"),
    "header_repeated": ("csv", "text,label\na,pos\nb,neg\ntext,label\n"
                        "c,pos\n", 4, "the header row again"),
    "csv_boolean_among_names": ("csv", "text,label\na,pos\nb,neg\nc,true\n",
                                4, "(label 'true' is a boolean, but line 2 "
                                "has the name 'pos'|unknown label 'true')"),
}
# labels_as_text=True: the names it reads (None: still refused).
AS_TEXT = {"empty": None, "null": None, "header_repeated": None,
           "boolean": ("false", "true"), "non_integer": ("0", "1", "1.5"),
           "integer_among_names": ("1", "neg", "pos"),
           "csv_boolean_among_names": ("neg", "pos", "true")}


@pytest.mark.parametrize("case", sorted(BAD_LABELS))
def test_bad_labels_are_refused_with_file_and_line(tmp_path, case):
    """Each became a class ("", "None", "true", "1.5", an extra "1",
    "label") and trained, exit 0. Now refused naming the file and line, in
    a train, validation or test file and in the --data file of export and
    prune, or read as names with labels_as_text=True."""
    from trimzoo.data.model_data import read_text_file

    fmt, text, line, message = BAD_LABELS[case]
    bad = _write(tmp_path / f"bad.{fmt}", text)
    good = _write(tmp_path / "good.csv", "text,label\nx,pos\ny,neg\n")
    where = re.escape(f"bad.{fmt}, line {line}: ") + message  # a regex
    for split in ("train", "validation", "test"):
        files = {"train": good, "validation": good, "test": good,
                 split: bad}
        with pytest.raises(DataError, match=where):
            load_task_data("files", split, files=files, text_columns="text")
    with pytest.raises(DataError, match=where):  # export/prune --data
        read_text_file(bad, "text", "label", ["neg", "pos"])
    names = AS_TEXT[case]
    if names is None:
        with pytest.raises(DataError, match=where):
            load_task_data("files", "train", files={"train": bad},
                           text_columns="text", labels_as_text=True)
    else:
        _, spec = load_task_data("files", "train", files={"train": bad},
                                 text_columns="text", labels_as_text=True)
        assert spec.label_names == names


def test_bad_validation_labels_stop_fine_tuning_before_it_trains(tmp_path):
    """A null label in the validation file: refused before a model is
    built; --config.data.labels_as_text=True is the way to read text."""
    from helpers import small_config
    from trimzoo.training.finetune import finetune

    train = _write(tmp_path / "train.csv", "text,label\na,pos\nb,neg\n")
    validation = _write(tmp_path / "validation.jsonl",
                        '{"text": "a", "label": "pos"}\n'
                        '{"text": "b", "label": null}\n')
    config = small_config(task="files", train_files=train,
                          validation_files=validation, text_column="text")
    workdir = tmp_path / "run"
    with pytest.raises(DataError, match=r"validation\.jsonl, line 2: the "
                       "label is null"):
        finetune(config, str(workdir))
    assert sorted(os.listdir(workdir)) == ["config.json"]


# --- Paths in a run's record. ---------------------------------------------------

def test_run_records_data_paths_absolute(tmp_path, monkeypatch):
    """config.json kept `train.csv` as given, so a tool reading the run
    from another folder read that folder's train.csv."""
    from helpers import small_config
    from trimzoo.training.finetune import finetune

    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "train.csv", "text,label\na,pos\nb,neg\n")
    _write(tmp_path / "validation.csv", "text,label\na,pos\nb,\n")
    config = small_config(task="files", train_files="train.csv",
                          validation_files="./validation.csv",
                          text_column="text")
    with pytest.raises(DataError):  # Stops before training: cheap.
        finetune(config, "run")
    with open(tmp_path / "run" / "config.json") as f:
        data = json.load(f)["data"]
    assert data["train_files"] == str(tmp_path / "train.csv")
    assert data["validation_files"] == str(tmp_path / "validation.csv")
    assert data["test_files"] == ""
    # A trained older run that recorded them relative resumes from the
    # folder it started in: the same files, now written absolute.
    from trimzoo.training.checkpointing import record_config
    from trimzoo.training.finetune import _same_path

    old = {"data": {"train_files": "train.csv"}}
    record_config(str(tmp_path / "old"), old)
    record_config(str(tmp_path / "old"), {"data": {"train_files": str(
        tmp_path / "train.csv")}}, equivalent=_same_path)
    with pytest.raises(ValueError, match="data.train_files"):
        record_config(str(tmp_path / "old"), {"data": {"train_files": str(
            tmp_path / "other.csv")}}, equivalent=_same_path)


def test_old_relative_paths_resolve_where_the_run_is(tmp_path, monkeypatch):
    """A run's relative data paths were resolved against the current
    folder: run from another folder holding another task's train.csv,
    compress scored that task (teacher 0.33, exit 0). Now they resolve
    against the run folder; one that is only found above it is refused
    naming the file (it was read silently), and a missing file is named
    with the run."""
    from helpers import TOPIC_ROWS, make_classifier_run
    from trimzoo.data.model_data import texts_for_model

    run = make_classifier_run(tmp_path / "project")
    config_path = os.path.join(run, "config.json")
    with open(config_path) as f:
        config = json.load(f)
    # As an older run recorded them: the run started in project/.
    config["data"].update(train_files="train.csv",
                          validation_files="validation.csv")
    with open(config_path, "w") as f:
        json.dump(config, f)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for split in ("train", "validation"):
        _write(elsewhere / f"{split}.csv", "body,topic\nother,sport\n")
    (elsewhere / "run").mkdir()
    _write(elsewhere / "run" / "train.csv", "body,topic\nother,sport\n")
    monkeypatch.chdir(elsewhere)
    texts = texts_for_model(os.path.join(run, "best"))
    assert texts.texts == [text for text, _ in TOPIC_ROWS]
    assert texts.labels == [0, 0, 2, 2, 1, 1]
    # Only above the run: refused, naming the file (another task's file
    # of that name was scored, exit 0).
    config["data"]["train_files"] = "run/train.csv"
    with open(config_path, "w") as f:
        json.dump(config, f)
    with pytest.raises(ValueError, match=re.escape(
            "data.train_files='run/train.csv' is a relative path that is not "
            f"in the run folder {run}; {run}/train.csv has that name")):
        texts_for_model(os.path.join(run, "best"))
    config["data"]["train_files"] = "train.csv"
    with open(config_path, "w") as f:
        json.dump(config, f)
    os.remove(os.path.join(run, "validation.csv"))
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"{run}/validation.csv (data.validation_files of the run "
            f"recorded in {config_path}) does not exist")):
        texts_for_model(os.path.join(run, "best"))


# --- Backbone inputs, eager and in graphs. ------------------------------------

@pytest.fixture(scope="module")
def backbone():
    return trimzoo.models.bert_tiny(num_layers=1, **TINY)


BAD_INPUTS = {
    # name: (inputs, message of the eager and of the graph check)
    "negative token id": (_inputs([[2, -5, 7]]),
                          "token_ids'? has values"),
    "token id >= vocabulary": (_inputs([[2, 97, 7]]),
                               "token_ids'? has values"),
    "negative segment id": (_inputs([[2, 5, 7]], segments=[[0, -1, 0]]),
                            "segment_ids'? has values"),
    "segment id >= num_segments": (_inputs([[2, 5, 7]],
                                           segments=[[0, 2, 0]]),
                                   "segment_ids'? has values"),
    "padding mask 2": (_inputs([[2, 5, 7]], mask=[[1, 2, 1]]),
                       "padding_mask'? must hold 0"),
    "longer than the positions": (_inputs(np.full((1, 33), 5)),
                                  "max_sequence_length"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_fail_eagerly_and_in_graphs(backbone, case):
    """In predict() and any tf.function a negative id gathered a wrapped row
    (-5 acted as vocabulary_size - 5, segment -1 as segment 1) and ids past
    the tables failed inside GatherV2 with no input named."""
    inputs, message = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=message):
        backbone(inputs)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        backbone.predict(inputs, verbose=0)
    # Dynamic shapes: nothing is known when the graph is traced.
    spec = tf.TensorSpec([None, None], tf.int32)
    fn = tf.function(lambda x: backbone(x)["pooled_output"],
                     input_signature=[{k: spec for k in inputs}])
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        fn({k: tf.constant(v) for k, v in inputs.items()})


def test_graph_checks_leave_valid_outputs_unchanged(backbone):
    inputs = _inputs([[2, 5, 96, 3], [2, 0, 0, 0]], segments=[[0, 0, 1, 1],
                     [0, 0, 0, 0]], mask=[[1, 1, 1, 1], [1, 0, 0, 0]])
    eager = backbone(inputs)["sequence_output"].numpy()
    graph = backbone.predict(inputs, verbose=0)["sequence_output"]
    np.testing.assert_allclose(graph, eager, atol=1e-6)
    boolean = dict(inputs, padding_mask=inputs["padding_mask"].astype(bool))
    np.testing.assert_allclose(
        backbone.predict(boolean, verbose=0)["sequence_output"], eager,
        atol=1e-6)


def test_empty_batch_and_empty_sequence(backbone):
    """An empty batch through predict() failed inside Keras'
    loop (UnboundLocalError); an empty sequence in a strided slice."""
    empty = {k: np.zeros((0, 4), "int32") for k in _inputs([[1]])}
    with pytest.raises(ValueError, match="predict\\(\\) got 0 examples"):
        backbone.predict(empty, verbose=0)
    classifier = TrimzooClassifier(backbone, num_classes=2)
    with pytest.raises(ValueError, match="predict\\(\\) got 0 examples"):
        classifier.predict(empty, verbose=0)
    assert backbone(empty)["pooled_output"].shape == (0, 16)
    no_tokens = {k: np.zeros((2, 0), "int32") for k in _inputs([[1]])}
    with pytest.raises(ValueError, match="Empty sequences"):
        backbone(no_tokens)
    with pytest.raises(ValueError, match="Empty sequences"):
        backbone.predict(no_tokens, verbose=0)
    spec = tf.TensorSpec([None, None], tf.int32)
    fn = tf.function(lambda x: backbone(x)["pooled_output"],
                     input_signature=[{k: spec for k in no_tokens}])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"Sequence length must be in \[1, 32\]"):
        fn({k: tf.constant(v) for k, v in no_tokens.items()})


@pytest.mark.slow
def test_exports_keep_checks_out_of_tflite(backbone, tmp_path):
    """The SavedModel keeps the checks (a clear error when serving); the
    TFLite converter drops them: builtin ops only, same outputs."""
    from trimzoo.export import TFLiteRunner, convert_file, export_saved_model
    from trimzoo.export.saved_model import SavedModelRunner
    from trimzoo.export.tflite import check_builtin_only, tflite_ops

    classifier = TrimzooClassifier(backbone, num_classes=2)
    path = export_saved_model(classifier, str(tmp_path / "sm"))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="token_ids'? has values"):
        SavedModelRunner(path)(_inputs([[2, -5, 7]]))
    flatbuffer = convert_file(path, "none")
    check_builtin_only(flatbuffer)
    assert not [op for op in tflite_ops(flatbuffer) if "ASSERT" in op]
    good = _inputs([[2, 5, 9, 3], [2, 7, 8, 3]])
    expected = classifier(good, training=False).numpy()
    np.testing.assert_allclose(TFLiteRunner(flatbuffer)(good)["logits"],
                               expected, atol=1e-4)


# --- Architecture arguments. --------------------------------------------------

def test_misspelt_architecture_arguments_are_refused():
    """bert_tiny(num_layer=1) built the default two-layer model."""
    with pytest.raises(TypeError, match="bert_tiny got an unexpected "
                       "argument 'num_layer'. Did you mean 'num_layers'"):
        trimzoo.models.bert_tiny(num_layer=1)
    with pytest.raises(TypeError, match="Did you mean 'hidden_dim'"):
        trimzoo.models.create("bert_tiny", hiden_dim=64)
    with pytest.raises(TypeError, match="'ffn_layer'. Did you mean "
                       "'ffn_layers'"):
        TrimzooBackbone(vocabulary_size=10, num_layers=1, num_heads=1,
                        hidden_dim=8, intermediate_dim=8, ffn_layer="none")
    with pytest.raises(TypeError, match="Valid arguments: .*'vocabulary_size'"):
        trimzoo.models.preset_config("bort", colour="red")
    # Keras' own arguments still pass.
    model = trimzoo.models.create("bert_tiny", trainable=False, **TINY)
    assert not model.trainable
    assert TrimzooBackbone.from_config(model.get_config()).name == model.name


def test_option_values_that_build_something_else_are_refused():
    args = dict(vocabulary_size=10, num_heads=1, hidden_dim=8,
                intermediate_dim=8)
    with pytest.raises(ValueError, match="'every_5' keeps no FFN in 4 "
                       "layers; pass ffn_layers='none'"):
        TrimzooBackbone(num_layers=4, ffn_layers="every_5", **args)
    assert not any(o["use_ffn"] for o in TrimzooBackbone(
        num_layers=4, ffn_layers="none", **args).layer_options)
    assert [o["use_ffn"] for o in TrimzooBackbone(
        num_layers=4, ffn_layers="every_4", **args).layer_options] == [
            False, False, False, True]
    for epsilon in (0.0, -1e-5):
        with pytest.raises(ValueError, match="layer_norm_epsilon must be > "
                           "0"):
            TrimzooBackbone(num_layers=1, layer_norm_epsilon=epsilon, **args)


# --- Loading checkpoints. -----------------------------------------------------

@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(minilm_path())


def test_tokenizer_larger_than_the_embedding_table(tmp_path, tokenizer):
    """Loaded without a check; fine-tuning then died in GatherV2."""
    path = str(tmp_path / "ckpt")
    save_pretrained(trimzoo.models.bert_tiny(**TINY), tokenizer, path)
    with pytest.raises(ValueError, match="the tokenizer has 30522 tokens but "
                       "the model's embedding table has 97 rows"):
        trimzoo.from_pretrained(path)


def test_truncated_weights_name_the_folder(tmp_path):
    """h5py's 'truncated file' OSError named no file."""
    path = str(tmp_path / "ckpt")
    save_pretrained(trimzoo.models.bert_tiny(**TINY), None, path)
    weights = os.path.join(path, "model.weights.h5")
    with open(weights, "r+b") as f:
        f.truncate(os.path.getsize(weights) // 2)
    with pytest.raises(ValueError, match="Cannot read the weights in "
                       f"'{path}' .*truncated"):
        trimzoo.checkpoints.load_backbone(path)


def test_non_finite_weights_warn_naming_the_tensor(tmp_path, caplog):
    backbone = trimzoo.models.bert_tiny(**TINY)
    kernel = backbone.transformer_layers[1].weights[0]
    values = kernel.numpy()
    values[0, 0] = np.nan
    kernel.assign(values)
    path = str(tmp_path / "ckpt")
    save_pretrained(backbone, None, path)
    with caplog.at_level(logging.WARNING, "trimzoo"):
        trimzoo.checkpoints.load_backbone(path)
    assert f"{path}: non-finite values (NaN or inf) in 1 tensor(s): " \
        f"{kernel.path}" in caplog.text
    caplog.clear()
    save_pretrained(trimzoo.models.bert_tiny(**TINY), None, path,
                    overwrite=True)
    with caplog.at_level(logging.WARNING, "trimzoo"):
        trimzoo.checkpoints.load_backbone(path)
    assert "non-finite" not in caplog.text


def test_checkpoint_output_that_is_a_file(tmp_path):
    """--output=<existing file> --overwrite: a traceback
    (NotADirectoryError) and a hidden '.tmp.old' copy left behind."""
    target = tmp_path / "model.bin"
    target.write_text("not a checkpoint")
    with pytest.raises(FileExistsError, match="is a file, not a checkpoint "
                       "folder"):
        save_pretrained(trimzoo.models.bert_tiny(**TINY), None, str(target),
                        overwrite=True)
    result = _tool("drop_layers.py", f"--checkpoint={HF_TINY_BERT}",
                   "--drop=top:1", f"--output={target}", "--overwrite")
    assert result.returncode != 0
    assert "is a file, not a checkpoint folder" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["model.bin"]
    assert target.read_text() == "not a checkpoint"


# --- Exports. -----------------------------------------------------------------

def test_export_into_a_non_empty_folder(tmp_path, backbone):
    """saved_model/ was replaced silently and files of an earlier export
    stayed beside the new ones."""
    from trimzoo.export import export_model

    out = tmp_path / "export"
    out.mkdir()
    (out / "model_int8.tflite").write_bytes(b"stale")
    (out / "saved_model").mkdir()
    (out / "saved_model" / "stale.pb").write_bytes(b"stale")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not empty .*overwrite"):
        export_model(backbone, str(out), formats="saved_model",
                     num_examples=4)
    assert (out / "model_int8.tflite").exists()
    tokenizer = trimzoo.models.tokenizers.BertWordPieceTokenizer(
        vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [
            f"w{i}" for i in range(92)])
    export_model(backbone, str(out), formats="saved_model", num_examples=4,
                 tokenizer=tokenizer, overwrite=True)
    assert sorted(os.listdir(out)) == ["export_report.json", "notes.txt",
                                       "saved_model", "tokenizer"]
    assert not (out / "saved_model" / "stale.pb").exists()


def _vocabulary_copies(tmp_path, tokenizer):
    """A HF folder and a trimzoo preset folder of the same vocabulary, and
    the vocabulary file of each."""
    hf_folder = tmp_path / "hf"
    shutil.copytree(minilm_path(), hf_folder)
    preset = tmp_path / "preset"
    save_pretrained(trimzoo.models.bert_tiny(), tokenizer, str(preset))
    return {hf_folder: hf_folder / "vocab.txt",
            preset: preset / "assets" / "tokenizer" / "vocabulary.txt"}


def test_bad_vocabulary_files_name_the_file(tmp_path, tokenizer):
    """A non-UTF-8 or duplicate-token vocabulary gave UnicodeDecodeError or
    'Tokens in the vocabulary must be unique.' with no file named."""
    for folder, vocab in _vocabulary_copies(tmp_path, tokenizer).items():
        original = vocab.read_bytes()
        vocab.write_bytes(original + b"zzq\xff\xfe\n")
        where = re.escape(str(folder))
        with pytest.raises(ValueError, match=rf"{where}.*(UTF-8|utf-8)"):
            load_tokenizer(str(folder))
        vocab.write_bytes(original + b"the\n")
        with pytest.raises(ValueError, match=rf"{where}.*unique"):
            load_tokenizer(str(folder))
    with pytest.raises(ValueError, match=r"vocab\.txt, line 30523: token "
                       "'the' already on line 1997"):
        load_tokenizer(str(tmp_path / "hf"))


# --- Config values and tool errors. -------------------------------------------

@pytest.mark.parametrize("field, value, message", [
    ("distill.temperature", -2.0, "distill.temperature must be a number > 0"),
    ("distill.temperature", 0.0, "distill.temperature must be a number > 0"),
    ("distill.alpha", 1.5, r"distill.alpha must be a number in \[0, 1\]"),
    ("distill.hidden_weight", -1.0, "distill.hidden_weight must be a number"
     " >= 0"),
    ("train.learning_rate", 0.0, "train.learning_rate must be a number > 0"),
    ("train.epochs", 0, "train.epochs must be an integer >= 1"),
    ("train.batch_size", 0, "train.batch_size must be an integer >= 1"),
    ("eval.batch_size", -1, "eval.batch_size must be an integer >= 1"),
])
def test_fine_tuning_config_values_fail_before_any_work(tmp_path, field,
                                                        value, message):
    """temperature=-2 trained and exited 0, temperature=0 stopped on NaN
    with advice about the learning rate, alpha=1.5 failed a minute in."""
    from configs.finetune import get_config
    from trimzoo.training.finetune import finetune

    config = get_config("model=bert_tiny,runlocal=True")
    config.distill.teacher = str(tmp_path / "no_teacher_here")
    section, name = field.split(".")
    config[section][name] = value
    with pytest.raises(ValueError, match=message):
        finetune(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()  # Nothing read, nothing written.


@pytest.mark.parametrize("field, value", [
    ("distill.temperature", 0.0), ("distill.alpha", -0.1),
    ("train.learning_rate", -1e-4), ("data.mask_rate", 1.5)])
def test_pretraining_config_values_fail_before_any_work(field, value):
    from configs.pretrain import get_config
    from trimzoo.training import pretrain

    config = get_config("model=bert_tiny,runlocal=True")
    config.data.vocab = "/no/such/vocabulary"  # Never read.
    section, name = field.split(".")
    config[section][name] = value
    with pytest.raises(ValueError, match=re.escape(field) + " must be"):
        pretrain.resolve_config(config, tf.distribute.get_strategy())


def test_tool_wrapper_turns_user_errors_into_one_line(monkeypatch, capsys):
    """The wrapper every tool runs under (in process; the real tools are
    run as processes in the slow test below): a user error is one line on
    stderr and exit status 1, a bug keeps its traceback, and --verbose
    (here TRIMZOO_DEBUG=1) shows the user error's traceback too."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import _common
    finally:
        sys.path.remove(os.path.join(ROOT, "tools"))

    def bad_value(argv):
        raise ValueError("distill.alpha must be a number in [0, 1], got 1.5.")

    def bug(argv):
        raise KeyError("oops")

    monkeypatch.delenv("TRIMZOO_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        _common.report_errors(bad_value)(["tool"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "error: distill.alpha must be a number in [0, 1], got 1.5. "
        "(--verbose for the traceback)"]
    with pytest.raises(KeyError):
        _common.report_errors(bug)(["tool"])
    monkeypatch.setenv("TRIMZOO_DEBUG", "1")
    with pytest.raises(ValueError, match="alpha"):
        _common.report_errors(bad_value)(["tool"])


@pytest.mark.slow
def test_tools_print_one_error_line_and_exit_1(tmp_path):
    """Every ValueError of prune.py, finetune.py, pretrain.py and search.py
    reached the user as a 30-line traceback."""
    out = tmp_path / "export"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = _tool("export.py", f"--model={HF_TINY_BERT}", f"--output={out}",
                   "--formats=saved_model")
    assert result.returncode == 1
    assert "is not empty" in result.stderr and "Traceback" not in (
        result.stderr)
    result = _tool("finetune.py",
                   "--config=configs/finetune.py:model=bert_tiny,"
                   "runlocal=True", f"--workdir={tmp_path / 'run'}",
                   "--config.distill.alpha=1.5")
    assert result.returncode == 1, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: distill.alpha must be a number in "
                                "[0, 1], got 1.5."), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    missing = str(tmp_path / "missing")
    result = _tool("prune.py", f"--checkpoint={missing}", "--heads=0.5",
                   f"--output={tmp_path / 'out'}", "--verbose")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and missing in result.stderr
    result = _tool("prune.py", f"--checkpoint={missing}", "--heads=0.5",
                   f"--output={tmp_path / 'out'}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert missing in result.stderr and "Traceback" not in result.stderr


def test_truncated_classifier_and_teacher_weights_name_the_folder(tmp_path):
    """A truncated teacher model.weights.h5 gave h5py's 'truncated file'
    OSError, naming no folder."""
    from trimzoo.checkpoints.folders import load_classifier_folder as load_classifier

    backbone = trimzoo.models.bert_tiny(**TINY)
    folder = str(tmp_path / "best")
    TrimzooClassifier(backbone, num_classes=2).save_to_preset(folder)
    weights = os.path.join(folder, "model.weights.h5")
    with open(weights, "r+b") as f:
        f.truncate(os.path.getsize(weights) // 2)
    message = (f"Cannot read the weights in '{folder}' "
               f"\\({re.escape(weights)} is truncated or corrupt")
    for load in (load_classifier, TrimzooClassifier.from_preset):
        with pytest.raises(ValueError, match=message):
            load(folder)


def _corrupt(path, at, size=256):
    """Overwrites ``size`` bytes of ``path`` from ``at`` with noise."""
    data = bytearray(open(path, "rb").read())
    data[at:at + size] = np.random.default_rng(at).integers(
        0, 256, size, dtype=np.uint8).tobytes()
    with open(path, "wb") as f:
        f.write(bytes(data))


def test_corrupt_weights_name_the_file(tmp_path):
    """Noise inside a teacher's model.weights.h5 (not a truncation) gave
    h5py's bare RuntimeError ("bad heap free list", "address of object past
    end of allocation") or KeyError ("bad object header version
    number")."""
    from trimzoo.checkpoints.folders import load_classifier_folder

    folder = str(tmp_path / "best")
    TrimzooClassifier(trimzoo.models.bert_tiny(**TINY),
                      num_classes=2).save_to_preset(folder)
    weights = os.path.join(folder, "model.weights.h5")
    clean = open(weights, "rb").read()
    for at in (800, 2000, len(clean) // 2):  # KeyError, RuntimeError x2
        with open(weights, "wb") as f:
            f.write(clean)
        _corrupt(weights, at)
        with pytest.raises(ValueError, match=re.escape(
                f"Cannot read the weights in '{folder}' ({weights} is "
                "truncated or corrupt: Unable to synchronously")):
            load_classifier_folder(folder)


def _edit_architecture(path, **changes):
    """Changes the backbone config in a folder's config.json / task.json."""
    with open(path) as f:
        config = json.load(f)
    inner = config["config"]
    inner = inner["backbone"]["config"] if "backbone" in inner else inner
    inner.update(changes)
    with open(path, "w") as f:
        json.dump(config, f)


def test_config_and_weights_of_different_models(tmp_path):
    """A folder whose config says 1 layer for 2 layers of weights loaded
    the first layer, exit 0 (and a config with more layers or other widths
    gave Keras' many-line message). Now one line naming both, for backbone
    folders and classifier folders alike."""
    from trimzoo.checkpoints.folders import load_classifier_folder

    backbone_dir = str(tmp_path / "backbone")
    save_pretrained(trimzoo.models.bert_tiny(**TINY), None, backbone_dir)
    classifier_dir = str(tmp_path / "best")
    TrimzooClassifier(trimzoo.models.bert_tiny(**TINY),
                      num_classes=2).save_to_preset(classifier_dir)
    holds = "2 encoder layers, 31 tensors"
    cases = [
        # Each loaded silently:
        ({"num_layers": 1}, "1 encoder layers, 19 tensors", "backbone"),
        ({"ffn_layers": "none"}, "2 encoder layers, 19 tensors", "backbone"),
        ({"num_layers": 1}, "1 encoder layers, 19 tensors", "best"),
        # Keras' many-line message:
        ({"num_layers": 3}, "3 encoder layers, 43 tensors", "backbone"),
        ({"intermediate_dim": 32}, "2 encoder layers, 31 tensors",
         "backbone"),
        ({"num_layers": 3}, "3 encoder layers, 43 tensors", "best")]
    for changes, builds, name in cases:
        folder = str(tmp_path / name)
        config = os.path.join(folder, "config.json" if name == "backbone"
                              else "task.json")
        # A classifier's config.json says what its task.json says.
        edited = {config, os.path.join(folder, "config.json")}
        originals = {path: open(path).read() for path in edited}
        for path in edited:
            _edit_architecture(path, **changes)
        loads = ((trimzoo.checkpoints.load_backbone,) if name == "backbone"
                 else (load_classifier_folder, TrimzooClassifier.from_preset
                       ) if changes["num_layers"] == 1 else
                 (load_classifier_folder,))
        for load in loads:
            with pytest.raises(ValueError, match=re.escape(
                    f"{config} builds {builds}") + r" \([\d,]+ values\) "
                    "but " + re.escape(f"{folder}/model.weights.h5 holds "
                                       f"{holds}")) as err:
                load(folder)
            assert "\n" not in str(err.value)
        for path, text in originals.items():
            with open(path, "w") as f:
                f.write(text)
    trimzoo.checkpoints.load_backbone(backbone_dir)  # As written: loads.
    # A classifier's config.json edited alone: keras-hub builds from
    # task.json and loaded it, while tools read config.json's 1 layer.
    config = os.path.join(classifier_dir, "config.json")
    _edit_architecture(config, num_layers=1)
    with pytest.raises(ValueError, match=re.escape(
            f"{config} says num_layers=1 but {classifier_dir}/task.json, "
            "whose backbone the weights hold, says num_layers=2")):
        load_classifier_folder(classifier_dir)


def _set_fields(path, inner=False, **fields):
    with open(path) as f:
        config = json.load(f)
    (config["config"]["backbone"] if inner else config).update(fields)
    with open(path, "w") as f:
        json.dump(config, f)


def test_folder_files_naming_a_foreign_class_are_refused_everywhere(
        tmp_path):
    """A task.json / config.json naming `os.system`: refused (nothing
    imported), but predict said "argument of type 'NoneType' is not
    iterable" and export "Attempting to load class None". Now every loader
    goes through one allow-list and names the file and the class."""
    from trimzoo.checkpoints.folders import load_classifier_folder
    from trimzoo.export.saved_model import load_model
    from trimzoo.predict import load_predictor

    good = tmp_path / "good"
    TrimzooClassifier(trimzoo.models.bert_tiny(**TINY),
                      num_classes=2).save_to_preset(str(good))
    foreign = dict(module="os", class_name="system", registered_name=None)
    for name, file, inner, kind in (
            ("task", "task.json", False, "task"),
            ("config", "config.json", False, "backbone"),
            ("task_backbone", "task.json", True, "backbone")):
        folder = tmp_path / name
        shutil.copytree(good, folder)
        _set_fields(folder / file, inner=inner, **foreign)
        for load in (load_predictor, load_model, load_classifier_folder,
                     TrimzooClassifier.from_preset):
            with pytest.raises(ValueError, match=re.escape(
                    f"{folder}/{file} names the {kind} class os.system")):
                load(str(folder))


def test_links_out_of_a_model_folder_are_refused(tmp_path, vocab_dir):
    """A model.weights.h5, config.json or vocab.txt that is a symbolic
    link to a file outside the folder was followed and read. Links inside
    the folder, and a folder that is itself a link, still load."""
    from trimzoo.models.tokenizers import load_tokenizer

    checkpoint = tmp_path / "ckpt"
    save_pretrained(trimzoo.models.bert_tiny(**TINY), None, str(checkpoint))
    vocab = tmp_path / "vocab"  # A HF-style tokenizer folder.
    shutil.copytree(vocab_dir, vocab)
    outside = tmp_path / "outside"
    outside.mkdir()
    loads = {"model.weights.h5": trimzoo.checkpoints.load_backbone,
             "config.json": trimzoo.checkpoints.load_backbone,
             "vocab.txt": load_tokenizer}
    for name, load in loads.items():
        folder = vocab if name == "vocab.txt" else checkpoint
        os.replace(folder / name, outside / name)
        os.symlink(outside / name, folder / name)
        with pytest.raises(ValueError, match=re.escape(
                f"{folder}/{name} is a symbolic link to {outside}/{name}, "
                f"outside the model folder {folder}")):
            load(str(folder))
        os.remove(folder / name)
        os.replace(outside / name, folder / name)
    os.symlink(checkpoint / "config.json", checkpoint / "linked.json")
    os.symlink(checkpoint, tmp_path / "alias")
    os.symlink(vocab, tmp_path / "vocab_alias")
    assert trimzoo.checkpoints.load_backbone(
        str(tmp_path / "alias")).num_layers == 2
    assert load_tokenizer(str(tmp_path / "vocab_alias")).vocabulary_size() > 5


def test_runlocal_combines_with_init_checkpoint(tmp_path):
    """runlocal=True set model_overrides that init_checkpoint refuses, so
    a small run from a checkpoint (healing, fine-tuning a student) failed
    with 'model_overrides cannot change an imported checkpoint'."""
    from configs.finetune import get_config as finetune_config
    from configs.pretrain import get_config as pretrain_config
    from trimzoo.training import pretrain
    from trimzoo.training.finetune import default_tokenizer, finetune

    tokenizer = default_tokenizer()
    folder = str(tmp_path / "student")
    save_pretrained(trimzoo.models.bert_tiny(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2,
        hidden_dim=16, num_heads=2, intermediate_dim=32), tokenizer, folder)
    config = pretrain_config("model=bert_tiny,runlocal=True")
    config.init_checkpoint = folder
    resolved = pretrain.resolve_config(config, tf.distribute.get_strategy())
    assert resolved.resolved.model_kwargs.hidden_dim == 16
    # Without init_checkpoint, runlocal still shrinks the preset.
    small = pretrain.resolve_config(pretrain_config(
        "model=bert_base,runlocal=True"), tf.distribute.get_strategy())
    assert small.resolved.model_kwargs.num_layers == 3

    config = finetune_config(f"model=bert_tiny,runlocal=True,"
                             f"init_checkpoint={folder}")
    assert not any(v is not None for v in config.model_overrides.values())


@pytest.mark.slow
def test_runlocal_fine_tunes_from_an_init_checkpoint(tmp_path):
    """The runlocal fine-tuning config trains from a saved checkpoint."""
    from configs.finetune import get_config as finetune_config
    from trimzoo.training.finetune import default_tokenizer, finetune

    tokenizer = default_tokenizer()
    folder = str(tmp_path / "student")
    save_pretrained(trimzoo.models.bert_tiny(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2,
        hidden_dim=16, num_heads=2, intermediate_dim=32), tokenizer, folder)
    config = finetune_config(f"model=bert_tiny,runlocal=True,"
                             f"init_checkpoint={folder}")
    config.max_seq_length = 16
    config.train.max_steps_per_epoch = 1
    for split in ("train", "eval", "test"):
        config.data[f"max_{split}_examples"] = 8
    record = finetune(config, str(tmp_path / "run"))
    assert record["num_layers"] == 2 and record["init_checkpoint"] == folder
