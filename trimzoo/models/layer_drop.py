"""Poor Man's BERT: smaller models by dropping layers of a pretrained one.

Sajjad, Dalvi, Durrani and Nakov, "On the Effect of Dropping Layers of
Pre-trained Transformer Models" (2020/2023, a.k.a. "Poor Man's BERT"). No
pretraining is needed: drop layers of a pretrained encoder, then fine-tune.
The paper numbers layers 1..L; trimzoo's ``layers`` arguments and results are
0-based (paper layer ``n`` is index ``n - 1``).

Strategies for an L-layer model and ``k`` layers to drop:

- ``"top"``: the last k layers; ``"bottom"``: the first k.
- ``"odd"`` / ``"even"``: k alternate layers counted from the top, the odd-
  or even-numbered ones (L=12, k=4: odd drops 5, 7, 9, 11; even drops 6, 8,
  10, 12).
- ``"symmetric"``: k middle layers, keeping the bottom and top ones (L=12:
  k=2 drops 6, 7; k=6 drops 4..9). When L - k is odd the bottom keeps one
  layer more than the top (the paper finds lower layers more important).
- ``"contribution"``: layers that change the first-token ([CLS])
  representation least: per layer, the cosine similarity between the [CLS]
  vector entering and leaving it, averaged over a dataset; drop the layers
  whose similarity exceeds ``threshold``, or the ``k`` most similar.

Everything here works on weights in memory; dropping layers of a checkpoint
folder and writing the result is ``trimzoo.checkpoints.drop_checkpoint``
(``tools/drop_layers.py``).
"""

import logging

import keras
import numpy as np

from trimzoo.models.extract import check_indices, extract

logger = logging.getLogger(__name__)

STRATEGIES = ("top", "bottom", "odd", "even", "symmetric", "contribution")
# Names a drop spec may start with: the strategies, or explicit layers.
SPEC_NAMES = STRATEGIES + ("layers",)


def parse_drop_spec(spec, name="drop_layers"):
    """``drop_layers`` arguments from a one-string spec (configs, flags).

    ``"top:2"`` -> ``{"strategy": "top", "k": 2}`` (any strategy but
    contribution); ``"layers:9,10"`` -> ``{"layers": [9, 10]}``;
    ``"contribution:0.95"`` -> a threshold; ``"contribution:k=3"`` -> the 3
    most similar layers. An empty spec (or None) gives None.

    Args:
        spec: str or None.
        name: str. What the spec is called in error messages. Defaults to
            ``"drop_layers"``.

    Examples:
    >>> parse_drop_spec("top:2")
    {'strategy': 'top', 'k': 2}
    >>> parse_drop_spec("contribution:k=3")
    {'strategy': 'contribution', 'k': 3}
    """
    if not spec:
        return None
    strategy, _, value = spec.partition(":")
    if strategy not in SPEC_NAMES or not value:
        raise ValueError(
            f"{name}={spec!r} must look like 'STRATEGY:VALUE' with STRATEGY "
            f"one of {list(SPEC_NAMES)}, e.g. 'top:2', 'layers:9,10,11', "
            "'contribution:0.95', 'contribution:k=3'.")
    try:
        if strategy == "layers":
            return {"layers": [int(v) for v in value.split(",")]}
        if strategy == "contribution":
            if value.startswith("k="):
                return {"strategy": strategy, "k": int(value[2:])}
            return {"strategy": strategy, "threshold": float(value)}
        return {"strategy": strategy, "k": int(value)}
    except ValueError:
        raise ValueError(
            f"{name}={spec!r}: bad value {value!r}.") from None


def parse_preset_drop(entry):
    """``"bert_base:4"`` -> ``("bert_base", 4)``: a preset with its top ``k``
    (>= 1) layers dropped, as benchmark rows name them."""
    preset, sep, k = entry.partition(":")
    if not sep or not k.isdigit() or int(k) < 1:
        raise ValueError(
            f"Bad drop entry {entry!r}: expected 'preset:k' with k >= 1, "
            "e.g. 'bert_base:4'.")
    return preset, int(k)


def _check_k(k, num_layers, available=None):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an integer, got {k!r}.")
    limit = num_layers if available is None else available
    if not 0 <= k <= limit:
        raise ValueError(
            f"k={k} is out of range: a {num_layers}-layer model allows "
            f"0..{limit} here."
        )
    return int(k)


