"""The reference (BERT ``BasicTokenizer``) text normalisation, in Python
and in TensorFlow ops, plus the string helpers the tokenizers share.

Examples:
>>> normalize_text("Naïve\u200b CAFÉ", lowercase=True, strip_accents=True)
'naive cafe'
>>> normalize_text_tf("Naïve\u200b CAFÉ", True, True).numpy().decode()
'naive cafe'
"""

import unicodedata

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

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


def _re_escape(token):
    """Escapes a literal for both Python ``re`` and RE2."""
    return "".join("\\" + c if not c.isalnum() else c for c in token)


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

