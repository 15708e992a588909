"""Tokenisers for checkpoints: WordPiece (BERT) and byte-level BPE (RoBERTa).

``load_tokenizer(folder)`` returns a keras-hub tokenizer that gives the same
ids as the reference tokenizer of the checkpoint in ``folder``:

- HF BERT folders (``vocab.txt`` + ``tokenizer_config.json``) and keras-hub
  BERT presets: ``BertWordPieceTokenizer``, a keras-hub ``BertTokenizer`` with
  the reference's text normalisation in front (see its docstring);
- HF RoBERTa / Bort folders (``vocab.json`` + ``merges.txt``):
  keras-hub's byte-level ``RobertaTokenizer``;
- HF folders with only a fast-tokenizer ``tokenizer.json`` (WordPiece or
  byte-level BPE model): the same two, built from that file;
- keras-hub and trimzoo preset folders (``tokenizer.json`` written by
  ``save_to_preset``): ``keras_hub.tokenizers.Tokenizer.from_preset``.

``special_token_ids(tokenizer)`` gives the ids that packing and masking need,
for either convention.
"""

import json
import logging
import os
import re
import unicodedata

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from trimzoo.models.backbone import TrimzooBackbone

try:
    import tensorflow_text as tf_text
except ImportError:  # pragma: no cover - a declared dependency
    tf_text = None

logger = logging.getLogger(__name__)

# (BERT WordPiece name, RoBERTa BPE name) for each role.
_SPECIAL = {
    "cls": ("[CLS]", "<s>"),
    "sep": ("[SEP]", "</s>"),
    "pad": ("[PAD]", "<pad>"),
    "mask": ("[MASK]", "<mask>"),
    "unk": ("[UNK]", "<unk>"),
}


def special_token_ids(tokenizer):
    """``{"cls", "sep", "pad", "mask", "unk"} -> id`` for a keras-hub
    tokenizer with a BERT or RoBERTa vocabulary.

    Raises:
        ValueError: if a role has no token in the vocabulary.
    """
    vocab = tokenizer.get_vocabulary()
    index = {token: i for i, token in enumerate(vocab)}
    ids = {}
    for role, names in _SPECIAL.items():
        for name in names:
            if name in index:
                ids[role] = index[name]
                break
        else:
            raise ValueError(
                f"The tokenizer's vocabulary has no {role} token "
                f"(looked for {list(names)})."
            )
    return ids


# --- The reference (BERT ``BasicTokenizer``) text normalisation. -----------
# Characters the reference deletes: NUL, U+FFFD and control/format characters
# other than tab, newline and carriage return.
_DROP_REGEX = r"[^\P{Cc}\t\n\r]|\p{Cf}|\x{FFFD}"
# Characters the reference treats as word separators.
_SPACE_REGEX = r"[\t\n\r\p{Z}]"


def _is_dropped(char):
    if char in "\t\n\r":
        return False
    return char in "\x00\ufffd" or unicodedata.category(char) in ("Cc", "Cf")


def _is_space(char):
    return char in "\t\n\r" or unicodedata.category(char).startswith("Z")


def normalize_text(text, lowercase, strip_accents):
    """The reference BERT normalisation of one string, in Python.

    Deletes control and format characters, maps every whitespace character
    to a space, applies NFC, then (when asked) ``str.lower`` and accent
    stripping (NFD, drop combining marks). Punctuation and CJK splitting are
    left to the WordPiece tokenizer's own pre-tokenisation.
    """
    text = "".join(
        " " if _is_space(c) else c for c in text if not _is_dropped(c)
    )
    text = unicodedata.normalize("NFC", text)
    if lowercase:
        text = text.lower()
    if strip_accents:
        text = unicodedata.normalize("NFD", text)
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return text


def normalize_text_tf(text, lowercase, strip_accents):
    """``normalize_text`` with TensorFlow ops, for ``tf.data`` and graphs."""
    text = tf.strings.regex_replace(text, _DROP_REGEX, "")
    text = tf.strings.regex_replace(text, _SPACE_REGEX, " ")
    text = tf_text.normalize_utf8(text, "NFC")
    if lowercase:
        text = tf.strings.lower(text, encoding="utf-8")
    if strip_accents:
        text = tf_text.normalize_utf8(text, "NFD")
        text = tf.strings.regex_replace(text, r"\p{Mn}", "")
    return text


