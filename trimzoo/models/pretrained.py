"""Pretrained weights for the models: ``from_pretrained`` and the zoo's
``weights=`` argument.

Reading and writing checkpoint folders is the job of ``trimzoo.checkpoints``,
which imports the models; the models reach it only through ``checkpoints()``
below, when a checkpoint is actually loaded.
"""


def checkpoints():
    """The ``trimzoo.checkpoints`` package."""
    # trimzoo.checkpoints imports trimzoo.models, so it is imported on use.
    from trimzoo import checkpoints as package

    return package


def from_pretrained(path):
    """Loads a pretrained backbone and its tokenizer from a local folder.

    Reads, offline, HF BERT and RoBERTa folders (``config.json`` +
    ``model.safetensors`` or a sharded ``model.safetensors.index.json``;
    ``pytorch_model.bin`` pickles are refused), keras-hub ``BertBackbone``
    presets and trimzoo folders (``save_pretrained``,
    ``backbone.save_to_preset``). The architecture (layers, widths, heads,
    vocabulary, positions, segments, layernorm epsilon, exact or tanh gelu,
    RoBERTa's position offset) comes from the folder's config.

    The tokenizer equals the checkpoint's reference tokenizer: WordPiece
    with BERT's normalisation (``do_lower_case`` and accent stripping from
    ``tokenizer_config.json``) or RoBERTa's byte-level BPE.

    Args:
        path: str. The checkpoint folder.

    Returns:
        ``(backbone, tokenizer)``: a ``TrimzooBackbone`` and a keras-hub
        tokenizer (callable on strings, also in ``tf.data``).

    Raises:
        FileNotFoundError: for a missing folder, config, weights or
            tokenizer files (use ``trimzoo.checkpoints.load_backbone`` for a
            folder without a tokenizer).
        ValueError: for a pickle checkpoint, an invalid config or an
            unsupported architecture, naming the file and field.

    Examples:
    >>> from trimzoo.utils.embedded import minilm_path
    >>> backbone, tokenizer = from_pretrained(minilm_path())
    >>> backbone.num_layers, backbone.hidden_dim
    (6, 384)
    >>> [tokenizer.id_to_token(int(i)) for i in tokenizer("A naïve café")]
    ['a', 'naive', 'cafe']
    """
    return checkpoints().load_pretrained(path)
