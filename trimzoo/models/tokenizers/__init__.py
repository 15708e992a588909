"""Tokenizers for checkpoints: WordPiece (BERT) and byte-level BPE (RoBERTa).

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

Modules: ``normalization`` (the reference text normalisation),
``wordpiece``, ``bpe``, ``folders`` (reading checkpoint folders) and
``encoding`` (special-token ids, single-sentence inputs). The tokenizers sit
beside the models, as in keras-hub.
"""

from trimzoo.models.tokenizers.bpe import RobertaBPETokenizer
from trimzoo.models.tokenizers.encoding import encode, special_token_ids
from trimzoo.models.tokenizers.folders import (
    bpe_from_hf,
    load_tokenizer,
    wordpiece_from_hf,
)
from trimzoo.models.tokenizers.normalization import (
    normalize_text,
    normalize_text_tf,
)
from trimzoo.models.tokenizers.wordpiece import BertWordPieceTokenizer

__all__ = [
    "BertWordPieceTokenizer",
    "RobertaBPETokenizer",
    "bpe_from_hf",
    "encode",
    "load_tokenizer",
    "normalize_text",
    "normalize_text_tf",
    "special_token_ids",
    "wordpiece_from_hf",
]