class _CharLimitedWordpiece:
    """``FastWordpieceTokenizer`` with the reference's word-length rule.

    The reference maps words longer than ``max_chars`` *characters* to the
    unknown token; tf-text counts *bytes*. Words over the limit are replaced
    by the unknown token before the lookup, and the byte limit is raised so
    that it never applies first.
    """

    def __init__(self, vocabulary, oov_token, max_chars, dtype,
                 suffix_indicator):
        self.oov_token = oov_token
        self.max_chars = max_chars
        self.tokenizer = tf_text.FastWordpieceTokenizer(
            vocab=vocabulary,
            token_out_type=dtype,
            suffix_indicator=suffix_indicator,
            unknown_token=oov_token,
            max_bytes_per_word=4 * max_chars,
            no_pretokenization=True,
            support_detokenization=True,
        )

    def tokenize(self, words):
        too_long = tf.strings.length(words, unit="UTF8_CHAR") > self.max_chars
        words = tf.where(too_long, self.oov_token, words)
        return self.tokenizer.tokenize(words)

    def detokenize(self, ids):
        return self.tokenizer.detokenize(ids)


def _map_strings(fn, inputs):
    """Applies ``fn`` to every string of a Python/NumPy/eager-tensor input,
    keeping its structure."""
    if isinstance(inputs, (str, np.str_)):
        return fn(str(inputs))
    if isinstance(inputs, bytes):
        return fn(inputs.decode("utf-8"))
    if isinstance(inputs, tf.RaggedTensor):
        inputs = inputs.to_list()
    if isinstance(inputs, (list, tuple)):
        return [_map_strings(fn, x) for x in inputs]
    array = np.asarray(inputs)
    flat = [_map_strings(fn, x) for x in array.reshape(-1).tolist()]
    return np.array(flat, dtype=str).reshape(array.shape)


