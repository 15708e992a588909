"""Poor Man's BERT on checkpoint folders: read one, drop layers, write the
smaller one with a note of what was dropped and why."""

import os

from trimzoo.checkpoints.folders import load_pretrained, save_pretrained
from trimzoo.models.layer_drop import describe_plan, drop_plan, keep_layers
from trimzoo.models.tokenizers import encode


def load_source(checkpoint, output, texts=None, sequence_length=128,
                batch_size=32, overwrite=False):
    """``(backbone, tokenizer, texts, batches)`` for a procedure that turns
    the checkpoint folder ``checkpoint`` into the folder ``output`` (layer
    dropping, pruning): checks that ``output`` may be written, loads the
    checkpoint and encodes the non-empty ``texts`` (if any) into batches of
    backbone inputs."""
    if os.path.exists(output) and not overwrite:
        raise FileExistsError(
            f"{output!r} exists; pass overwrite=True to replace it.")
    backbone, tokenizer = load_pretrained(checkpoint)
    data = None
    if texts is not None:
        texts = [t for t in texts if t.strip()]
        data = [encode(tokenizer, texts[i:i + batch_size], sequence_length)
                for i in range(0, len(texts), batch_size)]
    return backbone, tokenizer, texts, data


def drop_checkpoint(checkpoint, output, strategy=None, k=None, layers=None,
                    threshold=None, texts=None, sequence_length=128,
                    batch_size=32, overwrite=False):
    """Drops layers of the checkpoint folder ``checkpoint`` and saves the
    result to ``output`` (a folder ``trimzoo.models.from_pretrained``
    loads), with ``drop_layers.json``: the plan (``drop_plan``), a sentence
    saying why (``describe_plan``) and the source folder.

    Args:
        checkpoint: str. Any folder ``from_pretrained`` reads.
        output: str. Folder to write.
        strategy, k, layers, threshold: as ``drop_layers``.
        texts: list of str. Sentences for ``"contribution"``, encoded with
            the checkpoint's tokenizer.
        sequence_length: int. Token budget per sentence. Defaults to 128.
        batch_size: int. Defaults to 32.
        overwrite: bool. Replace an existing ``output``. Defaults to False.

    Returns:
        The note written to ``drop_layers.json``.

    Examples:
    >>> import tempfile, trimzoo
    >>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"]
    >>> folder = tempfile.mkdtemp()
    >>> backbone = trimzoo.models.bert_tiny(
    ...     vocabulary_size=7, num_layers=3, hidden_dim=16, intermediate_dim=32)
    >>> tokenizer = trimzoo.models.BertWordPieceTokenizer(vocab)
    >>> save_pretrained(backbone, tokenizer, folder + "/full")
    >>> note = drop_checkpoint(folder + "/full", folder + "/small",
    ...                        strategy="top", k=2)
    >>> note["dropped"], note["kept"]
    ([1, 2], [0])
    >>> trimzoo.models.from_pretrained(folder + "/small")[0].num_layers
    1
    """
    backbone, tokenizer, texts, data = load_source(
        checkpoint, output, texts, sequence_length, batch_size, overwrite)
    plan = drop_plan(backbone, strategy=strategy, k=k, layers=layers,
                     data=data, threshold=threshold)
    note = {**plan, "reason": describe_plan(plan),
            "source": os.path.abspath(os.fspath(checkpoint)),
            "num_examples": None if texts is None else len(texts)}
    small = keep_layers(backbone, plan["kept"])
    save_pretrained(small, tokenizer, output, overwrite=overwrite,
                    extra_files={"drop_layers.json": note})
    return note