def layers_to_drop(num_layers, strategy, k=None, scores=None,
                   threshold=None):
    """0-based indices of the layers a strategy drops (sorted).

    Args:
        num_layers: int. L, the number of layers of the model.
        strategy: str. One of ``STRATEGIES``.
        k: int or None. How many layers to drop; for ``"contribution"``
            either ``k`` or ``threshold``.
        scores: sequence of L floats. Per-layer [CLS] similarities, for
            ``"contribution"`` (see ``layer_similarities``).
        threshold: float or None. For ``"contribution"``: drop every layer
            whose similarity is above it.

    Examples:
    >>> [i + 1 for i in layers_to_drop(12, "odd", k=4)]  # paper numbering
    [5, 7, 9, 11]
    >>> [i + 1 for i in layers_to_drop(12, "symmetric", k=2)]
    [6, 7]
    """
    if strategy not in STRATEGIES:
        raise ValueError(
            f"Unknown strategy {strategy!r}. Valid values: "
            f"{list(STRATEGIES)}."
        )
    if strategy == "contribution":
        return _contribution_layers(num_layers, scores, k, threshold)
    if threshold is not None:
        raise ValueError(
            f"threshold only applies to strategy='contribution', not "
            f"{strategy!r}."
        )
    if k is None:
        raise ValueError(f"strategy={strategy!r} needs k.")
    if strategy in ("odd", "even"):
        # Paper numbers n = 1..L; odd/even ones counted from the top.
        parity = 1 if strategy == "odd" else 0
        candidates = [n for n in range(num_layers, 0, -1) if n % 2 == parity]
        k = _check_k(k, num_layers, len(candidates))
        return sorted(n - 1 for n in candidates[:k])
    k = _check_k(k, num_layers)
    if strategy == "top":
        dropped = range(num_layers - k, num_layers)
    elif strategy == "bottom":
        dropped = range(k)
    else:  # symmetric
        keep_bottom = (num_layers - k + 1) // 2
        dropped = range(keep_bottom, keep_bottom + k)
    return list(dropped)


def _contribution_layers(num_layers, scores, k, threshold):
    if scores is None:
        raise ValueError("strategy='contribution' needs per-layer scores "
                         "(pass data to drop_layers).")
    scores = np.asarray(scores, dtype="float64")
    if scores.shape != (num_layers,):
        raise ValueError(
            f"Expected {num_layers} similarity scores, got shape "
            f"{scores.shape}."
        )
    if (k is None) == (threshold is None):
        raise ValueError(
            "strategy='contribution' needs exactly one of k (drop the k "
            "most similar layers) or threshold (drop layers above it)."
        )
    if threshold is not None:
        if not -1.0 <= float(threshold) <= 1.0:
            raise ValueError(
                f"threshold is a cosine similarity in [-1, 1], got "
                f"{threshold}."
            )
        return [i for i in range(num_layers) if scores[i] > threshold]
    k = _check_k(k, num_layers)
    # Most similar first; ties broken towards the higher (later) layer.
    order = sorted(range(num_layers), key=lambda i: (-scores[i], -i))
    return sorted(order[:k])


def hidden_states_model(backbone):
    """A Keras model with the backbone's inputs whose outputs are the
    ``L + 1`` hidden states: the input of layer 0 (embeddings), then the
    output of every layer."""
    blocks = backbone.transformer_layers
    first = blocks[0].input  # (hidden states, padding mask)
    if isinstance(first, (list, tuple)):
        first = first[0]
    outputs = [first] + [block.output for block in blocks]
    return keras.Model(backbone.inputs, outputs)


def _batches(data):
    """Backbone input dicts from an iterable of dicts or (inputs, ...)
    tuples (a tf.data.Dataset, a list, a generator)."""
    for element in data:
        if isinstance(element, (tuple, list)):
            element = element[0]
        if not isinstance(element, dict):
            raise ValueError(
                "data must yield backbone input dicts (token_ids, "
                "segment_ids, padding_mask) or (inputs, labels) tuples; got "
                f"{type(element).__name__}."
            )
        yield element


def layer_similarities(backbone, data):
    """Per-layer mean cosine similarity of the [CLS] vector entering and
    leaving each layer.

    Args:
        backbone: ``TrimzooBackbone``.
        data: iterable of backbone input dicts, or of ``(inputs, labels)``
            tuples, e.g. a batched ``tf.data.Dataset``.

    Returns:
        float64 array ``[num_layers]``: the mean over all examples.
    """
    model = hidden_states_model(backbone)
    total = np.zeros(backbone.num_layers)
    count = 0
    for inputs in _batches(data):
        states = model(inputs, training=False)
        cls = [np.asarray(keras.ops.convert_to_numpy(s[:, 0, :]),
                          dtype="float64") for s in states]
        for i in range(backbone.num_layers):
            a, b = cls[i], cls[i + 1]
            cos = (a * b).sum(-1) / np.maximum(
                np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1),
                1e-12)
            total[i] += cos.sum()
        count += cls[0].shape[0]
    if not count:
        raise ValueError("data yielded no examples.")
    return total / count