@keras.saving.register_keras_serializable(package="trimzoo")
class BertWordPieceTokenizer(keras_hub.tokenizers.BertTokenizer):
    """BERT's WordPiece tokenizer, equal to the reference implementation.

    keras-hub's ``BertTokenizer`` with the text normalisation of the reference
    (Google BERT / HF ``BertTokenizer``) in front: control and zero-width
    characters are deleted, all Unicode spaces separate words, text is NFC
    normalised, then lower-cased with ``str.lower`` and stripped of accents
    (NFD, combining marks dropped) as ``lowercase`` / ``strip_accents`` say.
    Without it, keras-hub's tokenizer maps "naïve café" to ``[UNK] [UNK]``
    for uncased vocabularies. Words longer than ``max_input_chars_per_word``
    characters become ``[UNK]``, and special tokens written in the text
    ("[SEP]", "[MASK]", case-sensitive) map to their ids, both as in the
    reference. The same ids come out of the eager (Python) path and the
    ``tf.data`` path.

    Args:
        vocabulary: list of str or path of a ``vocab.txt``.
        lowercase: bool. The reference's ``do_lower_case``. Defaults to
            ``True``.
        strip_accents: bool or None. Strip accents; ``None`` means "when
            lower-casing", as in the reference. Defaults to None.
        split_on_cjk: bool. Split around CJK ideographs (the reference's
            ``tokenize_chinese_chars``). Defaults to ``True``.
        special_tokens_in_strings: bool. Map special tokens found in the text
            to their ids. Defaults to ``True`` (the reference's behaviour).
        max_input_chars_per_word: int. Longer words become the unknown token.
            Defaults to ``100``.
        **kwargs: passed to ``keras_hub.tokenizers.BertTokenizer``
            (``sequence_length``, ``dtype``, ...).

    Examples:
    >>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "naive",
    ...          "cafe", "!"]
    >>> tokenizer = BertWordPieceTokenizer(vocab)
    >>> [int(i) for i in tokenizer("Naïve CAFÉ!")]
    [5, 6, 7]
    """

    backbone_cls = TrimzooBackbone

    def __init__(
        self,
        vocabulary=None,
        lowercase=True,
        strip_accents=None,
        split_on_cjk=True,
        special_tokens_in_strings=True,
        max_input_chars_per_word=100,
        **kwargs,
    ):
        # The parent's own lower-casing (NFKC case folding) and accent
        # stripping differ from the reference; this class normalises first
        # and lets the parent only split and look up.
        if not kwargs.pop("split", True):
            raise ValueError("BertWordPieceTokenizer always splits words as "
                             "the reference does; split=False is not "
                             "supported.")
        special_tokens = kwargs.pop("special_tokens", None)
        self.max_input_chars_per_word = int(max_input_chars_per_word)
        super().__init__(
            vocabulary=vocabulary,
            lowercase=False,
            strip_accents=False,
            split_on_cjk=split_on_cjk,
            special_tokens=special_tokens or [kwargs.get("oov_token",
                                                        "[UNK]")],
            special_tokens_in_strings=special_tokens_in_strings,
            **kwargs,
        )
        self.do_lower_case = bool(lowercase)
        self.do_strip_accents = (
            self.do_lower_case if strip_accents is None
            else bool(strip_accents)
        )
        self._strip_accents_arg = strip_accents

    def get_config(self):
        config = super().get_config()
        config.pop("split", None)
        config.update({
            "lowercase": self.do_lower_case,
            "strip_accents": self._strip_accents_arg,
            "split_on_cjk": self.split_on_cjk,
            "max_input_chars_per_word": self.max_input_chars_per_word,
        })
        return config

    def _set_vocabulary_tf(self):
        self._fast_word_piece = _CharLimitedWordpiece(
            self.vocabulary, self.oov_token, self.max_input_chars_per_word,
            self.compute_dtype, self.suffix_indicator)

    def _tokenize_word_python(self, word):
        if len(word) > self.max_input_chars_per_word:
            return [self.oov_token]
        tokens, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end]
                if start:
                    piece = self.suffix_indicator + piece
                if piece in self._token_to_id_map:
                    break
            else:
                return [self.oov_token]
            tokens.append(piece)
            start = end
        return tokens

    def _specials(self):
        return self._special_tokens_for_splitting() or []

    def normalize(self, inputs):
        """The reference normalisation of ``inputs`` (strings, nested lists,
        arrays or string tensors); special tokens are left untouched."""
        specials = self._specials()
        if self._use_tf_workflow():
            return self._normalize_tf(inputs, specials)

        def one(text):
            if not specials:
                return normalize_text(text, self.do_lower_case,
                                      self.do_strip_accents)
            # Split off the special tokens, normalise the rest.
            pattern = "(" + "|".join(map(_re_escape, specials)) + ")"
            text = "".join(c for c in text if not _is_dropped(c))
            pieces = re.split(pattern, text)
            return " ".join(
                p if p in specials else normalize_text(
                    p, self.do_lower_case, self.do_strip_accents)
                for p in pieces
            )

        return _map_strings(one, inputs)

    def _normalize_tf(self, inputs, specials):
        if not isinstance(inputs, tf.RaggedTensor):
            inputs = tf.convert_to_tensor(inputs)

        def one(text):
            if not specials:
                return normalize_text_tf(text, self.do_lower_case,
                                         self.do_strip_accents)
            pattern = "|".join(map(_re_escape, specials))
            # Deleted characters go first: regex_split stops at a NUL.
            text = tf.strings.regex_replace(text, _DROP_REGEX, "")
            pieces = tf_text.regex_split(text, pattern, pattern)
            special = tf.strings.regex_full_match(pieces, pattern)
            normalized = tf.ragged.map_flat_values(
                normalize_text_tf, pieces, self.do_lower_case,
                self.do_strip_accents)
            pieces = tf.ragged.map_flat_values(
                tf.where, special, pieces, normalized)
            return tf.strings.reduce_join(pieces, axis=-1, separator=" ")

        if isinstance(inputs, tf.RaggedTensor):
            return tf.ragged.map_flat_values(one, inputs)
        if inputs.shape.rank == 0:
            return tf.squeeze(one(tf.reshape(inputs, [1])), 0)
        return one(inputs)

    def tokenize(self, inputs):
        self._check_vocabulary()
        return super().tokenize(self.normalize(inputs))


