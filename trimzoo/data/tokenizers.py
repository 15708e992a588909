"""Tokenisers for checkpoints: WordPiece (BERT) and byte-level BPE (RoBERTa).

``special_token_ids(tokenizer)`` gives the ids that packing and masking need,
for either convention.
"""

import os

import keras_hub

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


def load_tokenizer(folder):
    """The tokenizer of a checkpoint folder (WordPiece ``vocab.txt``)."""
    vocab = os.path.join(folder, "vocab.txt")
    if not os.path.exists(vocab):
        raise FileNotFoundError(f"No vocab.txt in {folder!r}.")
    return keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=vocab, lowercase=True, strip_accents=True)
