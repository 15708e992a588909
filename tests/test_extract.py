"""Weight inheritance: per-layer widths, extract, to_trimbert."""

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import trimzoo
from conftest import TINY, random_inputs
from helpers import clone_model
from numpy_reference import block as numpy_block
from trimzoo.models.costs import check_flops, flops_per_token
from trimzoo.checkpoints import get_state, load_backbone, save_pretrained
from trimzoo.checkpoints.folders import architecture
from trimzoo.models import (
    TrimzooBackbone,
    TrimzooClassifier,
    TrimzooMaskedLM,
    extract,
    to_trimbert,
)

WIDE = dict(TINY, num_heads=4)  # head size 4, so heads can be pruned


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _source(preset="bert_mini", **overrides):
    model = trimzoo.models.create(preset, **{**WIDE, "dropout": 0.0,
                                             **overrides})
    # Random layernorms and biases, so that slicing them matters.
    rng = np.random.default_rng(0)
    for var in model.weights:
        if var.path.endswith(("gamma", "beta", "bias")):
            var.assign(rng.normal(0.5, 0.3, var.shape))
    return model


def _assert_same(a, b):
    for key in a:
        np.testing.assert_array_equal(_np(a[key]), _np(b[key]))


PRUNED = dict(num_layers=3, num_heads=(4, 1, 3), intermediate_dim=(24, 5, 9),
              head_dim=4, ffn_layers=(True, True, False),
              attention_normalizer=("softmax", "relu", "sigmoid"))


def _pruned():
    return TrimzooBackbone(**{**WIDE, **PRUNED})


# --- Extracting everything is the identity ---------------------------------

@pytest.mark.parametrize("preset,layers", [("bert_mini", 3),
                                           ("trimbert_mini", 4),
                                           ("bort_mini", 2)])