@keras.saving.register_keras_serializable(package="trimzoo")
class RobertaBPETokenizer(keras_hub.tokenizers.RobertaTokenizer):
    """RoBERTa's byte-level BPE tokenizer, equal to the reference.

    keras-hub's ``RobertaTokenizer`` whose eager (Python) path splits words
    with GPT-2's byte-level rule, as the reference does. (keras-hub's eager
    path uses Llama 3's rule, which splits numbers into groups of three
    digits and takes "'s" out of "'single'".) Its ``tf.data`` path is
    keras-hub's, which follows GPT-2 already; it stops at a NUL character.

    Args:
        vocabulary: dict ``token -> id`` or path of a ``vocab.json``.
        merges: list of ``"a b"`` merge rules or path of a ``merges.txt``.
        add_prefix_space: bool. Prepend a space to the text, as the
            reference's option. Defaults to ``False``.
        **kwargs: passed to ``keras_hub.tokenizers.RobertaTokenizer``.

    Examples:
    >>> vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4,
    ...          "a": 5, "b": 6, "\u0120": 7, "ab": 8, "\u0120ab": 9}
    >>> merges = ["a b", "\u0120 ab"]
    >>> tokenizer = RobertaBPETokenizer(vocab, merges)
    >>> [int(i) for i in tokenizer("ab ab")]
    [8, 9]
    """

    backbone_cls = TrimzooBackbone

    def _set_vocabulary_and_merges_tokenizers(self, vocabulary, merges):
        super()._set_vocabulary_and_merges_tokenizers(vocabulary, merges)
        from tokenizers import pre_tokenizers

        self._tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(
            add_prefix_space=self.add_prefix_space, use_regex=True)


def _re_escape(token):
    """Escapes a literal for both Python ``re`` and RE2."""
    return "".join("\\" + c if not c.isalnum() else c for c in token)


# --- Building tokenizers from checkpoint folders. ---------------------------


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None


def _tokenizer_config(folder):
    path = os.path.join(folder, "tokenizer_config.json")
    return _read_json(path) if os.path.exists(path) else {}


def _special_name(value, default):
    """A special token from tokenizer_config.json (str or AddedToken dict)."""
    if isinstance(value, dict):
        value = value.get("content")
    return value or default


def _check_bert_specials(config, source):
    roles = {"cls_token": "[CLS]", "sep_token": "[SEP]",
             "pad_token": "[PAD]", "mask_token": "[MASK]",
             "unk_token": "[UNK]"}
    odd = {k: _special_name(config.get(k), v) for k, v in roles.items()
           if _special_name(config.get(k), v) != v}
    if odd:
        raise ValueError(
            f"{source} names BERT special tokens differently ({odd}); "
            f"trimzoo's WordPiece tokenizer needs {list(roles.values())}."
        )


def wordpiece_from_hf(folder, vocabulary=None, config=None, **kwargs):
    """``BertWordPieceTokenizer`` of a HF BERT folder.

    Reads ``vocab.txt`` (unless ``vocabulary`` is given) and the reference
    options from ``tokenizer_config.json``: ``do_lower_case`` (default True,
    as in the reference), ``strip_accents``, ``tokenize_chinese_chars``.
    """
    config = _tokenizer_config(folder) if config is None else config
    source = os.path.join(folder, "tokenizer_config.json")
    _check_bert_specials(config, source)
    if vocabulary is None:
        vocabulary = os.path.join(folder, "vocab.txt")
        with open(vocabulary, encoding="utf-8") as f:
            vocabulary = [line.rstrip("\n").rstrip("\r") for line in f]
    if config.get("do_basic_tokenize") is False:
        raise ValueError(
            f"{source} sets do_basic_tokenize=false, which trimzoo's "
            "WordPiece tokenizer does not support."
        )
    return BertWordPieceTokenizer(
        vocabulary=vocabulary,
        lowercase=config.get("do_lower_case", True),
        strip_accents=config.get("strip_accents"),
        split_on_cjk=config.get("tokenize_chinese_chars", True),
        **kwargs,
    )


