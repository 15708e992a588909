"""TrimzooBackbone and the preset registry."""

import inspect

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import trimzoo
from conftest import TINY, random_inputs
from trimzoo.checkpoints import get_state, set_state
from trimzoo.checkpoints.keras_hub_bert import (
    config_from_keras_hub_bert,
    state_from_keras_hub_bert,
)
from trimzoo.models import TrimzooBackbone, create, list_models

ALL_PRESETS = ["bert_tiny", "bert_mini", "bert_base", "bert_large",
               "trimbert_mini", "trimbert_base", "bort", "bort_mini"]


def tiny(name, **overrides):
    """Preset ``name`` with tiny widths; the per-layer structure is kept."""
    config = dict(TINY)
    config.update(overrides)
    return create(name, **config)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_registry_lists_every_preset():
    assert list_models() == ALL_PRESETS
    for name in ALL_PRESETS:
        assert callable(getattr(trimzoo.models, name))


def test_unknown_model_lists_names():
    with pytest.raises(ValueError, match="trimbert_base"):
        create("bert_huge")


def test_overrides_win():
    model = trimzoo.models.bort(num_layers=2, **TINY)
    assert model.num_layers == 2 and model.num_segments == 1
    assert model.layer_norm_epsilon == 1e-5


@pytest.mark.parametrize("name", ALL_PRESETS)
def test_preset_forward_backward_save_load(name, tmp_path):
    model = tiny(name)
    inputs = random_inputs(num_segments=model.num_segments)
    out = model(inputs)
    assert out["sequence_output"].shape == (2, 7, TINY["hidden_dim"])
    assert out["pooled_output"].shape == (2, TINY["hidden_dim"])

    # One gradient step changes the output and touches every weight.
    with tf.GradientTape() as tape:
        out = model(inputs, training=True)
        loss = tf.reduce_mean(out["sequence_output"] ** 2) + tf.reduce_mean(
            out["pooled_output"] ** 2)
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None for g in grads)
    # Position rows beyond the sequence length get no gradient; all others do.
    assert sum(float(tf.reduce_sum(tf.abs(tf.convert_to_tensor(g)))) > 0
               for g in grads) == len(grads)
    before = _np(model(inputs)["sequence_output"])
    keras.optimizers.SGD(0.1).apply_gradients(zip(grads, model.trainable_variables))
    after = _np(model(inputs)["sequence_output"])
    assert np.abs(before - after).max() > 1e-6

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, TrimzooBackbone)
    np.testing.assert_array_equal(
        _np(loaded(inputs)["sequence_output"]), after)
    assert loaded.get_config() == model.get_config()


@pytest.mark.parametrize("name,expected", [
    ("bert_base", 109_482_240),
    pytest.param("bert_large", 335_141_888, marks=pytest.mark.slow),
    ("bort", 76_156_928),
])
def test_exact_parameter_counts(name, expected):
    model = create(name)
    assert model.count_params() == expected
    kh = keras_hub.models.BertBackbone(
        vocabulary_size=model.vocabulary_size, num_layers=model.num_layers,
        num_heads=model.num_heads, hidden_dim=model.hidden_dim,
        intermediate_dim=model.intermediate_dim,
        num_segments=model.num_segments)
    assert kh.count_params() == expected


def test_trimbert_structure():
    model = create("trimbert_base")
    ffn = [block.use_ffn for block in model.transformer_layers]
    assert [i for i, f in enumerate(ffn) if f] == [2, 5, 8, 11]
    assert all(b.attention_normalizer == "sigmoid"
               for b in model.transformer_layers)


def _count_encoder_layernorms(model):
    return sum(
        (b.attention_layer_norm is not None) + (b.ffn_layer_norm is not None)
        for b in model.transformer_layers)


def test_one_per_block_halves_bert_base_layernorms():
    full = create("bert_base")
    half = create("bert_base", layer_norm="one_per_block")
    assert _count_encoder_layernorms(full) == 24
    assert _count_encoder_layernorms(half) == 12
    ln_vars = [v for v in half.weights if "layer_norm" in v.path
               and "transformer_layer" in v.path]
    assert len(ln_vars) == 24  # gamma and beta of 12 layernorms
    assert full.count_params() - half.count_params() == 12 * 2 * 768
    # In a block with an FFN the kept one is the FFN-output layernorm.
    block = half.transformer_layers[0]
    assert block.ffn_layer_norm is not None and block.attention_layer_norm is None
    trim = create("trimbert_base")
    assert _count_encoder_layernorms(trim) == 12
    assert trim.transformer_layers[0].attention_layer_norm is not None


