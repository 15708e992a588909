"""Precision: CPU flags, the auto choice (flags injected), and models
copied between float32 and bfloat16 with their float32 weights."""

import keras
import numpy as np
import pytest

import trimzoo
from trimzoo.models import TrimzooClassifier
from trimzoo.models import precision as precision_lib
from trimzoo.models.precision import (PRECISIONS, QUANTIZATIONS,
                                      check_precision, quantized,
                                      resolve_precision, with_precision)
from trimzoo.training.objectives import MaskedLMObjective
from trimzoo.training.precision import masked_lm_step
from trimzoo.training.strategy import resolve_training_precision
from trimzoo.utils.hardware import cpu_features, describe

from conftest import random_inputs

AMX = "model name : Xeon\nflags : avx2 fma avx512f amx_bf16 amx_int8 avx512_bf16"
ZEN3 = "model name : EPYC 7B13\nflags : avx2 fma"


def test_flags_are_read():
    assert cpu_features(AMX)["bf16_units"] == ["amx_bf16", "avx512_bf16"]
    assert cpu_features(AMX)["int8_units"] == ["amx_int8"]
    assert cpu_features(ZEN3)["bf16_units"] == []
    assert "bf16 units: none" in describe(cpu_features(ZEN3))
    here = cpu_features()  # this machine: whatever it has, well-formed
    assert isinstance(here["bf16_units"], list) and here["model"]


def test_auto_needs_bf16_units_and_a_measured_gain():
    def never():
        raise AssertionError("no bf16 units: nothing to measure")

    assert resolve_precision("auto", ZEN3, measure=never)[0] == "float32"
    assert resolve_precision("auto", AMX, measure=lambda: 1.8) == (
        "bfloat16", "auto: amx_bf16, avx512_bf16; bfloat16 measured 1.80x "
        "float32")
    choice, reason = resolve_precision("auto", AMX, measure=lambda: 1.01)
    assert choice == "float32" and "only 1.01x" in reason
    assert resolve_precision("float32", AMX)[0] == "float32"
    with pytest.raises(ValueError, match="Valid values"):
        check_precision("fp8")


def _classifier():
    backbone = trimzoo.models.bert_tiny(
        vocabulary_size=97, num_layers=2, hidden_dim=32, num_heads=2,
        intermediate_dim=48, max_sequence_length=32)
    return TrimzooClassifier(backbone, num_classes=3)


def test_bfloat16_computes_in_bfloat16_and_keeps_float32_variables(tmp_path):
    model = _classifier()
    x = random_inputs(batch=4, length=12)
    reference = model.predict(x, verbose=0)
    fast = with_precision(model, "bfloat16")
    assert fast.backbone.dtype_policy.name == "mixed_bfloat16"
    blocks = [l for l in fast.backbone.layers if "transformer" in l.name
              or "encoder" in l.name]
    assert blocks and all(l.compute_dtype == "bfloat16" for l in blocks)
    assert {v.dtype for v in fast.weights} == {"float32"}
    hidden = fast.backbone(x)["sequence_output"]
    assert keras.backend.standardize_dtype(hidden.dtype) == "bfloat16"
    out = fast.predict(x, verbose=0)
    assert out.dtype == np.float32  # ... logits back in float32
    assert 0 < np.abs(out - reference).max() < 0.05
    assert keras.config.dtype_policy().name == "float32"  # not leaked
    # Saved from bfloat16, loaded as float32 (and back): the same weights.
    path = str(tmp_path / "bf16.weights.h5")
    fast.save_weights(path)
    plain = _classifier()
    plain.load_weights(path)
    np.testing.assert_array_equal(plain.predict(x, verbose=0), reference)
    again = with_precision(plain, "bfloat16")
    np.testing.assert_array_equal(again.predict(x, verbose=0), out)
    assert with_precision(plain, "float32") is plain


def test_classifier_predict_takes_a_precision():
    model = _classifier()
    x = random_inputs(batch=4, length=12)
    reference = model.predict(x, verbose=0)
    fast = model.predict(x, verbose=0, precision="bfloat16")
    assert fast.dtype == np.float32
    assert 0 < np.abs(fast - reference).max() < 0.05
    np.testing.assert_array_equal(
        model.predict(x, verbose=0, precision="float32"), reference)
    assert model.backbone.dtype_policy.name == "float32"  # untouched
    # The bfloat16 copy follows the model's weights after it changes.
    model.set_weights([w * 3 for w in model.get_weights()])
    again = model.predict(x, verbose=0, precision="bfloat16")
    np.testing.assert_array_equal(
        again, with_precision(model, "bfloat16").predict(x, verbose=0))
    assert not np.array_equal(again, fast)
    with pytest.raises(ValueError, match="Valid values"):
        model.predict(x, verbose=0, precision="fp8")


