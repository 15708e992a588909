"""Learning a WordPiece vocabulary for pretraining from scratch."""

import os

import keras_hub
import tensorflow as tf

from trimzoo.utils.io import write_json, write_text

BERT_RESERVED_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_wordpiece_vocabulary(output_dir, vocabulary_size, files=None,
                               texts=None, lowercase=True, strip_accents=True,
                               reserved_tokens=None):
    """Trains a WordPiece vocabulary with keras-hub's
    ``compute_word_piece_vocabulary`` (tf-text's BERT vocabulary learner).

    Writes ``output_dir/vocab.txt`` (the reserved tokens first: ``[PAD]``
    is id 0) and a ``tokenizer_config.json`` recording the casing, so
    ``trimzoo.models.tokenizers.load_tokenizer(output_dir)`` and
    ``data.vocab=output_dir`` use it.

    Args:
        output_dir: str. Created if needed.
        vocabulary_size: int. Target size (the learner may return a few
            tokens fewer).
        files: list of text files, or None.
        texts: list of str, or None (exactly one of the two).
        lowercase, strip_accents: bool. Uncased BERT normalisation.
        reserved_tokens: list of str. Defaults to BERT's five specials.

    Returns:
        str: the path of ``vocab.txt``.

    Examples:
    >>> import tempfile
    >>> from trimzoo.models.tokenizers import load_tokenizer
    >>> texts = ["The film is good.", "The plot is bad.", "A good film."] * 5
    >>> folder = tempfile.mkdtemp()
    >>> path = build_wordpiece_vocabulary(folder, 40, texts=texts)
    >>> vocabulary = open(path).read().split()
    >>> vocabulary[:5], "film" in vocabulary
    (['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'], True)
    >>> tokenizer = load_tokenizer(folder)
    >>> [tokenizer.id_to_token(int(i)) for i in tokenizer("A GOOD film")]
    ['a', 'good', 'film']
    """
    if (files is None) == (texts is None):
        raise ValueError("Pass exactly one of `files` and `texts`.")
    if texts is not None:
        lines = tf.data.Dataset.from_tensor_slices(list(texts))
    else:
        lines = tf.data.TextLineDataset(list(files))
    lines = lines.filter(lambda line: tf.strings.length(
        tf.strings.strip(line)) > 0)
    reserved = list(reserved_tokens or BERT_RESERVED_TOKENS)
    if (isinstance(vocabulary_size, bool)
            or not isinstance(vocabulary_size, int)
            or vocabulary_size <= len(reserved)):
        raise ValueError(
            "vocabulary_size must be an integer above the "
            f"{len(reserved)} reserved tokens, got {vocabulary_size!r}.")
    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        lines.batch(1024), vocabulary_size, lowercase=lowercase,
        strip_accents=strip_accents, reserved_tokens=reserved)
    path = os.path.join(output_dir, "vocab.txt")
    write_text(path, "\n".join(vocabulary) + "\n")
    write_json(os.path.join(output_dir, "tokenizer_config.json"), {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": bool(lowercase),
        # HF convention: None = follow do_lower_case.
        "strip_accents": (None if strip_accents == lowercase
                          else bool(strip_accents)),
        "model_max_length": 512})
    return path
