"""Strings in: preprocessors, their preset round trips, string-in fit under
a 2-replica strategy, mask filling, sentence embeddings against the HF
reference."""

import os

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import trimzoo
from trimzoo.checkpoints import save_pretrained
from trimzoo.models import (BertWordPieceTokenizer, TrimzooClassifier,
                            TrimzooMaskedLM, TrimzooMaskedLMPreprocessor,
                            TrimzooTextClassifierPreprocessor,
                            TrimzooTextEmbedder)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "bad",
         "film", "plot", "the", "was", "great"]
TEXTS = ["a good film", "the plot was bad", "great film", "bad bad plot"]


def _backbone(**kw):
    return trimzoo.models.bert_tiny(
        vocabulary_size=len(VOCAB), num_layers=1, hidden_dim=16, num_heads=2,
        intermediate_dim=32, max_sequence_length=32, **kw)


def _tokenizer():
    return BertWordPieceTokenizer(VOCAB)


def test_pairs_packing_truncation_and_one_segment_models():
    pre = TrimzooTextClassifierPreprocessor(_tokenizer(), sequence_length=6)
    x = pre(x=(["a good film"], ["bad plot was"]))
    # round_robin: 6 - 3 special tokens = 3 text tokens, longer side first.
    assert x["token_ids"].numpy().tolist() == [[2, 5, 6, 3, 7, 3]]
    assert x["segment_ids"].numpy().tolist() == [[0, 0, 0, 0, 1, 1]]
    one = TrimzooTextClassifierPreprocessor(_tokenizer(), num_segments=1)
    assert not one(x=(["a"], ["b"]))["segment_ids"].numpy().any()
    # Padded to the batch's longest sequence, not to sequence_length.
    x = pre(["a", "a good film"])
    assert x["padding_mask"].numpy().tolist() == [[1, 1, 1, 0, 0],
                                                  [1, 1, 1, 1, 1]]
    with pytest.raises(ValueError, match="num_segments must be 1"):
        TrimzooTextClassifierPreprocessor(_tokenizer(), num_segments=3)
    with pytest.raises(ValueError, match="takes strings"):
        pre(np.array([[1, 2]]))


def test_classifier_round_trip_through_presets(tmp_path):
    model = TrimzooClassifier(
        _backbone(), num_classes=2, label_names=["rotten", "fresh"],
        preprocessor=TrimzooTextClassifierPreprocessor(
            _tokenizer(), sequence_length=12))
    before = model.predict(TEXTS, verbose=0)
    model.save_to_preset(str(tmp_path / "cls"))
    for loaded in (keras_hub.models.TextClassifier.from_preset(
                       str(tmp_path / "cls")),
                   TrimzooClassifier.from_preset(str(tmp_path / "cls"))):
        assert isinstance(loaded, TrimzooClassifier)
        assert loaded.label_names == ("rotten", "fresh")
        assert loaded.preprocessor.sequence_length == 12
        np.testing.assert_allclose(loaded.predict(TEXTS, verbose=0), before,
                                   atol=1e-6)
        # Token-id dicts still go straight to the model.
        ids = loaded.preprocessor(TEXTS)
        np.testing.assert_allclose(loaded.predict(ids, verbose=0), before,
                                   atol=1e-6)
    with pytest.raises(ValueError, match="must name each of the 2 classes"):
        TrimzooClassifier(_backbone(), num_classes=2, label_names=["a"])


def test_backbone_folders_and_old_task_folders(tmp_path):
    backbone = _backbone()
    save_pretrained(backbone, _tokenizer(), str(tmp_path / "bb"))
    model = keras_hub.models.TextClassifier.from_preset(str(tmp_path / "bb"),
                                                        num_classes=3)
    assert model.predict(TEXTS, verbose=0).shape == (4, 3)
    # A task folder saved without a preprocessor (older trimzoo): keras-hub
    # reads token ids; trimzoo adds the preprocessor from its tokenizer.
    old = TrimzooClassifier(backbone, num_classes=2)
    old.save_to_preset(str(tmp_path / "old"))
    _tokenizer().save_to_preset(str(tmp_path / "old"))
    assert keras_hub.models.TextClassifier.from_preset(
        str(tmp_path / "old")).preprocessor is None
    loaded = TrimzooClassifier.from_preset(str(tmp_path / "old"))
    ids = loaded.preprocessor(TEXTS)
    np.testing.assert_allclose(loaded.predict(TEXTS, verbose=0),
                               old.predict(ids, verbose=0), atol=1e-6)
    save_pretrained(backbone, None, str(tmp_path / "notok"))
    with pytest.raises(FileNotFoundError, match="no tokenizer.json.*"
                       "preprocessor=None"):
        TrimzooClassifier.from_preset(str(tmp_path / "notok"), num_classes=2)
    assert TrimzooClassifier.from_preset(
        str(tmp_path / "notok"), num_classes=2,
        preprocessor=None).preprocessor is None


@pytest.mark.slow
def test_string_fit_under_two_replicas(two_cpu_strategy):
    with two_cpu_strategy.scope():
        model = TrimzooClassifier(
            _backbone(dropout=0.0), num_classes=2,
            preprocessor=TrimzooTextClassifierPreprocessor(
                _tokenizer(), sequence_length=8))
        model.compile(optimizer=keras.optimizers.Adam(1e-2),
                      loss=keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True))
    y = [1, 0, 1, 0]
    before = model.evaluate(x=TEXTS, y=y, verbose=0, return_dict=True)["loss"]
    model.fit(x=TEXTS * 4, y=y * 4, batch_size=4, epochs=2, verbose=0)
    ds = tf.data.Dataset.from_tensor_slices((TEXTS, y)).batch(4)
    history = model.fit(ds, epochs=2, verbose=0)
    assert history.history["loss"][-1] < before