def test_extracting_everything_is_bit_exact(preset, layers):
    source = _source(preset, num_layers=layers)
    copy = extract(source)
    assert copy is not source
    assert copy.get_config() == {
        **source.get_config(),
        **{k: copy.get_config()[k] for k in ("ffn_layers", "attention_norm",
                                             "ffn_norm",
                                             "attention_normalizer")}}
    for a, b in zip(copy.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(a, b)
    inputs = random_inputs(num_segments=source.num_segments)
    _assert_same(copy(inputs), source(inputs))


def test_extracting_everything_from_task_models_is_bit_exact():
    backbone = _source(num_layers=2)
    inputs = random_inputs()
    classifier = TrimzooClassifier(backbone, num_classes=3,
                                   activation="softmax")
    copy = extract(classifier)
    assert isinstance(copy, TrimzooClassifier) and copy.num_classes == 3
    np.testing.assert_array_equal(_np(copy(inputs)), _np(classifier(inputs)))
    # The head's input comes along too: pooling and label names.
    for pooling in ("mean", "max"):
        pooled = TrimzooClassifier(backbone, num_classes=2, pooling=pooling,
                                   label_names=["a", "b"])
        copy = extract(pooled)
        assert copy.pooling == pooling
        assert list(copy.label_names) == ["a", "b"]
        np.testing.assert_array_equal(_np(copy(inputs)),
                                      _np(pooled(inputs)))
    mlm = TrimzooMaskedLM(backbone)
    mlm_inputs = {**inputs, "mask_positions": np.array([[1, 2], [3, 0]])}
    copy = extract(mlm)
    assert isinstance(copy, TrimzooMaskedLM)
    np.testing.assert_array_equal(_np(copy(mlm_inputs)),
                                  _np(mlm(mlm_inputs)))
    for a, b in zip(copy.get_weights(), mlm.get_weights()):
        np.testing.assert_array_equal(a, b)


# --- Pruning equals masking in the source -----------------------------------

def _zero_heads(model, layer, heads):
    attention = model.transformer_layers[layer].attention
    kernel = _np(attention.output_dense.kernel).copy()
    for h in heads:
        kernel[h * attention.head_dim:(h + 1) * attention.head_dim] = 0.0
    attention.output_dense.kernel.assign(kernel)


def _zero_neurons(model, layer, neurons):
    block = model.transformer_layers[layer]
    kernel = _np(block.ffn_output.kernel).copy()
    kernel[list(neurons)] = 0.0
    block.ffn_output.kernel.assign(kernel)


@pytest.mark.parametrize("preset", ["bert_mini", "trimbert_mini"])
def test_pruned_heads_and_neurons_equal_masking_the_source(preset):
    source = _source(preset, num_layers=3)
    heads = {0: [1, 3], 2: [0]}
    neurons = {i: [0, 5, 7, 20] for i in range(3)
               if source.layer_options[i]["use_ffn"]}
    small = extract(source, heads=heads, ffn_neurons=neurons)
    assert [o["num_heads"] for o in small.layer_options] == [2, 4, 1]
    assert small.head_dim == 4 and small.hidden_dim == 16
    masked = clone_model(source)
    for layer, kept in heads.items():
        _zero_heads(masked, layer, sorted(set(range(4)) - set(kept)))
    for layer, kept in neurons.items():
        _zero_neurons(masked, layer, sorted(set(range(24)) - set(kept)))
    inputs = random_inputs()
    want, got = masked(inputs), small(inputs)
    for key in want:
        np.testing.assert_allclose(_np(got[key]), _np(want[key]), atol=2e-6)
    # ... and pruning does change the function.
    assert np.abs(_np(source(inputs)["sequence_output"])
                  - _np(got["sequence_output"])).max() > 1e-3


def test_head_mask_gate_equals_zeroing_the_output_rows():
    block = _source(num_layers=1).transformer_layers[0]
    x = np.random.default_rng(1).normal(size=(2, 5, 16)).astype("float32")
    gate = np.array([1.0, 0.0, 1.0, 1.0], "float32")
    gated = _np(block(x, head_mask=gate))
    assert np.abs(gated - _np(block(x))).max() > 1e-3
    _zero_heads(type("M", (), {"transformer_layers": [block]}), 0, [1])
    np.testing.assert_allclose(gated, _np(block(x)), atol=1e-6)


def test_extracted_from_a_frozen_source_is_trainable():
    # A teacher frozen for distillation: what is cut from it must train.
    source = _source(num_layers=2)
    source.trainable = False
    small = extract(source, layers=[1], heads=[[0, 1]])
    assert len(small.trainable_weights) == len(small.weights) > 0
    assert not source.trainable_weights


def test_hidden_dims_slice_every_weight_consistently():
    source = _source("trimbert_mini", num_layers=3)
    hidden = [0, 2, 3, 7, 8, 11, 12, 15]
    small = extract(source, layers=[0, 2], heads=[[0, 2], None],
                    ffn_neurons={2: list(range(0, 24, 3))},
                    hidden_dims=hidden)
    assert small.hidden_dim == 8 and small.head_dim == 4
    assert small.num_heads == [2, 4]
    old, new = get_state(source), get_state(small)
    h = np.asarray(hidden)
    for name, value in new.items():
        src = name
        cols = slice(None)
        if name.startswith("layer."):
            j = int(name.split(".")[1])
            src = name.replace(f"layer.{j}.", f"layer.{[0, 2][j]}.", 1)
            if j == 0 and ".attention." in name:
                cols = np.r_[0:4, 8:12]
        ref = old[src]
        if name.endswith(("query.kernel", "key.kernel", "value.kernel")):
            ref = ref[h][:, cols]
        elif name.endswith(("query.bias", "key.bias", "value.bias")):
            ref = ref[cols]
        elif name.endswith("attention.output.kernel"):
            ref = ref[cols][:, h]
        elif name.endswith("ffn.intermediate.kernel"):
            ref = ref[h][:, ::3]
        elif name.endswith("ffn.intermediate.bias"):
            ref = ref[::3]
        elif name.endswith("ffn.output.kernel"):
            ref = ref[::3][:, h]
        elif name == "pooler.kernel":
            ref = ref[h][:, h]
        else:
            ref = ref[..., h]
        np.testing.assert_array_equal(value, ref, err_msg=name)
    assert set(new) == {n for n in get_state(small)}
    # The smaller model computes its blocks as the NumPy reference does.
    inputs = random_inputs()
    states = trimzoo.models.layer_drop.hidden_states_model(small)(inputs)
    x = _np(states[0]).astype("float64")
    for j, opts in enumerate(small.layer_options):
        x = numpy_block(x, inputs["padding_mask"], new, f"layer.{j}",
                        opts["num_heads"], opts["attention_normalizer"],
                        opts["use_ffn"], opts["attention_norm"],
                        opts["ffn_norm"], head_dim=opts["head_dim"])
    np.testing.assert_allclose(_np(states[-1]), x, atol=1e-4)


def test_task_heads_are_sliced_with_the_hidden_dims():
    backbone = _source(num_layers=2)
    hidden = list(range(0, 16, 2))
    classifier = TrimzooClassifier(backbone, num_classes=2)
    small = extract(classifier, hidden_dims=hidden)
    np.testing.assert_array_equal(_np(small.output_dense.kernel),
                                  _np(classifier.output_dense.kernel)[hidden])
    mlm = TrimzooMaskedLM(backbone)
    mlm({**random_inputs(), "mask_positions": np.array([[1], [2]])})
    small = extract(mlm, hidden_dims=hidden)
    old, new = mlm.masked_lm_head, small.masked_lm_head
    np.testing.assert_array_equal(
        _np(new._intermediate_dense.kernel),
        _np(old._intermediate_dense.kernel)[hidden][:, hidden])
    np.testing.assert_array_equal(_np(new._intermediate_layer_norm.gamma),
                                  _np(old._intermediate_layer_norm.gamma)[
                                      hidden])
    out = small({**random_inputs(), "mask_positions": np.array([[1], [2]])})
    assert tuple(out.shape) == (2, 1, 97)


# --- Per-layer widths survive every format ----------------------------------

def test_per_layer_widths_roundtrip_config_keras_and_presets(tmp_path):
    model = _pruned()
    inputs = random_inputs()
    want = model(inputs)
    config = model.get_config()
    assert config["num_heads"] == [4, 1, 3] and config["head_dim"] == 4
    assert config["intermediate_dim"] == [24, 5, 9]
    clone = TrimzooBackbone.from_config(config)
    clone.set_weights(model.get_weights())
    _assert_same(clone(inputs), want)
    assert clone.layer_options == model.layer_options

    model.save(tmp_path / "m.keras")
    _assert_same(keras.saving.load_model(tmp_path / "m.keras")(inputs), want)

    model.save_to_preset(str(tmp_path / "preset"))
    loaded = keras_hub.models.Backbone.from_preset(str(tmp_path / "preset"))
    _assert_same(loaded(inputs), want)

    save_pretrained(model, None, str(tmp_path / "pretrained"))
    _assert_same(load_backbone(str(tmp_path / "pretrained"))(inputs), want)
    # An expected architecture written with scalars compares per layer.
    uniform = dict(WIDE, num_layers=2, num_heads=[4, 4],
                   intermediate_dim=24)
    save_pretrained(TrimzooBackbone(**uniform), None,
                    str(tmp_path / "uniform"))
    load_backbone(str(tmp_path / "uniform"),
                  expected=dict(uniform, num_heads=4, dropout=0.0))
    with pytest.raises(ValueError, match="num_heads"):
        load_backbone(str(tmp_path / "pretrained"),
                      expected=dict(WIDE, **{**PRUNED,
                                             "num_heads": (4, 2, 3)}))


def test_per_layer_widths_export_to_saved_model_and_builtin_tflite(tmp_path):
    from trimzoo.export import (
        TFLiteRunner,
        check_builtin_only,
        convert,
        export_saved_model,
    )

    model = _pruned()
    inputs = random_inputs(batch=1, length=8, pad_last=0)
    want = model(inputs)
    path = export_saved_model(model, str(tmp_path / "sm"))
    served = tf.saved_model.load(path).signatures["serving_default"](
        **{k: tf.constant(v) for k, v in inputs.items()})
    for key in want:
        np.testing.assert_allclose(served[key].numpy(), _np(want[key]),
                                   atol=1e-5)
    flatbuffer = convert(model, seq_len=8, isolate=True)
    check_builtin_only(flatbuffer)
    got = TFLiteRunner(flatbuffer)(inputs)
    for key in want:
        np.testing.assert_allclose(got[key], _np(want[key]), atol=1e-4)


def test_flops_and_params_count_per_layer_widths():
    model = _pruned()
    seq = 16
    hidden, inner = 16, [16, 4, 12]
    flops = flops_per_token(model, seq)
    assert flops["projections"] == 8 * hidden * sum(inner)
    assert flops["attention"] == 4 * seq * sum(inner)
    assert flops["ffn"] == 4 * hidden * (24 + 5)  # layer 2 has no FFN
    params = sum(4 * (hidden * a + a) - a + hidden for a in inner)  # qkv+out
    params += hidden * 24 + 24 + 24 * hidden + hidden
    params += hidden * 5 + 5 + 5 * hidden + hidden
    params += 4 * 2 * hidden  # attention + FFN layernorms of layers 0, 1
    params += 2 * hidden  # attention layernorm of layer 2
    params += (97 + 32 + 2) * hidden + 2 * hidden + hidden * hidden + hidden
    assert model.count_params() == params
    assert check_flops(model, seq_len=seq)["ok"]


# --- TrimBERT from a trained model ------------------------------------------

def test_to_trimbert_inherits_weights_and_matches_the_preset():
    source = _source("bert_mini", num_layers=6)
    small = to_trimbert(source)
    preset = trimzoo.models.create("trimbert_mini", **WIDE, num_layers=6)
    assert architecture(small.get_config()) == architecture(
        preset.get_config())
    assert small.attention_normalizer == "sigmoid"
    old, new = get_state(source), get_state(small)
    assert set(new) < set(old)
    removed = set(old) - set(new)
    assert {n for n in removed if "ffn." in n} == {
        f"layer.{i}.ffn.{p}.{k}" for i in (0, 1, 3, 4)
        for p in ("intermediate", "output") for k in ("kernel", "bias")}
    for name in new:
        np.testing.assert_array_equal(new[name], old[name])
    # Keeping the source's FFNs, layernorms and normaliser is the identity.
    inputs = random_inputs()
    _assert_same(to_trimbert(source, ffn_every=None, normalizer=None,
                             layer_norm=None)(inputs), source(inputs))
    # Each change alone changes the function.
    for kwargs in (dict(ffn_every=2, normalizer=None, layer_norm=None),
                   dict(ffn_every=None, normalizer="relu", layer_norm=None),
                   dict(ffn_every=None, normalizer=None,
                        layer_norm="one_per_block")):
        out = to_trimbert(source, **kwargs)(inputs)["sequence_output"]
        assert np.abs(_np(out) - _np(source(inputs)["sequence_output"])
                      ).max() > 1e-3, kwargs


# --- Bad input --------------------------------------------------------------

@pytest.mark.parametrize("kwargs,match", [
    (dict(heads=[[4], None, None]), r"heads of layer 0.*\[0, 3\]"),
    (dict(heads=[[], None, None]), "keeps no heads"),
    (dict(heads=[[0, 0], None, None]), "duplicates"),
    (dict(heads=[[0]]), "1 entries but 3 layers are kept"),
    (dict(layers=[0, 2], heads={1: [0]}), "not kept"),
    (dict(ffn_neurons={0: []}), "ffn_layers"),
    (dict(ffn_neurons={0: [24]}), r"\[0, 23\]"),
    (dict(layers=[]), "keep at least one"),
    (dict(layers=[3]), r"layers.*\[0, 2\]"),
    (dict(hidden_dims=[16]), r"hidden_dims.*\[0, 15\]"),
    (dict(hidden_dims=[1.0]), "hidden_dims"),
    (dict(attention_normalizer="softermax"), "relu_sum"),
    (dict(ffn_layers=(True, False)), "ffn_layers has 2 entries"),
])
def test_extract_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        extract(_source(num_layers=3), **kwargs)


def test_extract_cannot_create_weights():
    source = _source("trimbert_mini", num_layers=3)
    with pytest.raises(ValueError, match="cannot create weights"):
        extract(source, ffn_layers="all")
    with pytest.raises(ValueError, match="cannot create weights"):
        extract(source, layer_norm="all")
    with pytest.raises(ValueError, match="has no FFN"):
        extract(source, ffn_neurons={0: [1]})
    with pytest.raises(TypeError, match="TrimzooBackbone"):
        extract(keras.Sequential([keras.layers.Dense(2)]))
    with pytest.raises(ValueError, match="ffn_every"):
        to_trimbert(source, ffn_every=0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_heads=(4, 4)), "num_heads has 2 entries but num_layers is 3"),
    (dict(num_heads=(4, 0, 4), head_dim=4), "at least one attention head"),
    (dict(intermediate_dim=(24, 0, 24)), "ffn_layers False"),
    (dict(intermediate_dim=(24, -1, 24)), "positive"),
    (dict(num_heads=(4, 2, 4)), "pass head_dim"),
    (dict(num_heads=3), "divisible"),
    (dict(head_dim=0), "head_dim"),
    (dict(num_heads=(4, 2.0, 4), head_dim=4), "positive integers"),
])
def test_per_layer_width_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrimzooBackbone(**{**WIDE, "num_layers": 3, **kwargs})
