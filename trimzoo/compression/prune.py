"""Structured pruning: remove the least important heads, FFN neurons and
hidden dimensions of a trained model, keeping its weights for the rest.

Scores come from ``trimzoo.compression.importance``; the cut is
``trimzoo.models.extract``, so a pruned model is one ``TrimzooBackbone``
(per-layer widths) that saves, loads and exports like any zoo model.
Head scores are normalised per layer by their L2 norm before ranking
(Michel et al. 2019), which makes a global ranking across layers fair.

Before any healing, on the embedded all-MiniLM-L6-v2 (64 Rotten Tomatoes
validation sentences; mean token cosine similarity of the sequence output
to the source's): half the heads of every layer pruned, 0.81 with gradient
importance (scored on the same sentences) and 0.84 with magnitude; half
the FFN neurons, 0.74 and 0.70. The backbone's gradient loss is a
denoising proxy, not this similarity, so neither ranking is optimal for
it; fine-tune or distil after pruning.
"""

import logging
import os

import numpy as np

from trimzoo.compression.importance import (
    IMPORTANCE,
    backbone_of,
    importance_scores,
)
from trimzoo.checkpoints.surgery import (
    encode_batches,
    load_source,
    save_result,
)
from trimzoo.utils.embedded import is_embedded_checkpoint, resolve_checkpoint
from trimzoo.data.model_data import texts_for_model
from trimzoo.models.tokenizers import special_token_ids
from trimzoo.models.extract import extract

logger = logging.getLogger(__name__)

SCOPES = ("layer", "global")


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def prune_counts(name, amount, sizes, scope="layer"):
    """How many units to prune in each layer.

    Args:
        name: str. The argument's name, for error messages.
        amount: None (prune nothing), a fraction in ``[0, 1)`` of each
            layer's units (``scope="layer"``) or of all units
            (``scope="global"``, decided by ``select``), an int (that many
            in every layer) or a sequence of ints (per layer). Layers of
            size 0 (no FFN) take no amount.
        sizes: list of int. Units per layer.
        scope: str. ``"layer"`` or ``"global"``.

    Returns:
        list of int per layer, or the float fraction for a global scope.
    """
    if scope not in SCOPES:
        raise ValueError(f"Unknown scope {scope!r}. Valid values: "
                         f"{list(SCOPES)}.")
    if amount is None:
        return [0] * len(sizes)
    if isinstance(amount, float):
        if not 0.0 <= amount < 1.0:
            raise ValueError(
                f"{name}={amount} would prune everything or is not a "
                "fraction: give a fraction in [0, 1) (every layer keeps at "
                "least one unit) or counts.")
        if scope == "global":
            return amount
        return [n - max(1, int(round(n * (1.0 - amount)))) if n else 0
                for n in sizes]
    if scope == "global":
        raise ValueError(f"scope='global' needs {name} as a fraction, got "
                         f"{amount!r}.")
    if _is_int(amount):
        counts = [int(amount) if n else 0 for n in sizes]
    else:
        try:
            counts = list(amount)
        except TypeError:
            raise ValueError(
                f"{name} must be a fraction, an int or one int per layer, "
                f"got {amount!r}.") from None
        if len(counts) != len(sizes):
            raise ValueError(
                f"{name} has {len(counts)} entries but the model has "
                f"{len(sizes)} layers.")
        counts = [0 if c is None and not n else c
                  for c, n in zip(counts, sizes)]
    for i, (c, n) in enumerate(zip(counts, sizes)):
        if not _is_int(c) or c < 0:
            raise ValueError(f"{name}: layer {i} count must be a "
                             f"non-negative int, got {c!r}.")
        if n and c >= n:
            raise ValueError(
                f"{name}: pruning {c} of {n} in layer {i} would prune "
                "everything; every layer keeps at least one.")
        if not n and c:
            raise ValueError(f"{name}: layer {i} has no FFN to prune.")
    return [int(c) for c in counts]