@pytest.mark.slow
def test_masked_lm_fills_the_masks_of_the_text(tmp_path):
    backbone = _backbone()
    save_pretrained(backbone, _tokenizer(), str(tmp_path / "bb"))
    model = TrimzooMaskedLM.from_preset(str(tmp_path / "bb"))
    assert isinstance(model.preprocessor, TrimzooMaskedLMPreprocessor)
    texts = ["the [MASK] was great", "[MASK] good [MASK]"]
    logits = model.predict(texts, verbose=0)
    ids = model.preprocessor.fill_mask_inputs(texts)
    assert ids["mask_positions"].numpy()[:, :2].tolist() == [[2, 0], [1, 3]]
    np.testing.assert_allclose(logits, model(ids), atol=1e-5)
    filled = model.fill_mask(texts)
    expected = [VOCAB[i] for i in logits[0, :1].argmax(-1)]
    assert filled[0] == expected and len(filled[1]) == 2
    with pytest.raises(ValueError, match="has 0 mask tokens"):
        model.fill_mask(["no mask here"])
    # Strings train it (random masking), and the preset round-trips.
    model.fit(x=TEXTS * 4, batch_size=4, verbose=0)
    model.save_to_preset(str(tmp_path / "mlm"))
    again = TrimzooMaskedLM.from_preset(str(tmp_path / "mlm"))
    np.testing.assert_allclose(again.predict(texts, verbose=0),
                               model.predict(texts, verbose=0), atol=1e-5)


def test_minilm_embeddings_equal_the_hf_reference(tmp_path):
    """Mean pooling over real tokens + L2 norm of the HF reference's last
    hidden states (NumPy, float64), to <= 1e-4."""
    from trimzoo.utils.embedded import minilm_path

    ref = np.load(os.path.join(FIXTURES, "minilm_reference.npz"))
    hidden = ref["last_hidden_state"].astype(np.float64)
    mask = ref["padding_mask"][..., None].astype(np.float64)
    mean = (hidden * mask).sum(1) / mask.sum(1)
    expected = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    sentences = [str(s) for s in ref["sentences"]]
    embedder = TrimzooTextEmbedder.from_preset(minilm_path())
    got = embedder.encode(sentences, batch_size=4)
    assert np.abs(got - expected).max() <= 1e-4
    # The round trip keeps pooling, norm and preprocessor.
    embedder.save_to_preset(str(tmp_path / "emb"))
    again = TrimzooTextEmbedder.from_preset(str(tmp_path / "emb"))
    assert np.abs(again.predict(sentences, verbose=0) - expected).max() <= 1e-4
    unnormalized = TrimzooTextEmbedder(embedder.backbone,
                                       embedder.preprocessor, normalize=False)
    assert np.abs(unnormalized.encode(sentences) - mean).max() <= 1e-4


@pytest.mark.slow
def test_embedder_exports(tmp_path):
    import tensorflow_text  # noqa: F401

    from trimzoo.export import (export_embedder_saved_model,
                                export_embedder_tflite)
    from trimzoo.export.tflite import TFLiteRunner

    embedder = TrimzooTextEmbedder(
        _backbone(), TrimzooTextClassifierPreprocessor(_tokenizer(),
                                                       sequence_length=16))
    expected = embedder.encode(TEXTS)
    path = export_embedder_saved_model(embedder, str(tmp_path / "sm"))
    serve = tf.saved_model.load(path).signatures["serving_default"]
    np.testing.assert_allclose(serve(text=tf.constant(TEXTS))["embeddings"],
                               expected, atol=1e-5)
    path = export_embedder_tflite(embedder, str(tmp_path / "e.tflite"))
    ids = {k: np.asarray(v) for k, v in embedder.preprocessor(TEXTS).items()}
    np.testing.assert_allclose(TFLiteRunner(path)(ids)["embeddings"],
                               expected, atol=1e-5)


@pytest.mark.slow
def test_readme_quick_start_runs():
    readme = os.path.join(os.path.dirname(FIXTURES), "..", "README.md")
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    block = text.split("<!-- quick-start: tests/test_text.py runs this "
                       "block -->\n```python\n", 1)[1].split("```", 1)[0]
    assert len(block.strip().splitlines()) == 5
    scope = {}
    exec(compile(block, "README quick start", "exec"), scope)
    classifier = scope["classifier"]
    assert classifier.label_names == ("rotten", "fresh")
    assert classifier.predict(["a fine film"], verbose=0).shape == (1, 2)


@pytest.mark.slow
def test_finetuned_folder_reads_strings_and_knows_its_labels(finetuned_run):
    workdir, config = finetuned_run["workdir"], finetuned_run["config"]
    out = finetuned_run["stdout"]
    # The label map is printed first and written to the workdir; progress
    # lines appear when stdout is not a terminal.
    assert "Labels: 0=rotten, 1=fresh" in out
    assert "examples/s" in out and "step 2/2 (epoch 1/1)" in out
    with open(os.path.join(workdir, "labels.json")) as f:
        assert f.read().count("rotten") == 1
    best = os.path.join(workdir, "best")
    a = keras_hub.models.TextClassifier.from_preset(best)
    b = TrimzooClassifier.from_preset(best)
    assert a.label_names == b.label_names == ("rotten", "fresh")
    assert a.preprocessor.sequence_length == config.max_seq_length
    texts = ["a gripping film", "a dull mess"]
    np.testing.assert_allclose(a.predict(texts, verbose=0),
                               b.predict(texts, verbose=0), atol=1e-6)