def test_auto_measures_at_the_callers_batch_size():
    seen = []
    real = precision_lib.measure_bf16_speedup
    try:
        precision_lib.measure_bf16_speedup = (
            lambda **kw: seen.append(kw["batch_size"]) or 0.8)
        choice, reason = resolve_precision("auto", AMX, batch_size=1)
    finally:
        precision_lib.measure_bf16_speedup = real
    assert seen == [1] and choice == "float32"
    assert reason.endswith("only 0.80x float32 at batch 1")


def test_int8_quantizes_the_dense_kernels_and_keeps_the_labels(tmp_path):
    """Keras int8 of a classifier: every Dense kernel becomes an int8
    variable (with a float32 scale), the float32 model is left as it
    was, the labels agree with float32's, and the saved float32 weights
    load into a model that is then quantized again."""
    model = _classifier()
    x = random_inputs(batch=8, length=12)
    reference = np.asarray(model(x))
    weights = [w.copy() for w in model.get_weights()]
    fast = quantized(model, "int8")
    dense = [l for l in fast._flatten_layers()
             if isinstance(l, keras.layers.Dense)]
    assert len(dense) >= 2 * 2 + 1  # qkv, output, FFN x2 per layer; head
    for layer in dense:
        assert layer.dtype_policy.name == "int8_from_float32", layer.path
        assert keras.backend.standardize_dtype(layer._kernel.dtype) == (
            "int8"), layer.path
    assert all(np.array_equal(a, b)
               for a, b in zip(model.get_weights(), weights))
    out = np.asarray(fast(x))
    assert 0 < np.abs(out - reference).max() < 0.05
    np.testing.assert_array_equal(out.argmax(-1), reference.argmax(-1))
    path = str(tmp_path / "float32.weights.h5")
    model.save_weights(path)
    plain = _classifier()
    plain.load_weights(path)
    np.testing.assert_array_equal(np.asarray(quantized(plain, "int8")(x)),
                                  out)


def test_unknown_quantization_and_int8_prediction_are_refused():
    from trimzoo.predict import load_predictor

    with pytest.raises(ValueError, match=r"Unknown quantization mode "
                       r"'int2'. Valid values: \['int8', 'int4', "
                       r"'float8'\]"):
        quantized(_classifier(), "int2")
    # Keras int8 runs slower than float32 on CPUs (docs/benchmarks.md):
    # not a prediction precision.
    assert "int8" in QUANTIZATIONS and "int8" not in PRECISIONS
    with pytest.raises(ValueError, match=r"Unknown precision 'int8'. Valid "
                       r"values: \['auto', 'float32', 'bfloat16', "
                       r"'float16'\]"):
        load_predictor("/no/such/folder", precision="int8")


def test_the_training_probe_times_a_step_of_the_training_loop():
    # With a train step, the probe times forward, backward and an update:
    # its own measurement (cached apart from the forward pass's), a real
    # ratio. The step training passes is its loop's: the masked-LM
    # objective and the AdamW optimizer.
    shape = dict(rounds=1, batch_size=2, seq_len=8, hidden_dim=32)
    ratio = precision_lib.measure_bf16_speedup(train_step=masked_lm_step,
                                               **shape)
    assert ratio > 0
    assert precision_lib._MEASURED[(1, 2, 8, 32, 2, masked_lm_step)] == ratio
    assert (1, 2, 8, 32, 2, None) not in precision_lib._MEASURED


def test_the_probe_step_trains_with_the_loops_objective_and_optimizer(
        monkeypatch):
    seen = []
    real = MaskedLMObjective.compiled_train_step

    def spy(self, optimizer, **kwargs):
        seen.append((type(self), type(optimizer)))
        return real(self, optimizer, **kwargs)

    monkeypatch.setattr(MaskedLMObjective, "compiled_train_step", spy)
    backbone = _classifier().backbone
    before = [w.copy() for w in backbone.get_weights()]
    step = masked_lm_step(backbone, random_inputs(batch=2, length=12),
                          jit_compile=False)
    loss = step()
    assert np.isfinite(loss) and loss > 0
    assert seen == [(MaskedLMObjective, keras.optimizers.AdamW)]
    assert any(not np.array_equal(a, b)
               for a, b in zip(before, backbone.get_weights()))


def test_training_auto_times_the_loops_step(monkeypatch):
    measured = []
    monkeypatch.setattr(precision_lib, "measure_bf16_speedup",
                        lambda **kw: measured.append(kw) or 1.8)
    monkeypatch.setattr(precision_lib.hardware, "cpu_features",
                        lambda cpuinfo=None: cpu_features(AMX))
    choice, reason = resolve_training_precision("auto", batch_size=4)
    assert measured == [{"batch_size": 4, "train_step": masked_lm_step}]
    assert choice == "bfloat16" and "for a training step at batch 4" in (
        reason)