def select(scores, counts):
    """Indices to keep per layer: all but the ``counts`` lowest scores
    (ties: the lower index is kept). ``counts`` may be a global fraction:
    the lowest ``round(fraction * total)`` scores across layers go, but
    every layer keeps its best unit."""
    layers = [i for i, s in enumerate(scores) if s is not None]
    if not isinstance(counts, list):
        total = int(round(counts * sum(len(scores[i]) for i in layers)))
        ranked = sorted((float(scores[i][k]), i, k) for i in layers
                        for k in range(len(scores[i])))
        best = {i: int(np.argsort(-scores[i], kind="stable")[0])
                for i in layers}
        dropped = {i: set() for i in layers}
        for _, i, k in ranked:
            if total == 0:
                break
            if k != best[i]:
                dropped[i].add(k)
                total -= 1
        return [None if scores[i] is None else
                [k for k in range(len(scores[i])) if k not in dropped[i]]
                for i in range(len(scores))]
    kept = []
    for s, c in zip(scores, counts):
        if s is None:
            kept.append(None)
            continue
        order = np.argsort(-np.asarray(s), kind="stable")
        kept.append(sorted(int(k) for k in order[:len(s) - c]))
    return kept


def _normalise_heads(scores):
    return [s / max(np.linalg.norm(s), 1e-20) for s in scores]


def prune(model, heads=None, ffn=None, hidden=None, data=None,
          importance="gradient", scope="layer", mask_token_id=None,
          max_batches=None, seed=0, return_scores=False, progress=None):
    """Prunes the least important heads, FFN neurons and hidden dimensions.

    Args:
        model: ``TrimzooBackbone``, ``TrimzooClassifier`` or
            ``TrimzooMaskedLM`` (its head is sliced along).
        heads: None, fraction, int or per-layer ints: how many heads to
            prune (see ``prune_counts``). Every layer keeps at least one.
        ffn: the same for FFN neurons (layers without FFN take none).
        hidden: None, fraction or int: hidden dimensions to prune (not
            exact; see ``trimzoo.models.extract``).
        data: iterable of input dicts or ``(inputs, labels)`` tuples, for
            ``importance="gradient"`` (labels for a classifier).
        importance: str. ``"gradient"`` or ``"magnitude"`` (see
            ``trimzoo.compression.importance``). Defaults to ``"gradient"``.
        scope: str. ``"layer"``: a fraction applies to each layer;
            ``"global"``: to all heads (or neurons) ranked together.
            Defaults to ``"layer"``.
        mask_token_id: int or None. Corruption token for masked-LM and
            backbone losses. Defaults to None (random ids).
        max_batches: int or None. Batches of ``data`` used.
        seed: int. Seed of the corruption. Defaults to 0.
        return_scores: bool. Also return the report. Defaults to False.
        progress: callable or None. Called with the number of batches
            scored so far (see ``importance_scores``).

    Returns:
        The pruned model (the source's kind), or ``(model, report)``: a
        JSON-able dict with ``kept`` (``layers``, ``heads``,
        ``ffn_neurons``, ``hidden_dims``), ``scores`` (normalised head
        scores, FFN and hidden scores per layer), ``params_before`` and
        ``params_after``.

    Examples:
    >>> import trimzoo
    >>> model = trimzoo.models.bert_tiny(vocabulary_size=100)
    >>> small = prune(model, heads=0.5, ffn=0.25, importance="magnitude")
    >>> small.num_heads, small.intermediate_dim
    (1, 384)
    """
    if importance not in IMPORTANCE:
        raise ValueError(f"Unknown importance {importance!r}. Valid values: "
                         f"{list(IMPORTANCE)}.")
    backbone = backbone_of(model)
    blocks = backbone.transformer_layers
    head_counts = prune_counts("heads", heads, [b.attention.num_heads
                                                for b in blocks], scope)
    ffn_counts = prune_counts("ffn", ffn, [b.intermediate_dim if b.use_ffn
                                           else 0 for b in blocks], scope)
    hidden_count = prune_counts("hidden", hidden, [backbone.hidden_dim],
                                "layer")[0]
    parts = [name for name, amount in (("heads", heads), ("ffn", ffn),
                                       ("hidden", hidden)) if amount]
    scores = importance_scores(model, data, importance, parts=parts,
                               mask_token_id=mask_token_id,
                               max_batches=max_batches, seed=seed,
                               progress=progress) if parts \
        else {"num_batches": 0}
    kept = {}
    if "heads" in scores:
        scores["heads"] = _normalise_heads(scores["heads"])
        kept["heads"] = select(scores["heads"], head_counts)
    if "ffn" in scores:
        kept["ffn_neurons"] = select(scores["ffn"], ffn_counts)
    if "hidden" in scores:
        kept["hidden_dims"] = select([scores["hidden"]], [hidden_count])[0]
    small, plan = extract(model, return_plan=True, **kept)
    report = {
        "importance": importance,
        "scope": scope,
        "amounts": {"heads": heads, "ffn": ffn, "hidden": hidden},
        "num_batches": scores["num_batches"],
        "kept": plan,
        "scores": {key: [None if s is None else np.asarray(s).tolist()
                         for s in value] if isinstance(value, list)
                   else np.asarray(value).tolist()
                   for key, value in scores.items() if key != "num_batches"},
        "params_before": int(model.count_params()),
        "params_after": int(small.count_params()),
    }
    logger.info("Pruned %s -> %s parameters.", report["params_before"],
                report["params_after"])
    return (small, report) if return_scores else small