def drop_plan(backbone, strategy=None, k=None, layers=None, data=None,
              threshold=None):
    """What ``drop_layers`` would drop, and why, as a JSON-able dict:
    ``num_layers``, ``strategy``, ``k``, ``threshold``, ``dropped`` and
    ``kept`` (0-based), ``dropped_paper_numbering`` (1-based) and
    ``similarities`` (per layer, for ``"contribution"``; else None)."""
    num_layers = backbone.num_layers
    scores = None
    if layers is not None:
        if strategy is not None or k is not None or threshold is not None:
            raise ValueError("Pass either layers or a strategy (with k / "
                             "threshold), not both.")
        dropped = _check_layers(layers, num_layers)
    else:
        if strategy is None:
            raise ValueError("Pass a strategy (one of "
                             f"{list(STRATEGIES)}) or explicit layers.")
        if strategy == "contribution":
            if data is None:
                raise ValueError("strategy='contribution' needs data.")
            # Validate k / threshold before the (slow) pass over the data.
            _contribution_layers(num_layers, np.zeros(num_layers), k,
                                 threshold)
            scores = layer_similarities(backbone, data)
            logger.info("Per-layer [CLS] similarities: %s",
                        np.round(scores, 4).tolist())
        elif data is not None:
            raise ValueError(
                "data is only used by strategy='contribution'.")
        dropped = layers_to_drop(num_layers, strategy, k=k, scores=scores,
                                 threshold=threshold)
    if len(dropped) == num_layers:
        raise ValueError(
            f"This would drop all {num_layers} layers; keep at least one.")
    return {
        "num_layers": num_layers,
        "strategy": strategy,
        "k": None if k is None else int(k),
        "threshold": None if threshold is None else float(threshold),
        "dropped": dropped,
        "kept": [i for i in range(num_layers) if i not in dropped],
        "dropped_paper_numbering": [i + 1 for i in dropped],
        "similarities": None if scores is None else scores.tolist(),
    }


def _check_layers(layers, num_layers):
    return check_indices("layers", layers, num_layers, "layers",
                         allow_empty=True)


def keep_layers(backbone, kept):
    """A new backbone with only the layers ``kept`` (0-based, in order),
    with copied weights and each kept layer's own options: ``extract``
    with ``layers=kept``."""
    return extract(backbone, layers=kept)


def drop_layers(backbone, strategy=None, k=None, layers=None, data=None,
                threshold=None, return_scores=False):
    """Drops layers of a (pretrained) backbone: Poor Man's BERT.

    Returns a new backbone of the same class with copied weights: the
    embeddings, the pooler and the kept layers, each with its own FFN,
    layernorm and attention-normaliser options, so it works for every
    trimzoo backbone (TrimBERT, Bort, ...). The source is not modified.
    Dropping the top k layers reproduces the source's hidden state after
    layer L - k; dropping nothing gives a copy of the source.

    Args:
        backbone: ``TrimzooBackbone``.
        strategy: str or None. ``"top"``, ``"bottom"``, ``"odd"``,
            ``"even"``, ``"symmetric"`` or ``"contribution"`` (see the module
            docstring).
        k: int or None. How many layers to drop.
        layers: list of int or None. Explicit 0-based indices to drop,
            instead of a strategy.
        data: iterable of input dicts or ``(inputs, labels)`` tuples, for
            ``"contribution"`` (e.g. a batched ``tf.data.Dataset``).
        threshold: float or None. For ``"contribution"``: drop the layers
            whose mean [CLS] similarity is above it (instead of ``k``).
        return_scores: bool. Also return the per-layer similarities (an
            array for ``"contribution"``, else None). They are logged at
            INFO level either way. Defaults to False.

    Returns:
        The new backbone, or ``(backbone, similarities)`` with
        ``return_scores=True``.

    Raises:
        ValueError: for an unknown strategy, an invalid ``k`` or index,
            contradictory arguments, or dropping every layer.

    Examples:
    >>> import trimzoo
    >>> backbone = trimzoo.models.bert_tiny(vocabulary_size=100,
    ...                                     num_layers=4)
    >>> drop_layers(backbone, strategy="top", k=1).num_layers
    3
    >>> drop_layers(backbone, layers=[0, 2]).num_layers
    2
    """
    plan = drop_plan(backbone, strategy=strategy, k=k, layers=layers,
                     data=data, threshold=threshold)
    new = keep_layers(backbone, plan["kept"])
    if return_scores:
        scores = plan["similarities"]
        return new, None if scores is None else np.asarray(scores)
    return new


def describe_plan(plan):
    """One sentence saying what ``plan`` (``drop_plan``) drops and why."""
    numbers = plan["dropped_paper_numbering"]
    what = (f"drops layers {numbers} of {plan['num_layers']} (1-based, as in "
            "the paper)" if numbers else "drops no layer")
    strategy = plan["strategy"]
    if strategy is None:
        return f"Explicit layer list: {what}."
    if strategy == "contribution":
        rule = (f"similarity above {plan['threshold']}"
                if plan["threshold"] is not None
                else f"the {plan['k']} highest similarities")
        return (f"Contribution-based dropping ([CLS] cosine similarity "
                f"between each layer's input and output; {rule}): {what}.")
    return f"Strategy {strategy!r} with k={plan['k']}: {what}."
