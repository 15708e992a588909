"""Sequence pooling and the classifier's pooling option."""

import numpy as np
import pytest

import trimzoo
from trimzoo.layers import SequencePooling
from trimzoo.models import TrimzooClassifier
from conftest import TINY, random_inputs


def _numpy_pool(x, mask, mode):
    out = []
    for row, m in zip(x, mask):
        real = row[m.astype(bool)]
        out.append(real.mean(0) if mode == "mean" else real.max(0))
    return np.stack(out)


@pytest.mark.parametrize("mode", ["mean", "max"])
def test_pooling_matches_numpy_reference(mode):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 5)).astype("float32")
    mask = np.array([[1] * 6, [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], "int32")
    got = np.asarray(SequencePooling(mode)(x, mask))
    np.testing.assert_allclose(got, _numpy_pool(x, mask, mode), atol=1e-6)


def test_cls_pooling_reads_first_token():
    x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    got = np.asarray(SequencePooling("cls")(x, np.ones((2, 3), "int32")))
    np.testing.assert_array_equal(got, x[:, 0])


def test_unknown_pooling_is_rejected():
    with pytest.raises(ValueError, match="valid modes"):
        SequencePooling("sum")
    backbone = trimzoo.models.bert_tiny(**TINY)
    with pytest.raises(ValueError, match="valid modes"):
        TrimzooClassifier(backbone, num_classes=2, pooling="avg")


def _classifier(pooling):
    backbone = trimzoo.models.bert_tiny(**TINY)
    return TrimzooClassifier(backbone, num_classes=3, pooling=pooling,
                             dropout=0.0)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_classifier_pooling_changes_outputs_and_round_trips(pooling):
    inputs = random_inputs()
    cls_model = _classifier("cls")
    model = _classifier(pooling)
    # Same backbone and head weights, different pooling: different logits.
    model.backbone.set_weights(cls_model.backbone.get_weights())
    model.output_dense.set_weights(cls_model.output_dense.get_weights())
    a = np.asarray(cls_model(inputs))
    b = np.asarray(model(inputs))
    assert np.abs(a - b).max() > 1e-4
    # The head reads exactly the pooled sequence output.
    seq = np.asarray(model.backbone(inputs)["sequence_output"])
    pooled = _numpy_pool(seq, inputs["padding_mask"], pooling)
    kernel, bias = model.output_dense.get_weights()
    np.testing.assert_allclose(b, pooled @ kernel + bias, atol=1e-5)
    # get_config round trip keeps the pooling and the outputs.
    clone = TrimzooClassifier.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    assert clone.pooling == pooling
    np.testing.assert_allclose(np.asarray(clone(inputs)), b, atol=1e-6)


def test_mean_pooled_classifier_ignores_padding():
    model = _classifier("mean")
    inputs = random_inputs(batch=1, length=5, pad_last=0)
    padded = {k: np.pad(v, ((0, 0), (0, 3))) for k, v in inputs.items()}
    np.testing.assert_allclose(np.asarray(model(inputs)),
                               np.asarray(model(padded)), atol=1e-5)


def test_pooling_survives_preset_round_trip(tmp_path):
    import keras_hub

    model = _classifier("mean")
    inputs = random_inputs()
    model.save_to_preset(str(tmp_path / "preset"))
    loaded = keras_hub.models.TextClassifier.from_preset(
        str(tmp_path / "preset"))
    assert loaded.pooling == "mean"
    np.testing.assert_allclose(np.asarray(loaded(inputs)),
                               np.asarray(model(inputs)), atol=1e-6)