def prune_checkpoint(checkpoint, output, heads=None, ffn=None, hidden=None,
                     importance="gradient", scope="layer", texts=None,
                     sequence_length=128, batch_size=32, max_examples=512,
                     seed=0, overwrite=False, data=None, text_column="text",
                     label_column=None, labels=None, progress=print):
    """Prunes a checkpoint folder and saves the result to ``output``, with
    ``prune.json`` (the ``prune`` report plus the source folder and the
    data the importance was scored on).

    A classifier folder (``RUN/best``) gives a classifier folder: the head
    is sliced along, label names, pooling and preprocessor are kept, and
    importance comes from the task loss on labelled texts (the model's own
    predictions stand in for missing labels). A backbone folder gives a
    backbone folder (``trimzoo.from_pretrained`` loads it);
    importance comes from the backbone's denoising self-distillation loss
    with the tokenizer's mask token.

    Args:
        checkpoint: str. Any folder ``from_pretrained`` reads, a
            classifier folder, or ``minilm``.
        output: str. Folder to write.
        heads, ffn, hidden, importance, scope, seed: as ``prune``.
        texts: list of str or None. Sentences for gradient importance
            (``labels``: their class ids, optional).
        data: str or None. A file of texts instead (``.txt``, or
            ``.csv``/``.tsv``/``.jsonl`` with ``text_column`` and optional
            ``label_column``; see ``trimzoo.data.model_data``). With
            neither, the task the folder was fine-tuned on (its training
            split), or for the embedded checkpoint only, the embedded
            Rotten Tomatoes reviews; else a ``ValueError`` asks for
            ``data``.
        sequence_length: int. Defaults to 128.
        batch_size: int. Defaults to 32.
        max_examples: int. Sentences used. Defaults to 512.
        overwrite: bool. Replace an existing ``output``. Defaults to False.
        progress: callable or None. Receives progress lines (the data
            used, each scored batch). Defaults to ``print``.

    Returns:
        The report written to ``prune.json``.
    """
    say = progress or (lambda line: None)
    model, tokenizer, _, _ = load_source(checkpoint, output,
                                         overwrite=overwrite)
    is_classifier = model is not backbone_of(model)
    source, batches, count = None, None, None
    if importance == "gradient":
        if texts is not None:
            source = "texts"
        else:
            chosen = texts_for_model(
                resolve_checkpoint(checkpoint), data, text_column,
                label_column, getattr(model, "label_names", None),
                split="train",
                allow_default=is_embedded_checkpoint(checkpoint),
                what="Gradient importance")
            texts, labels, source = chosen.texts, chosen.labels, chosen.source
        texts = texts[:max_examples]
        labels = None if labels is None or not is_classifier else list(
            labels[:max_examples])
        texts, batches = encode_batches(tokenizer, texts, labels,
                                        sequence_length, batch_size)
        count = len(texts)
        if is_classifier and labels is None:
            # The model's own predictions stand in for the missing labels.
            batches = [(inputs, _predicted(model, inputs))
                       for inputs in batches]
            source += " (labels: the model's own predictions)"
        say(f"Importance data: {source}, {count} texts in {len(batches)} "
            "batches.")
    total = len(batches) if batches else 0

    def step(done):
        say(f"  importance: batch {done}/{total}")

    small, report = prune(
        model, heads=heads, ffn=ffn, hidden=hidden, data=batches,
        importance=importance, scope=scope, seed=seed, return_scores=True,
        mask_token_id=special_token_ids(tokenizer)["mask"], progress=step)
    report.update({"source": os.path.abspath(os.fspath(
                       resolve_checkpoint(checkpoint))),
                   "kind": "classifier" if is_classifier else "backbone",
                   "data": source, "num_examples": count})
    save_result(small, model, tokenizer, checkpoint, output, "prune.json",
                report, overwrite)
    return report


def _predicted(model, inputs):
    """The classifier's own labels (its scores, for regression)."""
    out = np.asarray(model(inputs, training=False))
    return out[:, 0] if out.shape[-1] == 1 else out.argmax(axis=-1)