def bpe_from_hf(folder, vocabulary=None, merges=None, add_prefix_space=None,
                **kwargs):
    """keras-hub ``RobertaTokenizer`` (byte-level BPE) of a HF RoBERTa/Bort
    folder: ``vocab.json`` + ``merges.txt`` unless given, and
    ``add_prefix_space`` from ``tokenizer_config.json``."""
    if vocabulary is None:
        vocabulary = _read_json(os.path.join(folder, "vocab.json"))
    if merges is None:
        with open(os.path.join(folder, "merges.txt"), encoding="utf-8") as f:
            merges = [line.rstrip("\n") for line in f
                      if line.strip() and not line.startswith("#version")]
    if add_prefix_space is None:
        add_prefix_space = _tokenizer_config(folder).get(
            "add_prefix_space", False)
    missing = [t for t in ("<s>", "</s>", "<pad>", "<mask>")
               if t not in vocabulary]
    if missing:
        raise ValueError(
            f"The BPE vocabulary in {folder} lacks the RoBERTa special "
            f"tokens {missing}."
        )
    return RobertaBPETokenizer(
        vocabulary=dict(vocabulary), merges=list(merges),
        add_prefix_space=bool(add_prefix_space), **kwargs)


def _from_fast_tokenizer_json(folder, spec, **kwargs):
    """Tokenizer from a HF fast-tokenizer ``tokenizer.json`` alone."""
    source = os.path.join(folder, "tokenizer.json")
    model = spec.get("model") or {}
    kind = model.get("type")
    vocab = dict(model.get("vocab") or {})
    for added in spec.get("added_tokens") or []:
        vocab.setdefault(added["content"], added["id"])
    if kind == "WordPiece":
        normalizer = spec.get("normalizer") or {}
        if normalizer.get("type") != "BertNormalizer":
            raise ValueError(
                f"{source}: WordPiece with normalizer "
                f"{normalizer.get('type')!r} is not supported (expected "
                "BertNormalizer)."
            )
        ids = sorted(vocab.values())
        if ids != list(range(len(ids))):
            raise ValueError(f"{source}: WordPiece ids are not 0..N-1.")
        by_id = sorted(vocab, key=vocab.get)
        config = {
            **_tokenizer_config(folder),
            "do_lower_case": normalizer.get("lowercase", True),
            "strip_accents": normalizer.get("strip_accents"),
            "tokenize_chinese_chars": normalizer.get(
                "handle_chinese_chars", True),
        }
        return wordpiece_from_hf(folder, vocabulary=by_id, config=config,
                                 **kwargs)
    if kind == "BPE":
        pre = spec.get("pre_tokenizer") or {}
        if pre.get("type") != "ByteLevel":
            raise ValueError(
                f"{source}: BPE with pre_tokenizer {pre.get('type')!r} is "
                "not supported (expected ByteLevel, as RoBERTa)."
            )
        merges = [m if isinstance(m, str) else " ".join(m)
                  for m in model.get("merges") or []]
        return bpe_from_hf(folder, vocabulary=vocab, merges=merges,
                           add_prefix_space=pre.get("add_prefix_space",
                                                    False), **kwargs)
    raise ValueError(
        f"{source}: tokenizer model {kind!r} is not supported (WordPiece or "
        "byte-level BPE)."
    )


def _is_keras_preset(folder):
    path = os.path.join(folder, "config.json")
    return os.path.exists(path) and "registered_name" in _read_json(path)


