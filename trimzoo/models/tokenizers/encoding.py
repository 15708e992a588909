"""Special-token ids and the reference single-sentence encoding."""

import keras_hub
import numpy as np

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

    Examples:
    >>> import keras_hub
    >>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello"]
    >>> special_token_ids(keras_hub.tokenizers.WordPieceTokenizer(vocab))
    {'cls': 2, 'sep': 3, 'pad': 0, 'mask': 4, 'unk': 1}
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
    >>> from trimzoo.models.tokenizers import BertWordPieceTokenizer
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

