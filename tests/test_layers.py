"""Layers: normalisers, attention, encoder block; checked against NumPy."""

import inspect

import keras
import numpy as np
import pytest

from numpy_reference import block as numpy_block
from numpy_reference import normalize as numpy_normalize
from trimzoo.checkpoints import get_state
from trimzoo.layers import NORMALIZERS, EncoderBlock, SelfAttention
from trimzoo.layers.normalizers import get_activation, get_normalizer
from trimzoo.models import TrimzooBackbone

NAMES = sorted(NORMALIZERS)


def _scores_and_mask(seed=0):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(3, 2, 5, 6)).astype("float32") * 3
    mask = np.ones((3, 6), bool)
    mask[1, 4:] = False
    mask[2, 1:] = False  # a single real key
    return scores, mask


@pytest.mark.parametrize("name", NAMES)
def test_normalizer_rows(name):
    scores, mask = _scores_and_mask()
    weights = keras.ops.convert_to_numpy(
        get_normalizer(name)(scores, mask[:, None, None, :]))
    assert (weights >= 0).all()
    masked = np.broadcast_to(~mask[:, None, None, :], weights.shape)
    assert (weights[masked] == 0).all(), "masked keys must get exactly zero"
    if name in ("softmax", "relu_sum"):
        sums = weights.sum(-1)
        # relu_sum rows whose scores are all <= 0 sum to 0, not 1.
        positive = (np.maximum(scores, 0) * mask[:, None, None, :]).sum(-1) > 0
        expected = np.ones_like(sums) if name == "softmax" else positive
        np.testing.assert_allclose(sums, expected, atol=1e-5)
    np.testing.assert_allclose(
        weights, numpy_normalize(scores, mask, name), atol=1e-6)


def test_normalizers_differ():
    scores, mask = _scores_and_mask()
    outs = [keras.ops.convert_to_numpy(get_normalizer(n)(scores, mask[:, None, None, :]))
            for n in NAMES]
    for i in range(len(outs)):
        for j in range(i + 1, len(outs)):
            assert np.abs(outs[i] - outs[j]).max() > 1e-2, (NAMES[i], NAMES[j])


def test_unknown_names_list_valid_values():
    with pytest.raises(ValueError, match="relu_sum"):
        get_normalizer("sparsemax")
    with pytest.raises(ValueError, match="gelu_approximate"):
        get_activation("swish2")
    with pytest.raises(ValueError, match="softmax"):
        SelfAttention(8, 2, normalizer="nope")


def test_gelu_exact_vs_approximate():
    x = np.linspace(-4, 4, 101).astype("float32")
    exact = keras.ops.convert_to_numpy(get_activation("gelu")(x))
    approx = keras.ops.convert_to_numpy(get_activation("gelu_approximate")(x))
    assert 1e-4 < np.abs(exact - approx).max() < 1e-2


def test_attention_rejects_bad_heads():
    with pytest.raises(ValueError, match="divisible"):
        SelfAttention(10, 3)


def test_block_rejects_ffn_norm_without_ffn():
    with pytest.raises(ValueError, match="use_ffn"):
        EncoderBlock(8, 2, 16, use_ffn=False, ffn_norm=True)


BLOCK_CASES = [
    # (use_ffn, attention_norm, ffn_norm)
    (True, True, True),     # BERT
    (True, False, True),    # one_per_block with FFN
    (False, True, False),   # one_per_block without FFN
    (False, False, False),  # no layernorm at all
    (True, True, False),
]


@pytest.mark.parametrize("normalizer", NAMES)
@pytest.mark.parametrize("use_ffn,attention_norm,ffn_norm", BLOCK_CASES)
@pytest.mark.parametrize("activation", ["gelu", "gelu_approximate"])
def test_block_matches_numpy(normalizer, use_ffn, attention_norm, ffn_norm,
                             activation):
    """A one-layer backbone's block equals the NumPy reference (1e-5)."""
    backbone = TrimzooBackbone(
        vocabulary_size=50, num_layers=1, num_heads=4, hidden_dim=16,
        intermediate_dim=24, dropout=0.0, attention_normalizer=normalizer,
        ffn_layers=(use_ffn,), attention_norm=(attention_norm,),
        ffn_norm=(ffn_norm,), activation=activation)
    state = get_state(backbone)
    # Randomise layernorm parameters so that they matter in the check.
    rng = np.random.default_rng(0)
    for name in state:
        if ".norm" in name or "_norm" in name:
            state[name] = rng.normal(1.0, 0.3, state[name].shape).astype("float32")
    from trimzoo.checkpoints import set_state
    set_state(backbone, state)
    block = backbone.transformer_layers[0]
    x = rng.normal(size=(2, 6, 16)).astype("float32")
    mask = np.ones((2, 6), "int32")
    mask[1, 3:] = 0
    got = keras.ops.convert_to_numpy(block(x, padding_mask=mask))
    want = numpy_block(x.astype(np.float64), mask, state, "layer.0", 4,
                       normalizer, use_ffn, attention_norm, ffn_norm,
                       approximate=activation == "gelu_approximate")
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def _config_roundtrip(layer_cls, kwargs, build_input):
    layer = layer_cls(**kwargs)
    config = layer.get_config()
    params = [p for p in inspect.signature(layer_cls.__init__).parameters
              if p not in ("self", "kwargs")]
    assert set(params) <= set(config), set(params) - set(config)
    for key, value in kwargs.items():
        assert config[key] == value or key == "kernel_initializer"
    clone = layer_cls.from_config(config)
    layer(build_input)
    clone(build_input)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(build_input)),
        keras.ops.convert_to_numpy(clone(build_input)), atol=1e-6)


def test_attention_config_complete():
    _config_roundtrip(
        SelfAttention,
        dict(hidden_dim=8, num_heads=4, normalizer="sigmoid", dropout=0.2,
             kernel_initializer="glorot_uniform"),
        np.ones((1, 3, 8), "float32"))


def test_block_config_complete():
    _config_roundtrip(
        EncoderBlock,
        dict(hidden_dim=8, num_heads=2, intermediate_dim=12, use_ffn=True,
             attention_norm=False, ffn_norm=True, attention_normalizer="relu",
             activation="gelu_approximate", dropout=0.3,
             layer_norm_epsilon=1e-5, kernel_initializer="glorot_uniform"),
        np.random.default_rng(0).normal(size=(1, 3, 8)).astype("float32"))


def test_attention_weights_are_the_ones_applied():
    """``attention_weights`` (what attention distillation matches) are the
    weights ``call`` applies: contexts from them and the value projection,
    through the output projection, give the layer's output (1e-5)."""
    layer = SelfAttention(hidden_dim=8, num_heads=2, normalizer="sigmoid")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 8)).astype("float32")
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]])
    out = np.asarray(layer(x, padding_mask=mask))
    weights = np.asarray(layer.attention_weights(x, padding_mask=mask))
    kernel, bias = (np.asarray(w) for w in layer.qkv.weights)
    value = (x @ kernel + bias).reshape(2, 4, 6, 4)[:, :, 4:]  # heads 4, 5
    context = np.einsum("bhqk,bkhd->bqhd", weights, value).reshape(2, 4, 8)
    kernel, bias = (np.asarray(w) for w in layer.output_dense.weights)
    np.testing.assert_allclose(context @ kernel + bias, out, atol=1e-5)
    assert weights.shape == (2, 2, 4, 4) and weights[0, :, :, 3].max() == 0