def _from_keras_preset(folder, **kwargs):
    # Registering trimzoo's classes (this module and the backbone) lets
    # keras-hub resolve presets whose backbone is a TrimzooBackbone.
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(folder, **kwargs)
    if type(tokenizer) is keras_hub.tokenizers.BertTokenizer:
        # keras-hub's BERT presets store the vocabulary and `lowercase` of
        # the reference tokenizer; rebuild it with the reference
        # normalisation (accent stripping when lower-casing).
        logger.info("Rebuilding the BertTokenizer of %s with the reference "
                    "WordPiece normalisation.", folder)
        tokenizer = BertWordPieceTokenizer(
            vocabulary=tokenizer.vocabulary, lowercase=tokenizer.lowercase,
            sequence_length=tokenizer.sequence_length)
    return tokenizer


def load_tokenizer(folder, **kwargs):
    """The tokenizer of a checkpoint folder (see the module docstring).

    Args:
        folder: str. A HF BERT/RoBERTa folder, a keras-hub preset folder or
            a trimzoo saved folder.
        **kwargs: passed to the tokenizer's constructor, e.g.
            ``sequence_length``.

    Returns:
        A keras-hub tokenizer: callable on strings (also inside
        ``tf.data``), with ``get_vocabulary`` and ``token_to_id``.

    Raises:
        FileNotFoundError: if the folder holds no tokenizer files.
        ValueError: if they describe an unsupported tokenizer.

    Examples:
    >>> import trimzoo.data.tokenizers as t  # doctest: +SKIP
    >>> tokenizer = t.load_tokenizer("/path/to/bert_folder")  # doctest: +SKIP
    >>> tokenizer(["A naïve café"])  # doctest: +SKIP
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"No such checkpoint folder: {folder!r}.")

    def has(name):
        return os.path.exists(os.path.join(folder, name))

    if _is_keras_preset(folder):
        if not has("tokenizer.json"):
            raise FileNotFoundError(
                f"The preset folder {folder!r} has no tokenizer.json (it was "
                "saved without a tokenizer)."
            )
        return _from_keras_preset(folder, **kwargs)
    if has("vocab.txt"):
        return wordpiece_from_hf(folder, **kwargs)
    if has("vocab.json") or has("merges.txt"):
        for name in ("vocab.json", "merges.txt"):
            if not has(name):
                raise FileNotFoundError(
                    f"{folder!r} has a byte-level BPE tokenizer without "
                    f"{name}."
                )
        return bpe_from_hf(folder, **kwargs)
    if has("tokenizer.json"):
        return _from_fast_tokenizer_json(
            folder, _read_json(os.path.join(folder, "tokenizer.json")),
            **kwargs)
    raise FileNotFoundError(
        f"No tokenizer in {folder!r}: looked for vocab.txt (WordPiece), "
        "vocab.json + merges.txt (byte-level BPE), tokenizer.json (HF fast "
        "tokenizer or keras-hub preset)."
    )


def encode(tokenizer, texts, sequence_length=128):
    """Backbone inputs for single sentences, as the reference encodes them:
    ``[CLS] tokens [SEP]`` (``<s> tokens </s>`` for BPE), truncated to
    ``sequence_length`` and padded on the right.

    Args:
        tokenizer: a keras-hub tokenizer with a BERT or RoBERTa vocabulary.
        texts: list of str.
        sequence_length: int. Defaults to ``128``.

    Returns:
        dict of int32 arrays ``token_ids``, ``segment_ids`` (zeros) and
        ``padding_mask``, each ``[len(texts), sequence_length]``.

    Examples:
    >>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "naive"]
    >>> encode(BertWordPieceTokenizer(vocab), ["Naïve"], 4)["token_ids"]
    array([[2, 5, 3, 0]], dtype=int32)
    """
    ids = special_token_ids(tokenizer)
    packer = keras_hub.layers.StartEndPacker(
        sequence_length=sequence_length, start_value=ids["cls"],
        end_value=ids["sep"], pad_value=ids["pad"],
        return_padding_mask=True)
    token_ids, mask = packer(tokenizer(list(texts)))
    token_ids = np.asarray(token_ids, dtype="int32")
    return {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": np.asarray(mask, dtype="int32"),
    }
