"""Export: SavedModel and TFLite (every format), builtin ops only, the parity
gate, and the SavedModel loaded without trimzoo.

The heavy runs (every preset converted; the export tool with every format
and the benchmark) happen once per module, each in a subprocess: the TFLite
converter leaks memory on every conversion.
"""

import collections
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import trimzoo
from trimzoo.models.tokenizers import BertWordPieceTokenizer
from trimzoo.export import (
    FlexOpsError,
    KerasRunner,
    ParityData,
    ParityError,
    Thresholds,
    check_builtin_only,
    compare,
    convert,
    convert_file,
    export_model,
    export_saved_model,
    gate,
    load_model,
    parse_list,
    raise_on_failures,
    tflite_ops,
    verify,
)
from trimzoo.export.quantize import copy_model as keras_copy
from trimzoo.export.tflite import TFLiteRunner
from trimzoo.models.backbone import INPUT_NAMES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "export.py")
VOCABULARY_SIZE = 97
SMALL = dict(vocabulary_size=VOCABULARY_SIZE, hidden_dim=16, num_heads=2,
             intermediate_dim=24, max_sequence_length=64)
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _env():
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(args, **kwargs):
    return subprocess.run([sys.executable, *args], capture_output=True,
                          text=True, env=_env(), **kwargs)


def small_vocabulary():
    """Specials + the most frequent words of the real training split, so
    that tiny models see real (if mostly [UNK]) text."""
    from trimzoo.data.rotten_tomatoes import load_split

    counts = collections.Counter()
    for text, _ in load_split("train")[:3000]:
        counts.update(re.findall(r"\w+|[^\w\s]", text.lower()))
    words = [w for w, _ in counts.most_common(VOCABULARY_SIZE)]
    return SPECIAL + words[:VOCABULARY_SIZE - len(SPECIAL)]


# Every preset, shrunk, plus per-layer mixes that cover every attention
# normaliser, every layernorm policy and FFN-less blocks.
def preset_configs():
    configs = {}
    for name in trimzoo.models.list_models():
        layers = 3 if name.startswith("trimbert") else 2
        configs[name] = dict(preset=name, num_layers=layers, **SMALL)
    configs["ffnless_no_layernorm"] = dict(
        preset="bert_tiny", num_layers=3, ffn_layers="none",
        layer_norm="none", attention_normalizer=("relu_sum", "sigmoid",
                                                 "relu"), **SMALL)
    configs["mixed_fixed_length"] = dict(
        preset="bert_tiny", num_layers=2, ffn_layers=(True, False),
        layer_norm="one_per_block", attention_norm=(True, True),
        attention_normalizer=("sigmoid", "relu_sum"),
        activation="gelu_approximate", seq_len=16,
        **{**SMALL, "hidden_dim": 32})
    return configs


_PRESET_WORKER = r"""
import json, os, sys, traceback
import keras
import trimzoo
from trimzoo.models.tokenizers import BertWordPieceTokenizer
from trimzoo.export import export_model

out, configs, vocab = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
with open(vocab) as f:
    tokenizer = BertWordPieceTokenizer(vocabulary=json.load(f))
for name, config in configs.items():
    keras.utils.set_random_seed(0)
    config = dict(config)
    preset, seq_len = config.pop("preset"), config.pop("seq_len", None)
    try:
        model = trimzoo.models.create(preset, **config)
        export_model(model, os.path.join(out, name), quantize="none",
                     seq_len=seq_len, tokenizer=tokenizer, num_examples=24,
                     check=False, app_files=False)
    except Exception as err:
        os.makedirs(os.path.join(out, name), exist_ok=True)
        with open(os.path.join(out, name, "error.txt"), "w") as f:
            f.write(repr(err) + "\n" + traceback.format_exc())
    print("done", name, flush=True)
"""