def test_ffn_off_removes_exact_weights():
    h, i = TINY["hidden_dim"], TINY["intermediate_dim"]
    base = tiny("bert_tiny", num_layers=3)
    one_off = tiny("bert_tiny", num_layers=3, ffn_layers=(True, False, True))
    # FFN weights plus its layernorm (gamma, beta).
    assert base.count_params() - one_off.count_params() == 2 * h * i + h + i + 2 * h
    # Keeping the layernorm count equal: only the FFN's weights go.
    keep_ln = tiny("bert_tiny", num_layers=3, ffn_layers=(True, False, True),
                   attention_norm=(True, True, True), ffn_norm=(True, False, True))
    base_no_ffn_ln = tiny("bert_tiny", num_layers=3,
                          ffn_norm=(True, False, True))
    assert base_no_ffn_ln.count_params() - keep_ln.count_params() == 2 * h * i + h + i
    assert not any("ffn" in v.path for v in
                   one_off.transformer_layers[1].weights)


@pytest.mark.parametrize("option,value", [
    ("attention_normalizer", "relu"),
    ("attention_normalizer", "relu_sum"),
    ("attention_normalizer", "sigmoid"),
    ("ffn_layers", "every_2"),
    ("layer_norm", "one_per_block"),
    ("layer_norm", "none"),
    ("activation", "gelu_approximate"),
])
def test_every_option_changes_outputs(option, value):
    """Same weights where they exist, a different computation."""
    reference = tiny("bert_tiny", dropout=0.0)
    variant = tiny("bert_tiny", dropout=0.0, **{option: value})
    # Trained-like weights: at initialisation a layernorm of an already
    # normalised stream is nearly the identity, which would hide its removal.
    rng = np.random.default_rng(0)
    ref_state = {k: rng.normal(0, 0.3, v.shape).astype("float32")
                 for k, v in get_state(reference).items()}
    set_state(reference, ref_state)
    set_state(variant, {k: ref_state[k] for k in get_state(variant)})
    inputs = random_inputs()
    diff = np.abs(_np(reference(inputs)["sequence_output"])
                  - _np(variant(inputs)["sequence_output"])).max()
    # The two gelu forms differ by at most ~1e-3 per activation.
    threshold = 2e-5 if option == "activation" else 1e-3
    assert diff > threshold, (option, value, diff)


@pytest.mark.parametrize("normalizer", ["softmax", "relu", "relu_sum", "sigmoid"])
def test_padding_invariance(normalizer):
    model = tiny("trimbert_mini", attention_normalizer=normalizer, dropout=0.0)
    inputs = random_inputs(batch=2, length=6, pad_last=0)
    padded = {k: np.pad(v, ((0, 0), (0, 5))) for k, v in inputs.items()}
    short = model(inputs)
    long = model(padded)
    np.testing.assert_allclose(_np(long["sequence_output"])[:, :6],
                               _np(short["sequence_output"]), atol=1e-5)
    np.testing.assert_allclose(_np(long["pooled_output"]),
                               _np(short["pooled_output"]), atol=1e-5)


def test_variable_length_and_batch():
    model = tiny("bort_mini")
    for batch, length in [(1, 3), (4, 17), (2, 32)]:
        out = model(random_inputs(batch, length, num_segments=1, pad_last=0))
        assert out["sequence_output"].shape == (batch, length, TINY["hidden_dim"])


@pytest.mark.parametrize("name", ["bert_tiny", "bert_mini"])
def test_matches_keras_hub_bert(name):
    """Identical weights + tanh gelu: equal to keras-hub's BertBackbone."""
    config = trimzoo.models.preset_config(name)
    kh = keras_hub.models.BertBackbone(
        vocabulary_size=1000, num_layers=config["num_layers"],
        num_heads=config["num_heads"], hidden_dim=config["hidden_dim"],
        intermediate_dim=config["intermediate_dim"], max_sequence_length=64)
    ours = TrimzooBackbone(**config_from_keras_hub_bert(kh))
    set_state(ours, state_from_keras_hub_bert(kh))
    inputs = random_inputs(batch=3, length=20, vocabulary_size=1000, pad_last=5)
    want = kh(inputs)
    got = ours(inputs)
    real = inputs["padding_mask"].astype(bool)
    np.testing.assert_allclose(_np(got["sequence_output"])[real],
                               _np(want["sequence_output"])[real], atol=1e-5)
    np.testing.assert_allclose(_np(got["pooled_output"]),
                               _np(want["pooled_output"]), atol=1e-5)


