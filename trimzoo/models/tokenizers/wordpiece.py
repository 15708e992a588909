"""BERT's WordPiece tokenizer with the reference text normalisation."""

import re

import keras
import keras_hub
import tensorflow as tf
import tensorflow_text as tf_text

from trimzoo.models.tokenizers.normalization import (
    _DROP_REGEX,
    _is_dropped,
    _map_strings,
    _re_escape,
    normalize_text,
    normalize_text_tf,
)


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