@pytest.fixture(scope="module")
def preset_exports(tmp_path_factory):
    """Every shrunk preset exported to SavedModel + float32 TFLite, in one
    subprocess; returns the output folder."""
    out = tmp_path_factory.mktemp("presets")
    vocab = out / "vocab.json"
    vocab.write_text(json.dumps(small_vocabulary()))
    result = _run(["-c", _PRESET_WORKER, str(out),
                   json.dumps(preset_configs()), str(vocab)], timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def classifier_folder(tmp_path_factory):
    """A small classifier preset folder with its (real-word) tokenizer."""
    import keras

    keras.utils.set_random_seed(3)
    folder = tmp_path_factory.mktemp("classifier") / "model"
    backbone = trimzoo.models.create("bert_tiny", num_layers=2, **SMALL)
    model = trimzoo.models.TrimzooClassifier(backbone, num_classes=2)
    model.label_names = ["rotten", "fresh"]  # A classifier of that task.
    model.save_to_preset(str(folder))
    BertWordPieceTokenizer(vocabulary=small_vocabulary()).save_to_preset(
        str(folder))
    return folder


@pytest.fixture(scope="module")
def tool_export(classifier_folder, tmp_path_factory):
    """``tools/export.py`` with every format and the benchmark."""
    out = tmp_path_factory.mktemp("export")
    result = _run([TOOL, f"--model={classifier_folder}", f"--output={out}",
                   "--formats=saved_model,tflite",
                   "--quantize=none,float16,dynamic,int8", "--benchmark"],
                  timeout=900)
    assert result.returncode == 0, (result.stdout[-2000:]
                                    + result.stderr[-4000:])
    with open(out / "export_report.json") as f:
        report = json.load(f)
    return out, report, result.stdout + result.stderr


# --- Fast: one tiny classifier exported once, in process. --------------------

@pytest.fixture(scope="module")
def tiny_export(classifier_folder, tmp_path_factory):
    """The module's 2-layer classifier exported in process (SavedModel,
    TFLite float32 and dynamic int8) with the gate on 64 validation
    reviews: ``(folder, report)``."""
    out = tmp_path_factory.mktemp("tiny_export")
    report = export_model(str(classifier_folder), str(out),
                          formats="saved_model,tflite",
                          quantize="none,dynamic", num_examples=64,
                          app_files=False)  # tests/test_app_file.py
    return out, report


def test_tiny_exports_pass_the_gate_within_its_tolerances(tiny_export):
    """SavedModel within 1e-5 and TFLite float32 within 1e-4 of the Keras
    logits; int8 judged by its labels; builtin ops only."""
    out, report = tiny_export
    assert report["passed"] and not report["failures"]
    by_format = {e["format"]: e for e in report["exports"]}
    assert set(by_format) >= {"saved_model", "tflite_float32",
                              "tflite_dynamic_int8"}
    assert by_format["saved_model"]["parity"]["metrics"][
        "max_abs_diff"] <= 1e-5
    float32 = by_format["tflite_float32"]["parity"]
    assert float32["metrics"]["max_abs_diff"] <= 1e-4
    assert {c["metric"] for c in float32["checks"]} == {"max_abs_diff"}
    int8 = by_format["tflite_dynamic_int8"]["parity"]
    assert {c["metric"] for c in int8["checks"]} & {
        "label_agreement", "accuracy_drop_points"}
    assert report["parity_data"]["num_examples"] == 64
    for entry in by_format.values():
        assert os.path.exists(out / entry["path"])
        assert not [op for op in entry.get("ops", {})
                    if op.startswith("CUSTOM")]


def test_gate_fails_on_a_corrupted_tflite_file(tiny_export,
                                               classifier_folder, tmp_path):
    """The gate compares real outputs: the intact file passes, a copy with
    one weight tensor changed fails, naming the format and metric."""
    from trimzoo.models.tokenizers import load_tokenizer
    from trimzoo.export import parity_data

    out, report = tiny_export
    model = load_model(str(classifier_folder))
    data = parity_data(model, load_tokenizer(str(classifier_folder)),
                       report["parity_data"]["padded_length"], 64)
    source = out / "model_float32.tflite"
    assert verify(model, str(source), data=data)["passed"]
    tflite = tmp_path / "model_float32.tflite"
    shutil.copy(source, tflite)
    _corrupt(tflite, model.backbone.token_embedding.embeddings.numpy())
    with pytest.raises(ParityError, match="tflite_float32: max_abs_diff"):
        verify(model, str(tflite), data=data)


# --- Every preset converts, builtin ops only, within 1e-4. -------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", list(preset_configs()))
def test_preset_exports_to_saved_model_and_tflite(preset_exports, name):
    folder = preset_exports / name
    error = folder / "error.txt"
    assert not error.exists(), error.read_text()
    report = json.loads((folder / "export_report.json").read_text())
    assert report["passed"], report["failures"]
    by_format = {e["format"]: e for e in report["exports"]}
    assert set(by_format) == {"saved_model", "tflite_float32"}
    for entry in by_format.values():
        metrics = entry["parity"]["metrics"]
        assert metrics["max_abs_diff"] <= 1e-4
        assert set(metrics["outputs"]) == {"pooled_output", "sequence_output"}
    ops = by_format["tflite_float32"]["ops"]
    assert not [op for op in ops if op.startswith("CUSTOM")], ops
    assert "FULLY_CONNECTED" in ops or "BATCH_MATMUL" in ops
    assert report["parity_data"]["source"].startswith(
        "rotten_tomatoes/validation")
    assert (folder / "model_float32.tflite").exists()
    config = preset_configs()[name]
    expected_shape = [1, config["seq_len"]] if "seq_len" in config else [
        None, None]
    assert by_format["tflite_float32"]["input_shape"] == expected_shape


# --- Every format through the tool. -----------------------------------------

@pytest.mark.slow
def test_tool_exports_every_format(tool_export):
    out, report, log = tool_export
    assert report["passed"] and not report["failures"]
    assert report["model"]["kind"] == "classifier"
    by_format = {e["format"]: e for e in report["exports"]}
    assert list(by_format) == [
        "saved_model", "saved_model_text", "tflite_float32",
        "tflite_float16", "tflite_dynamic_int8", "tflite_int8",
        # Each variant's app file (MediaPipe metadata), run in MediaPipe.
        "mediapipe_float32", "mediapipe_float16", "mediapipe_dynamic_int8",
        "mediapipe_int8"]
    assert by_format["mediapipe_int8"]["path"] == (
        "text_classifier_int8.tflite")
    assert "MediaPipe" in log
    for entry in by_format.values():
        assert os.path.exists(out / entry["path"])
        checks = {c["metric"] for c in entry["parity"]["checks"]}
        assert checks, entry["format"]
        metrics = entry["parity"]["metrics"]
        assert metrics["label_agreement"] >= 0.98
    assert report["parity_data"]["num_examples"] > 1000  # validation split
    # Precision of each TFLite variant, read from the flatbuffer.
    types = {f: by_format[f]["tensor_types"] for f in by_format
             if f.startswith("tflite")}
    assert "INT8" not in types["tflite_float32"]
    assert "FLOAT16" in types["tflite_float16"]
    assert "INT8" in types["tflite_dynamic_int8"]
    assert types["tflite_int8"].get("INT8", 0) > types[
        "tflite_dynamic_int8"]["INT8"]  # activations too
    assert "QUANTIZE" in by_format["tflite_int8"]["ops"]
    sizes = {f: by_format[f]["size_bytes"] for f in by_format}
    # (Tiny layers: the converter leaves weights under 1024 values float.)
    assert sizes["tflite_float16"] < sizes["tflite_float32"]
    assert sizes["tflite_dynamic_int8"] < sizes["tflite_float32"]
    for entry in by_format.values():
        assert not [op for op in entry.get("ops", {})
                    if op.startswith("CUSTOM")]
    # The benchmark: every format next to Keras float32 and Keras int8.
    rows = {row["format"]: row for row in report["benchmark"]["rows"]}
    assert set(rows) == {"keras_float32", "keras_int8", "saved_model",
                         "tflite_float32", "tflite_float16",
                         "tflite_dynamic_int8", "tflite_int8"}
    for row in rows.values():
        assert row["size_bytes"] > 0
        assert all(row["latency_ms"][b] > 0 for b in ("1", "8"))
    assert rows["tflite_float32"]["threads"]["1"] >= 1
    assert rows["keras_float32"]["threads"]["1"] is None
    assert report["keras_int8"]["parity"]["metrics"]["max_abs_diff"] > 0
    assert "tflite_dynamic_int8" in log and "speedup" in log


@pytest.mark.slow
def test_export_accuracy_is_the_keras_accuracy(tool_export,
                                               classifier_folder):
    """The gate's accuracies, recomputed: the Keras model's on the same
    validation inputs, and each export's within the share of labels where
    the two disagree."""
    from trimzoo.models.tokenizers import load_tokenizer
    from trimzoo.export import parity_data

    out, report, _ = tool_export
    model = load_model(str(classifier_folder))
    data = parity_data(model, load_tokenizer(str(classifier_folder)),
                       report["parity_data"]["padded_length"])
    logits = KerasRunner(model)(data.inputs)["logits"]
    keras_accuracy = float(np.mean(np.argmax(logits, -1) == data.labels))
    tflite_logits = TFLiteRunner(str(out / "model_float32.tflite"))(
        data.inputs)["logits"]
    tflite_accuracy = float(np.mean(np.argmax(tflite_logits, -1)
                                    == data.labels))
    for entry in report["exports"]:
        metrics = entry["parity"]["metrics"]
        if entry["format"].startswith("mediapipe_"):
            # App files: the gate's numbers are on the texts MediaPipe
            # tokenises alike; these are over every text.
            metrics = {k[:-len("_all_texts")]: v for k, v in metrics.items()
                       if k.endswith("_all_texts")}
        assert metrics["reference_accuracy"] == pytest.approx(
            keras_accuracy, abs=1e-9), entry["format"]
        assert abs(metrics["export_accuracy"] - keras_accuracy) <= (
            1 - metrics["label_agreement"] + 1e-9), entry["format"]
        if entry["format"] == "tflite_float32":
            assert metrics["export_accuracy"] == pytest.approx(
                tflite_accuracy, abs=1e-9)


@pytest.mark.slow
def test_saved_models_load_without_trimzoo(tool_export, classifier_folder,
                                           tmp_path):
    out, _, _ = tool_export
    model = load_model(str(classifier_folder))
    texts = ["A gripping, beautifully acted film.", "Dull and far too long.",
             "Naïve but charming"]
    from trimzoo.models.tokenizers import encode, load_tokenizer

    inputs = encode(load_tokenizer(str(classifier_folder)), texts, 12)
    expected = KerasRunner(model)(inputs)
    np.savez(tmp_path / "io.npz", **inputs,
             **{f"expected_{k}": v for k, v in expected.items()})
    script = f"""
import sys
import numpy as np
import tensorflow as tf
data = np.load({str(tmp_path / "io.npz")!r})
model = tf.saved_model.load({str(out / "saved_model")!r})
outputs = model.signatures["serving_default"](
    token_ids=tf.constant(data["token_ids"]),
    segment_ids=tf.constant(data["segment_ids"]),
    padding_mask=tf.constant(data["padding_mask"]))
for name in ("logits", "probabilities"):
    diff = np.abs(outputs[name].numpy() - data["expected_" + name]).max()
    assert diff <= 1e-5, (name, diff)
# Dynamic batch and length.
short = {{k: tf.constant(data[k][:1, :5]) for k in
         ("token_ids", "segment_ids", "padding_mask")}}
assert model.signatures["serving_default"](**short)["logits"].shape == (1, 2)
import tensorflow_text  # noqa: F401  (registers the tokenizer ops)
text_model = tf.saved_model.load({str(out / "saved_model_text")!r})
outputs = text_model.signatures["serving_default"](
    text=tf.constant({texts!r}))
diff = np.abs(outputs["probabilities"].numpy()
              - data["expected_probabilities"]).max()
assert diff <= 1e-5, diff
assert outputs["label"].numpy().tolist() == np.argmax(
    data["expected_logits"], -1).tolist()
assert "trimzoo" not in sys.modules
print("OK")
"""
    result = _run(["-c", script], cwd=str(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout


# --- The gate fails on corrupted exports. ------------------------------------

def _corrupt(path, array):
    """Scales the stored copy of ``array`` inside the file at ``path``."""
    with open(path, "rb") as f:
        content = f.read()
    needle = np.ascontiguousarray(array, dtype="float32").tobytes()
    assert content.count(needle) == 1, "weights not found exactly once"
    corrupted = (np.asarray(array, dtype="float32") * 1.5 + 0.05).tobytes()
    with open(path, "wb") as f:
        f.write(content.replace(needle, corrupted))


@pytest.mark.slow
def test_parity_gate_fails_on_corrupted_exports(tool_export,
                                                classifier_folder, tmp_path):
    out, _, _ = tool_export
    model = load_model(str(classifier_folder))
    embeddings = model.backbone.token_embedding.embeddings.numpy()
    # The intact file passes ...
    record = verify(model, str(out / "model_float32.tflite"),
                    tokenizer=str(classifier_folder))
    assert record["passed"]
    # ... a copy with one weight tensor changed does not.
    tflite = tmp_path / "model_float32.tflite"
    shutil.copy(out / "model_float32.tflite", tflite)
    _corrupt(tflite, embeddings)
    with pytest.raises(ParityError, match="tflite_float32: max_abs_diff"):
        verify(model, str(tflite), tokenizer=str(classifier_folder))
    # SavedModel variables carry checksums, so flipped bytes fail to load;
    # the silent failure is an export made from other weights.
    other = keras_copy(model)
    kernel = other.output_dense.kernel
    kernel.assign(kernel.numpy() * 1.5 + 0.05)
    saved = export_saved_model(other, str(tmp_path / "saved_model"))
    with pytest.raises(ParityError) as err:
        verify(model, saved, tokenizer=str(classifier_folder))
    assert err.value.failures[0]["format"] == "saved_model"
    assert err.value.failures[0]["value"] > 1e-4


def test_gate_limits_and_error_message():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 2)).astype("float32")
    flipped = logits.copy()
    flipped[:10] = flipped[:10, ::-1]  # 10 of 200 labels flip: -5 points.
    # The runners read their logits from extra input columns, so both see
    # the rows of the same batch.
    inputs = {n: np.ones((200, 4), "int32") for n in INPUT_NAMES}
    inputs.update(reference=logits, exported=flipped)
    data = ParityData(inputs=inputs, labels=np.argmax(logits, -1),
                      source="test", tokenizer=None)

    def reference(batch):
        return {"logits": batch["reference"]}

    def exported(batch):
        return {"logits": batch["exported"]}

    metrics = compare(reference, exported, data, batch_size=64, trim=False)
    assert metrics["label_agreement"] == pytest.approx(0.95)
    assert metrics["accuracy_drop_points"] == pytest.approx(5.0)
    float_record = gate("tflite_float32", metrics)
    int8_record = gate("tflite_int8", metrics)
    assert not float_record["passed"] and not int8_record["passed"]
    assert gate("tflite_int8", metrics,
                Thresholds(max_accuracy_drop=6.0))["passed"]
    with pytest.raises(ParityError) as err:
        raise_on_failures([float_record, int8_record], "DIR/report.json")
    message = str(err.value)
    assert "tflite_float32: max_abs_diff" in message
    assert "tflite_int8: accuracy_drop_points = 5" in message
    assert "DIR/report.json" in message
    with pytest.raises(ValueError, match="Valid values"):
        gate("onnx", metrics)


# --- Flex refusal. ---------------------------------------------------------

def _flex_saved_model(path):
    """A SavedModel with the export signature whose graph needs a TF op
    without a builtin TFLite kernel (Cumprod)."""
    spec = [tf.TensorSpec([None, None], tf.int32, name=n)
            for n in INPUT_NAMES]

    @tf.function(input_signature=spec)
    def serve(token_ids, segment_ids, padding_mask):
        x = tf.cast(token_ids + segment_ids + padding_mask, tf.float32)
        return {"pooled_output": tf.math.cumprod(x, axis=1)}

    tf.saved_model.save(tf.Module(), path,
                        signatures={"serving_default":
                                    serve.get_concrete_function()})
    return path


def test_flex_ops_are_refused(tmp_path):
    path = _flex_saved_model(str(tmp_path / "flex"))
    with pytest.raises(FlexOpsError) as err:
        convert_file(path, "none")
    assert "Cumprod" in err.value.ops
    assert "builtin" in str(err.value)
    # A model converted *with* Flex kernels is caught by the op check too.
    converter = tf.lite.TFLiteConverter.from_saved_model(path)
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    flatbuffer = converter.convert()
    assert "CUSTOM:FlexCumprod" in tflite_ops(flatbuffer)
    with pytest.raises(FlexOpsError) as err:
        check_builtin_only(flatbuffer)
    assert err.value.ops == ["Cumprod"]


def test_model_needing_flex_is_refused(tmp_path, monkeypatch):
    """A backbone whose attention normaliser needs a Flex op: the export
    fails, names the op, and the report says so."""
    from keras import ops

    from trimzoo.layers import normalizers

    def cumprod_normalizer(scores, mask):
        weights = ops.cumprod(ops.sigmoid(scores), axis=-1)
        return weights * ops.cast(mask, scores.dtype)

    monkeypatch.setitem(normalizers.NORMALIZERS, "cumprod_test",
                        cumprod_normalizer)
    backbone = trimzoo.models.create(
        "bert_tiny", num_layers=1, attention_normalizer="cumprod_test",
        **SMALL)
    with pytest.raises(FlexOpsError) as err:
        export_model(backbone, str(tmp_path), formats="tflite",
                     num_examples=8)
    assert "Cumprod" in err.value.ops
    report = json.loads((tmp_path / "export_report.json").read_text())
    assert report["passed"] is False and "Cumprod" in report["flex_ops"]
    assert not (tmp_path / "model_float32.tflite").exists()


@pytest.mark.slow
def test_conversion_in_subprocess(tmp_path):
    backbone = trimzoo.models.create("trimbert_mini", num_layers=3, **SMALL)
    flatbuffer = convert(backbone, seq_len=8, isolate=True)
    runner = TFLiteRunner(flatbuffer)
    assert (runner.batch_size, runner.seq_len) == (1, 8)
    ids = np.array([[2, 5, 9, 3, 0, 0, 0, 0], [2, 7, 7, 7, 8, 3, 0, 0]],
                   "int32")
    inputs = {"token_ids": ids, "segment_ids": np.zeros_like(ids),
              "padding_mask": (ids > 0).astype("int32")}
    expected = KerasRunner(backbone)(inputs)
    outputs = runner(inputs)  # Two calls of the batch-1 model.
    assert np.abs(outputs["pooled_output"]
                  - expected["pooled_output"]).max() <= 1e-4
    with pytest.raises(ValueError, match="fixed sequence length of 8"):
        runner({k: v[:, :5] for k, v in inputs.items()})
    # The fresh process's error comes back with the ops it names.
    with pytest.raises(FlexOpsError) as err:
        convert_file(_flex_saved_model(str(tmp_path / "flex")), "none",
                     isolate=True)
    assert "Cumprod" in err.value.ops


# --- Clear errors. ----------------------------------------------------------

def test_option_errors_list_valid_values(tmp_path):
    with pytest.raises(ValueError, match=r"\['saved_model', 'tflite'\]"):
        parse_list("saved_model,onnx", ("saved_model", "tflite"), "formats")
    backbone = trimzoo.models.create("bert_tiny", num_layers=1, **SMALL)
    with pytest.raises(ValueError, match="'float16', 'dynamic', 'int8'"):
        export_model(backbone, str(tmp_path), quantize="int4")
    with pytest.raises(ValueError, match="seq_len must be in"):
        export_model(backbone, str(tmp_path), seq_len=1000)
    with pytest.raises(FileNotFoundError, match="No such model folder"):
        export_model(str(tmp_path / "missing"), str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_model(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="No such TFLite model"):
        TFLiteRunner(str(tmp_path / "missing.tflite"))
    with pytest.raises(ValueError, match="needs calibration"):
        convert(backbone, quantize="int8")


@pytest.mark.slow
def test_tool_rejects_unknown_format(tmp_path):
    result = _run([TOOL, f"--model={tmp_path}", f"--output={tmp_path}/o",
                   "--formats=saved_model,onnx"], timeout=300)
    assert result.returncode != 0
    assert "onnx" in result.stderr and "tflite" in result.stderr


def test_export_checks_on_the_models_own_task_and_sets_failures_aside(
        tmp_path):
    """A fine-tuned 3-class topic classifier is checked on its own task's
    files (recorded in RUN/config.json), not on movie reviews; an export
    that fails the gate is set aside and predict refuses it unless
    forced."""
    from helpers import make_classifier_run
    from trimzoo.predict import check_export_gate

    run = make_classifier_run(tmp_path)
    out = tmp_path / "export"
    report = export_model(os.path.join(run, "best"), str(out),
                          formats="tflite", quantize="none",
                          thresholds=Thresholds(float32_max_abs=0.0),
                          check=False)
    assert report["parity_data"]["source"].startswith(
        "task files, split validation (recorded in")
    assert report["parity_data"]["num_examples"] == 6
    assert report["parity_data"]["labelled"] is True
    assert report["passed"] is False
    # No app file: only a variant that passes gets one.
    assert sorted(os.listdir(out)) == ["export_report.json",
                                       "model_float32.failed.tflite",
                                       "tokenizer"]
    entry = report["exports"][0]
    assert entry["path"] == "model_float32.failed.tflite"
    with pytest.raises(ValueError, match="FAILED the export parity gate.*"
                       "--force"):
        check_export_gate(str(out / "model_float32.failed.tflite"))
    check_export_gate(str(out / "model_float32.failed.tflite"), force=True)


def test_user_data_file_and_keras_int8_of_a_classifier_with_preprocessor(
        tmp_path):
    from helpers import make_classifier_run
    from trimzoo.export.quantize import keras_int8

    run = make_classifier_run(tmp_path)
    mine = tmp_path / "mine.jsonl"
    mine.write_text('{"t": "stocks fell", "y": "business"}\n'
                    '{"t": "a late goal", "y": "sport"}\n')
    model = load_model(os.path.join(run, "best"))
    assert model.preprocessor is not None
    # Quantises the backbone and head, not the tokenizer.
    quantized = keras_int8(model)
    assert quantized(model.preprocessor(["stocks fell"])).shape == (1, 3)
    assert str(quantized.backbone.transformer_layers[0].attention.qkv
               .quantization_mode) == "int8"
    from trimzoo.export.pipeline import _model_texts

    parity, calibration = _model_texts(model, os.path.join(run, "best"),
                                       str(mine), "t", "y")
    assert parity.texts == ["stocks fell", "a late goal"]
    assert parity.labels == [0, 2]
    assert parity.source.startswith("--data=") and calibration.texts == (
        parity.texts)
