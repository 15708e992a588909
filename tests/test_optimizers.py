"""Layer-wise learning-rate decay: each variable moves by exactly its
multiplier times what plain AdamW moves it (checked on Adam's first step,
whose update is ``lr * g / (|g| + eps)`` per element)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import trimzoo
from trimzoo.models import TrimzooClassifier
from trimzoo.training.optimizers import (LayerDecayAdamW, create_optimizer,
                                         layer_decay_multiplier)


def _classifier():
    keras.utils.set_random_seed(0)
    backbone = trimzoo.models.bert_base(
        vocabulary_size=50, num_layers=3, hidden_dim=16, num_heads=2,
        intermediate_dim=32, dropout=0.0)
    return TrimzooClassifier(backbone, num_classes=2, dropout=0.0)


def _one_step(model, optimizer):
    rng = np.random.default_rng(0)
    x = {"token_ids": rng.integers(1, 50, (4, 8)).astype("int32"),
         "segment_ids": np.zeros((4, 8), "int32"),
         "padding_mask": np.ones((4, 8), "int32")}
    y = np.array([0, 1, 1, 0])
    before = [v.numpy().copy() for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(
            y, model(x), from_logits=True)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return {v.path: v.numpy() - b
            for v, b in zip(model.trainable_variables, before)}


def test_multipliers_follow_depth():
    paths = {"token_embedding/embeddings": 0.5 ** 4,
             "embeddings_layer_norm/gamma": 0.5 ** 4,
             "transformer_layer_0/attention/qkv/kernel": 0.5 ** 3,
             "transformer_layer_2/ffn_output/bias": 0.5,
             "pooled_dense/kernel": 1.0, "logits/bias": 1.0}
    for path, expected in paths.items():
        assert layer_decay_multiplier(path, 3, 0.5) == expected


def test_each_variable_moves_by_its_multiplier():
    common = dict(total_steps=10, weight_decay=0.0, clipnorm=0.0,
                  epsilon=1e-12)
    plain = _one_step(_classifier(), create_optimizer(1e-3, **common))
    decayed = _one_step(_classifier(), create_optimizer(
        1e-3, layer_decay=0.5, num_layers=3, **common))
    assert set(plain) == set(decayed)
    checked = set()
    for path, delta in plain.items():
        moved = np.abs(delta) > 1e-9
        if not moved.any():
            continue
        ratio = decayed[path][moved] / delta[moved]
        np.testing.assert_allclose(
            ratio, layer_decay_multiplier(path, 3, 0.5), rtol=1e-3)
        checked.add(layer_decay_multiplier(path, 3, 0.5))
    assert checked == {1.0, 0.5, 0.25, 0.125, 0.0625}


def test_bad_layer_decay_is_refused():
    with pytest.raises(ValueError, match="layer_decay"):
        LayerDecayAdamW(3, 0.0, learning_rate=1e-3)
    with pytest.raises(ValueError, match="adamw"):
        create_optimizer(1e-3, 10, optimizer="lamb", layer_decay=0.8,
                         num_layers=3)
    with pytest.raises(ValueError, match="num_layers"):
        create_optimizer(1e-3, 10, layer_decay=0.8)