def test_config_complete_and_roundtrip():
    params = [p for p in inspect.signature(TrimzooBackbone.__init__).parameters
              if p not in ("self", "kwargs", "dtype")]
    kwargs = dict(TINY, num_layers=3, dropout=0.05, num_segments=3,
                  attention_normalizer=("relu", "softmax", "sigmoid"),
                  ffn_layers=(False, True, True), layer_norm="one_per_block",
                  attention_norm=(True, False, True), ffn_norm=(False, True, False),
                  activation="gelu_approximate", layer_norm_epsilon=1e-6,
                  num_heads=(2, 1, 3), intermediate_dim=(24, 8, 12),
                  head_dim=4)
    assert set(params) == set(kwargs)
    model = TrimzooBackbone(**kwargs)
    config = model.get_config()
    assert set(params) <= set(config)
    for key, value in kwargs.items():
        want = list(value) if isinstance(value, tuple) else value
        assert config[key] == want, key
    clone = TrimzooBackbone.from_config(config)
    clone.set_weights(model.get_weights())
    inputs = random_inputs(num_segments=3)
    np.testing.assert_array_equal(_np(model(inputs)["sequence_output"]),
                                  _np(clone(inputs)["sequence_output"]))
    assert clone.layer_options == model.layer_options


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_layers=2, ffn_layers=(True,)), "ffn_layers has 1 entries"),
    (dict(num_layers=2, ffn_layers="every_x"), "every_N"),
    (dict(attention_normalizer="softermax"), "relu_sum"),
    (dict(attention_normalizer=("relu",), num_layers=2), "attention_normalizer"),
    (dict(hidden_dim=30, num_heads=4), "divisible"),
    (dict(layer_norm="half"), "one_per_block"),
    (dict(num_layers=2, ffn_layers=(True, False), ffn_norm=(True, True)),
     "no FFN"),
    (dict(activation="gelu_fast"), "gelu_approximate"),
    (dict(num_layers=0), "num_layers"),
    (dict(dropout=1.5), "dropout"),
    (dict(num_layers=2, attention_norm=(1, 0)), "booleans"),
])
def test_contradictions_rejected(kwargs, match):
    config = dict(TINY, num_layers=2, **{k: v for k, v in kwargs.items()
                                         if k != "num_layers"})
    config["num_layers"] = kwargs.get("num_layers", 2)
    with pytest.raises(ValueError, match=match):
        TrimzooBackbone(**config)


@pytest.mark.parametrize("mutate,match", [
    (lambda x: {k: v for k, v in x.items() if k != "segment_ids"}, "missing"),
    (lambda x: {**x, "labels": x["token_ids"]}, "unexpected"),
    (lambda x: {**x, "token_ids": x["token_ids"][0]}, "rank 2"),
    (lambda x: {**x, "token_ids": x["token_ids"].astype("float32")},
     "'token_ids' must hold integers"),
    (lambda x: {**x, "token_ids": x["token_ids"] + 1000}, "outside"),
    (lambda x: {**x, "segment_ids": x["segment_ids"] + 2}, "segment_ids"),
    (lambda x: {k: np.pad(v, ((0, 0), (0, 40))) for k, v in x.items()},
     "max_sequence_length"),
    (lambda x: x["token_ids"], "dict"),
])
def test_bad_inputs_named(mutate, match):
    model = tiny("bert_tiny")
    with pytest.raises(ValueError, match=match):
        model(mutate(random_inputs()))


def test_mixed_precision_and_jit():
    for policy in ("mixed_bfloat16", "mixed_float16"):
        model = tiny("trimbert_mini", dtype=policy)
        out = model(random_inputs())
        assert keras.backend.standardize_dtype(
            out["sequence_output"].dtype) == policy.split("_")[1]
        assert np.isfinite(_np(out["sequence_output"]).astype("float32")).all()
    model = tiny("trimbert_mini", dropout=0.0)
    inputs = random_inputs()
    eager = _np(model(inputs)["sequence_output"])
    jitted = tf.function(model, jit_compile=True)(inputs)["sequence_output"]
    np.testing.assert_allclose(_np(jitted), eager, atol=1e-5)


def test_fit_in_mirrored_strategy(two_cpu_strategy):
    strategy = two_cpu_strategy
    with strategy.scope():
        backbone = tiny("trimbert_mini")
        pooled = backbone.output["pooled_output"]
        logits = keras.layers.Dense(2)(pooled)
        model = keras.Model(backbone.input, logits)
        model.compile(optimizer="adam", jit_compile=False,
                      loss=keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True))
    x = random_inputs(batch=8, length=9)
    y = np.arange(8) % 2
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_keras_hub_preset_roundtrip(tmp_path):
    model = tiny("trimbert_mini")
    model.save_to_preset(str(tmp_path / "preset"))
    loaded = keras_hub.models.Backbone.from_preset(str(tmp_path / "preset"))
    assert isinstance(loaded, TrimzooBackbone)
    inputs = random_inputs()
    np.testing.assert_array_equal(_np(loaded(inputs)["sequence_output"]),
                                  _np(model(inputs)["sequence_output"]))
