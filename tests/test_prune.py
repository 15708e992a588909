"""Importance scores and structured pruning (trimzoo.compression)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import trimzoo
from conftest import TINY, random_inputs
from helpers import clone_model
from trimzoo.checkpoints import get_state
from trimzoo.compression import (
    ImportanceLoss,
    importance_scores,
    prune,
    prune_checkpoint,
    prune_counts,
    select,
)
from trimzoo.models import (
    TrimzooBackbone,
    TrimzooClassifier,
    TrimzooMaskedLM,
    extract,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HF_TINY_BERT = os.path.join(ROOT, "tests", "fixtures", "hf_tiny_bert")
# The hidden width (10) differs from every other axis size (heads * head
# size 12, FFN 14, vocabulary 97, positions 32, segments 2, classes 3), so
# the axes that run over hidden dimensions are those of size 10.
HIDDEN = 10
ODD = dict(vocabulary_size=97, num_layers=2, num_heads=3, head_dim=4,
           hidden_dim=HIDDEN, intermediate_dim=14, max_sequence_length=32,
           dropout=0.0)


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _randomise(model, scale=0.4, seed=0):
    rng = np.random.default_rng(seed)
    for var in model.weights:
        base = 1.0 if var.path.endswith("gamma") else 0.0
        var.assign(base + rng.normal(0, scale, var.shape))
    return model


def _mlm64():
    return _randomise(TrimzooMaskedLM(TrimzooBackbone(**ODD,
                                                      dtype="float64")))


def _finite_difference(loss, prepared, cells, eps=1e-3):
    """d loss / d s at s = 1, where s scales the weight entries ``cells``
    (``[(variable, boolean mask)]``): central differences at ``eps`` and
    ``eps / 2``, Richardson-extrapolated (error O(eps^4))."""
    originals = [_np(var).copy() for var, _ in cells]

    def at(scale):
        for (var, mask), value in zip(cells, originals):
            var.assign(np.where(mask, value * scale, value))
        return float(loss.loss(prepared))

    def central(h):
        return (at(1 + h) - at(1 - h)) / (2 * h)

    diff = (4 * central(eps / 2) - central(eps)) / 3
    for (var, _), value in zip(cells, originals):
        var.assign(value)
    return diff


def _rows(var, index, axis):
    mask = np.zeros(var.shape, bool)
    np.moveaxis(mask, axis, 0)[index] = True
    return mask


# The backbone computes in float64 end to end; keras-hub's masked-LM head
# projects onto the vocabulary in float32, which limits the finite
# differences' precision there.
@pytest.mark.parametrize("kind,rtol", [("backbone", 1e-6),
                                       ("masked_lm", 1e-3)])
def test_gradient_scores_equal_finite_differences(kind, rtol):
    model = _mlm64()
    if kind == "backbone":
        model = model.backbone
    element = random_inputs(batch=3, length=9, seed=1)
    scores = importance_scores(model, [element], seed=7)
    loss = ImportanceLoss(model, seed=7)
    prepared = loss.prepare(element)
    for i, block in enumerate(model.transformer_layers if kind == "backbone"
                              else model.backbone.transformer_layers):
        out = block.attention.output_dense.kernel
        for h in range(3):
            fd = _finite_difference(loss, prepared, [
                (out, _rows(out, slice(4 * h, 4 * h + 4), 0))])
            np.testing.assert_allclose(scores["heads"][i][h], abs(fd),
                                       rtol=rtol)
        for n in (0, 5, 13):
            w1, b1 = block.ffn_intermediate.kernel, block.ffn_intermediate.bias
            into = _finite_difference(loss, prepared, [
                (w1, _rows(w1, n, 1)), (b1, _rows(b1, n, 0))])
            w2 = block.ffn_output.kernel
            out_fd = _finite_difference(loss, prepared, [
                (w2, _rows(w2, n, 0))])
            np.testing.assert_allclose(scores["ffn"][i][n],
                                       abs(into) + abs(out_fd), rtol=rtol)
    for d in (0, 3, 9):
        cells = []
        for var in model.weights:
            mask = np.zeros(var.shape, bool)
            for axis, size in enumerate(var.shape):
                if size == HIDDEN:
                    mask |= _rows(var, d, axis)
            if mask.any():
                cells.append((var, mask))
        fd = _finite_difference(loss, prepared, cells)
        np.testing.assert_allclose(scores["hidden"][d], abs(fd), rtol=rtol)


def test_output_projection_gradient_equals_the_head_gate_gradient():
    block = _randomise(TrimzooBackbone(**ODD)).transformer_layers[0]
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 6, HIDDEN)),
                    tf.float32)
    gate = tf.Variable(tf.ones((3,)))
    target = tf.constant(np.random.default_rng(3).normal(size=(2, 6, HIDDEN)),
                         tf.float32)
    kernel = block.attention.output_dense.kernel
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum((block(x, head_mask=gate) - target) ** 2)
    d_gate, d_kernel = tape.gradient(loss, [gate, kernel])
    from_kernel = (_np(kernel) * d_kernel.numpy()).reshape(3, 4, -1).sum(
        (1, 2))
    np.testing.assert_allclose(from_kernel, d_gate.numpy(), rtol=1e-4)


def test_classifier_loss_is_the_task_cross_entropy():
    backbone = _randomise(TrimzooBackbone(**ODD))
    model = TrimzooClassifier(backbone, num_classes=3)
    inputs, labels = random_inputs(batch=4), np.array([0, 2, 1, 1])
    loss = ImportanceLoss(model)
    logits = _np(model(inputs)).astype("float64")
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    want = -logp[np.arange(4), labels].mean()
    np.testing.assert_allclose(float(loss.loss(loss.prepare(
        (inputs, labels)))), want, rtol=1e-5)
    with pytest.raises(ValueError, match="labelled data"):
        loss.prepare(inputs)


def test_corruption_touches_only_real_non_special_tokens():
    model = TrimzooBackbone(**ODD)
    inputs = random_inputs(batch=3, length=12, pad_last=5)
    loss = ImportanceLoss(model, mask_token_id=96, mask_rate=0.3, seed=0)
    corrupted, _ = loss.prepare(inputs)
    changed = corrupted["token_ids"] != inputs["token_ids"]
    assert changed.any() and (corrupted["token_ids"][changed] == 96).all()
    assert not changed[:, 0].any() and not changed[-1, 6:].any()
    assert not changed[:2, -1].any()  # last real token ([SEP])


def _masked_source(model, heads, neurons):
    masked = clone_model(model)
    for i, block in enumerate(masked.backbone.transformer_layers):
        kernel = _np(block.attention.output_dense.kernel).copy()
        for h in set(range(block.attention.num_heads)) - set(heads[i]):
            kernel[h * 4:(h + 1) * 4] = 0.0
        block.attention.output_dense.kernel.assign(kernel)
        if neurons[i] is not None:
            kernel = _np(block.ffn_output.kernel).copy()
            kernel[sorted(set(range(kernel.shape[0])) - set(neurons[i]))] = 0
            block.ffn_output.kernel.assign(kernel)
    return masked


def test_pruned_classifier_equals_the_masked_source():
    backbone = _randomise(trimzoo.models.create(
        "trimbert_mini", **dict(TINY, num_heads=4, dropout=0.0),
        num_layers=3))
    model = TrimzooClassifier(backbone, num_classes=3, dropout=0.0)
    data = [(random_inputs(seed=s), np.array([s % 3, (s + 1) % 3]))
            for s in range(3)]
    small, report = prune(model, heads=[1, 2, 3], ffn=0.5, data=data,
                          return_scores=True)
    assert isinstance(small, TrimzooClassifier)
    kept = report["kept"]
    assert [len(h) for h in kept["heads"]] == [3, 2, 1]
    assert [None if n is None else len(n) for n in kept["ffn_neurons"]] == [
        None, None, 12]
    want = _masked_source(model, kept["heads"], kept["ffn_neurons"])
    inputs = random_inputs(seed=9)
    np.testing.assert_allclose(_np(small(inputs)), _np(want(inputs)),
                               atol=1e-5)
    # The kept heads are the best-scoring ones (scores normalised per
    # layer), and the report is valid JSON.
    for layer, scores in enumerate(report["scores"]["heads"]):
        np.testing.assert_allclose(np.linalg.norm(scores), 1.0, rtol=1e-6)
        worst = min(scores[h] for h in kept["heads"][layer])
        assert all(scores[h] <= worst for h in range(4)
                   if h not in kept["heads"][layer])
    assert json.loads(json.dumps(report))["params_after"] == (
        small.count_params()) < report["params_before"]


def test_magnitude_importance_ranks_by_weight_norms():
    backbone = _randomise(TrimzooBackbone(**ODD))
    state = get_state(backbone)
    small, report = prune(backbone, heads=1, ffn=4, hidden=3,
                          importance="magnitude", return_scores=True)
    for i in range(2):
        p = f"layer.{i}."
        cols = [np.r_[4 * h:4 * h + 4] for h in range(3)]
        norms = np.array([np.sqrt(sum(
            (state[p + f"attention.{part}.kernel"][:, c] ** 2).sum()
            + (state[p + f"attention.{part}.bias"][c] ** 2).sum()
            for part in ("query", "key", "value"))
            + (state[p + "attention.output.kernel"][c] ** 2).sum())
            for c in cols])
        np.testing.assert_allclose(report["scores"]["heads"][i],
                                   norms / np.linalg.norm(norms), rtol=1e-5)
        assert report["kept"]["heads"][i] == sorted(np.argsort(norms)[1:])
        neurons = np.sqrt((state[p + "ffn.intermediate.kernel"] ** 2).sum(0)
                          + state[p + "ffn.intermediate.bias"] ** 2
                          + (state[p + "ffn.output.kernel"] ** 2).sum(1))
        assert report["kept"]["ffn_neurons"][i] == sorted(
            np.argsort(neurons)[4:])
    assert small.hidden_dim == 7 and small.num_heads == 2
    assert small.intermediate_dim == 10


def test_global_scope_ranks_across_layers_and_keeps_one_head_per_layer():
    scores = [np.array([0.1, 0.2, 0.9]), np.array([0.3, 0.05, 0.01]),
              None]
    assert select(scores, 0.5) == [[1, 2], [0], None]
    assert select(scores, 0.8) == [[2], [0], None]
    assert select([np.array([3.0, 1.0, 2.0])], [1]) == [[0, 2]]
    assert select([np.array([1.0, 1.0, 1.0])], [1]) == [[0, 1]]
    backbone = _randomise(TrimzooBackbone(**ODD))
    small = prune(backbone, heads=0.5, scope="global",
                  importance="magnitude")
    assert sum(o["num_heads"] for o in small.layer_options) == 3
    assert all(o["num_heads"] >= 1 for o in small.layer_options)


def test_prune_counts():
    assert prune_counts("heads", 0.5, [4, 3, 1]) == [2, 1, 0]
    assert prune_counts("heads", 0.99, [4, 3]) == [3, 2]
    assert prune_counts("ffn", 0.5, [8, 0, 8]) == [4, 0, 4]
    assert prune_counts("ffn", [2, None, 1], [8, 0, 8]) == [2, 0, 1]
    assert prune_counts("heads", 2, [4, 3]) == [2, 2]
    assert prune_counts("heads", 0.5, [4, 3], scope="global") == 0.5
    assert prune_counts("heads", None, [4, 3]) == [0, 0]


@pytest.mark.parametrize("kwargs,match", [
    (dict(heads=1.0), "would prune everything"),
    (dict(heads=3), "would prune everything"),
    (dict(heads=[1, 1, 1]), "3 entries but the model has 2 layers"),
    (dict(heads=[1, -1]), "non-negative"),
    (dict(heads=2, scope="global"), "fraction"),
    (dict(heads=0.5, scope="model"), "Unknown scope"),
    (dict(heads=0.5, importance="fisher"), "magnitude"),
    (dict(heads=0.5), "needs data"),
    (dict(heads=object()), "fraction, an int"),
])
def test_prune_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        prune(TrimzooBackbone(**ODD), **kwargs)


def test_prune_errors_on_layers_without_ffn_and_bad_data():
    backbone = TrimzooBackbone(**{**ODD, "ffn_layers": (True, False)})
    with pytest.raises(ValueError, match="layer 1 has no FFN"):
        prune(backbone, ffn=[1, 1], importance="magnitude")
    with pytest.raises(ValueError, match="no batches"):
        prune(backbone, heads=1, data=[])
    with pytest.raises(ValueError, match="input dicts"):
        prune(backbone, heads=1, data=[np.zeros(3)])
    with pytest.raises(TypeError, match="TrimzooBackbone"):
        prune(keras.Sequential([keras.layers.Dense(2)]), heads=1)


def test_pruning_nothing_is_the_identity():
    model = _randomise(TrimzooBackbone(**ODD))
    inputs = random_inputs()
    for a, b in zip(prune(model).get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        _np(extract(model)(inputs)["sequence_output"]),
        _np(model(inputs)["sequence_output"]))


@pytest.mark.slow
def test_tool_writes_a_loadable_pruned_folder(tmp_path):
    data = tmp_path / "sentences.txt"
    data.write_text("the quick brown fox jumps.\nhello, world again\n"
                    "a naïve café!\n", encoding="utf-8")
    out = tmp_path / "out"
    tool = os.path.join(ROOT, "tools", "prune.py")
    result = subprocess.run(
        [sys.executable, tool, f"--checkpoint={HF_TINY_BERT}",
         f"--output={out}", "--heads=1", "--ffn=0.5", "--hidden=0.25",
         f"--data={data}", "--sequence_length=16"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    note = json.loads((out / "prune.json").read_text())
    assert note["num_examples"] == 3 and note["importance"] == "gradient"
    backbone, tokenizer = trimzoo.from_pretrained(str(out))
    source, _ = trimzoo.from_pretrained(HF_TINY_BERT)
    assert [len(h) for h in note["kept"]["heads"]] == [
        o["num_heads"] for o in backbone.layer_options] == [
        n - 1 for n in [source.num_heads] * source.num_layers]
    assert len(note["kept"]["hidden_dims"]) == backbone.hidden_dim == (
        source.hidden_dim - round(source.hidden_dim * 0.25))
    assert note["params_after"] == backbone.count_params()
    assert note["params_before"] == source.count_params()
    assert "parameters:" in result.stdout
    bad = subprocess.run(
        [sys.executable, tool, f"--checkpoint={HF_TINY_BERT}",
         f"--output={tmp_path / 'x'}", "--heads=1.0",
         "--importance=magnitude"],
        capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "prune everything" in bad.stderr


def test_pruning_a_classifier_folder_scores_its_own_task(tmp_path):
    import keras_hub

    from helpers import make_classifier_run
    from trimzoo.data.model_data import recorded_task

    run = make_classifier_run(tmp_path)
    lines = []
    out = str(tmp_path / "pruned")
    report = prune_checkpoint(os.path.join(run, "best"), out, heads=1,
                              ffn=0.5, batch_size=2, sequence_length=16,
                              progress=lines.append)
    # The importance data are the task's own files, said out loud.
    assert report["kind"] == "classifier"
    assert report["data"].startswith("task files, split train")
    assert report["num_examples"] == 6 and report["num_batches"] == 3
    assert lines[0].startswith("Importance data: task files, split train")
    assert [line.strip() for line in lines[1:]] == [
        f"importance: batch {i}/3" for i in (1, 2, 3)]
    small = keras_hub.models.TextClassifier.from_preset(out)
    assert os.path.isfile(os.path.join(out, "task.json"))
    assert small.backbone.num_heads == 1 and small.num_classes == 3
    assert list(small.label_names) == ["business", "science", "sport"]
    assert small.predict(["stocks fell"], verbose=0).shape == (1, 3)
    assert recorded_task(out)["task"] == "files"
    note = json.loads(open(os.path.join(out, "prune.json")).read())
    assert note["data"] == report["data"]


def test_prune_without_data_names_the_data_flag(tmp_path):
    with pytest.raises(ValueError, match="--data=FILE"):
        prune_checkpoint(HF_TINY_BERT, str(tmp_path / "out"), heads=1)
