"""Model surgery on checkpoint folders: read one (``load_source``), cut the
model, write the smaller one with a note of what was cut and why
(``save_result``). Poor Man's BERT is here (``drop_checkpoint``, the plan
from ``trimzoo.models.layer_drop``); pruning is
``trimzoo.compression.prune.prune_checkpoint``.

A classifier folder (``task.json``: ``RUN/best`` of ``tools/finetune.py``)
gives a classifier folder: head, pooling, label names and preprocessor
come along, and the task it was trained on is recorded
(``task_data.json``), so ``tools/predict.py --evaluate`` and
``tools/export.py`` work on the result as on the source. A backbone folder
gives a backbone folder.
"""

import os

from trimzoo.checkpoints.folders import (
    from_pretrained,
    is_classifier_folder,
    load_classifier_folder,
    save_classifier,
    save_pretrained,
)
from trimzoo.data.model_data import RECORD_FILE, recorded_task
from trimzoo.models.extract import extract
from trimzoo.models.layer_drop import describe_plan, drop_plan, keep_layers
from trimzoo.models.tokenizers import encode
from trimzoo.utils.embedded import resolve_checkpoint
from trimzoo.utils.run_folder import check_output_location


# The note each procedure writes into its output folder: a folder holding
# one is a procedure's own and may be replaced with ``overwrite``.
NOTE_FILES = ("drop_layers.json", "prune.json")
# Everything a checkpoint folder of theirs holds (a backbone or a
# classifier preset, its tokenizer, the note, the recorded task).
CHECKPOINT_ENTRIES = frozenset({
    "assets", "config.json", "metadata.json", "model.weights.h5",
    "preprocessor.json", "task.json", "task.weights.h5", "tokenizer.json",
    RECORD_FILE, *NOTE_FILES})


def load_source(checkpoint, output, texts=None, sequence_length=128,
                batch_size=32, overwrite=False, labels=None):
    """``(model, tokenizer, texts, batches)`` for a procedure that turns
    the checkpoint folder ``checkpoint`` into the folder ``output`` (layer
    dropping, pruning): checks that ``output`` may be written, loads the
    checkpoint (a ``TrimzooClassifier`` for a classifier folder, else a
    ``TrimzooBackbone``) and encodes the non-empty ``texts`` (if any) into
    batches of backbone inputs, ``(inputs, labels)`` tuples when
    ``labels`` (one per text) are given."""
    checkpoint = resolve_checkpoint(checkpoint)
    check_output_location(output, [checkpoint], flag="--output")
    if os.path.exists(output):
        if not overwrite:
            raise FileExistsError(
                f"{output!r} exists; pass overwrite=True (--overwrite) to "
                "replace it.")
        if not os.path.isdir(output):
            raise FileExistsError(
                f"{output!r} is a file, not a checkpoint folder; overwrite "
                "replaces only a folder. Choose another path.")
        if not (any(
                os.path.isfile(os.path.join(output, name))
                for name in NOTE_FILES)):
            # Overwrite replaces the whole folder: only one that layer
            # dropping or pruning wrote, never a folder of other files.
            raise FileExistsError(
                f"{output!r} is not a folder that layer dropping or pruning "
                f"wrote (it holds no {' or '.join(NOTE_FILES)}); nothing "
                "there is replaced. Choose a new output folder.")
        foreign = sorted(set(os.listdir(output)) - CHECKPOINT_ENTRIES)
        if foreign:
            raise FileExistsError(
                f"{output!r} holds files that a checkpoint folder does not "
                f"({', '.join(foreign[:6])}): overwrite would delete them, so "
                "nothing there is replaced. Move them, or choose a new "
                "output folder.")
    if is_classifier_folder(checkpoint):
        model = load_classifier_folder(checkpoint)
        tokenizer = model.preprocessor.tokenizer
    else:
        model, tokenizer = from_pretrained(checkpoint)
    data = None
    if texts is not None:
        texts, data = encode_batches(tokenizer, texts, labels,
                                     sequence_length, batch_size)
    return model, tokenizer, texts, data


def encode_batches(tokenizer, texts, labels=None, sequence_length=128,
                   batch_size=32):
    """``(texts, batches)``: the non-empty ``texts`` and their batches of
    backbone inputs (``(inputs, labels)`` tuples when ``labels``, one per
    text, are given)."""
    if labels is not None:
        pairs = [(t, y) for t, y in zip(texts, labels) if t.strip()]
        texts, labels = [t for t, _ in pairs], [y for _, y in pairs]
    else:
        texts = [t for t in texts if t.strip()]
    data = []
    for i in range(0, len(texts), batch_size):
        inputs = encode(tokenizer, texts[i:i + batch_size], sequence_length)
        data.append(inputs if labels is None else (
            inputs, labels[i:i + batch_size]))
    return texts, data


def save_result(model, source, tokenizer, checkpoint, output, note_file,
                note, overwrite=False):
    """Writes a cut ``model`` to ``output``: a classifier folder (the
    ``source`` classifier's preprocessor, label names and recorded task
    along) or a backbone folder, with ``note_file`` holding ``note``."""
    extra = {note_file: note}
    if model is not source and hasattr(source, "preprocessor"):
        record = recorded_task(resolve_checkpoint(checkpoint))
        if record is not None:
            extra[RECORD_FILE] = record
        model.label_names = getattr(source, "label_names", None)
        save_classifier(model, source.preprocessor, output,
                        overwrite=overwrite, extra_files=extra)
    else:
        save_pretrained(model, tokenizer, output, overwrite=overwrite,
                        extra_files=extra)


def drop_checkpoint(checkpoint, output, strategy=None, k=None, layers=None,
                    threshold=None, texts=None, sequence_length=128,
                    batch_size=32, overwrite=False):
    """Drops layers of the checkpoint folder ``checkpoint`` and saves the
    result to ``output`` (a backbone folder ``from_pretrained`` loads, or a
    classifier folder for a classifier), with ``drop_layers.json``: the plan
    (``drop_plan``), a sentence saying why (``describe_plan``) and the
    source folder.

    Args:
        checkpoint: str. Any folder ``from_pretrained`` reads, or a
            classifier folder (``RUN/best``): its head is kept.
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
    >>> trimzoo.from_pretrained(folder + "/small")[0].num_layers
    1
    """
    model, tokenizer, texts, data = load_source(
        checkpoint, output, texts, sequence_length, batch_size, overwrite)
    backbone = getattr(model, "backbone", model)
    plan = drop_plan(backbone, strategy=strategy, k=k, layers=layers,
                     data=data, threshold=threshold)
    note = {**plan, "reason": describe_plan(plan),
            "source": os.path.abspath(os.fspath(
                resolve_checkpoint(checkpoint))),
            "kind": "classifier" if model is not backbone else "backbone",
            "num_examples": None if texts is None else len(texts)}
    # extract keeps a classifier's head (and pooling) with the kept layers.
    small = (extract(model, layers=plan["kept"]) if model is not backbone
             else keep_layers(backbone, plan["kept"]))
    save_result(small, model, tokenizer, checkpoint, output,
                "drop_layers.json", note, overwrite)
    return note
