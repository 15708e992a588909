"""Importance of attention heads, FFN neurons and hidden dimensions.

Two families of scores, both summed over the batches of ``data``:

- ``"gradient"``: first-order estimates of how much the loss changes when
  a part is removed. Head ``h`` (Michel, Levy and Neubig 2019): ``|dL/d
  xi_h|`` for a gate ``xi_h = 1`` on the head's context; the gate scales the
  head's rows of the output projection, so ``dL/d xi_h = sum(W_o[h] *
  dL/dW_o[h])`` exactly, computed from the weight gradient of the normal
  graph. FFN neuron ``i`` (DynaBERT, Hou et al. 2020): ``|sum W1[:, i]
  dL/dW1[:, i] + b1_i dL/db1_i| + |sum W2[i, :] dL/dW2[i, :]|``. Hidden
  dimension ``d``: ``|sum w dL/dw|`` over every weight touching ``d``
  (embedding columns, layernorm entries, projection rows and columns,
  biases, pooler and task head), the first-order loss change of removing
  the dimension. As in the reference implementations the absolute value is
  taken per batch (of the batch-mean loss), then summed.
- ``"magnitude"``: the L2 norm of the weights a part owns (a head's query,
  key and value columns and output rows; a neuron's input column, bias
  and output row; every weight touching a hidden dimension). No data.

The loss ``L`` (``ImportanceLoss``): cross-entropy (MSE for one output) of
a ``TrimzooClassifier`` on labelled data; masked-LM cross-entropy of a
``TrimzooMaskedLM`` on a corrupted copy of the input (15% of the real,
non-special tokens replaced by ``mask_token_id``, or by random ids); and for
a bare backbone a denoising self-distillation loss: the squared distance
between the sequence output on the corrupted input and the (constant)
sequence output on the clean input, averaged over real tokens. The plain
distance between a gated model and the original is zero with zero gradient
at gates = 1; the corrupted input makes the score measure how much each
part helps the model recover its own representation of masked tokens, the
representation-space analogue of the masked-LM objective it was trained
on.
"""

import keras
import numpy as np
import tensorflow as tf

from trimzoo.models import TrimzooClassifier, TrimzooMaskedLM
from trimzoo.models.extract import backbone_of
from trimzoo.models.preprocessors import MASK_RATE

IMPORTANCE = ("gradient", "magnitude")


def _split(element):
    """``(inputs dict of NumPy arrays, labels or None)`` of a data element."""
    labels = None
    if isinstance(element, (tuple, list)):
        element, labels = element[0], (element[1] if len(element) > 1
                                       else None)
    if not isinstance(element, dict):
        raise ValueError(
            "data must yield backbone input dicts (token_ids, segment_ids, "
            "padding_mask) or (inputs, labels) tuples; got "
            f"{type(element).__name__}.")
    inputs = {k: np.asarray(keras.ops.convert_to_numpy(v)).astype("int32")
              for k, v in element.items()}
    if labels is not None:
        labels = np.asarray(keras.ops.convert_to_numpy(labels))
    return inputs, labels


class ImportanceLoss:
    """The loss whose gradients score a model's parts (module docstring).

    ``prepare(element)`` turns a data element into fixed arrays (the
    corruption is drawn there, from a seeded generator), ``loss(prepared)``
    is the scalar loss of the model's current weights on them, so a
    prepared batch can be re-evaluated after changing weights.

    Args:
        model: ``TrimzooBackbone``, ``TrimzooClassifier`` or
            ``TrimzooMaskedLM``.
        mask_token_id: int or None. Replacement for corrupted tokens; None
            draws random ids. Defaults to None.
        mask_rate: float. Share of real tokens corrupted. Defaults to 0.15.
        seed: int. Defaults to 0.
    """

    def __init__(self, model, mask_token_id=None, mask_rate=MASK_RATE, seed=0):
        backbone_of(model)
        if not 0.0 < mask_rate < 1.0:
            raise ValueError(f"mask_rate must be in (0, 1), got {mask_rate}.")
        self.model = model
        self.mask_token_id = mask_token_id
        self.mask_rate = float(mask_rate)
        self.rng = np.random.default_rng(seed)

    def prepare(self, element):
        inputs, labels = _split(element)
        if isinstance(self.model, TrimzooClassifier):
            if labels is None:
                raise ValueError("A classifier's importance needs labelled "
                                 "data: (inputs, labels) tuples.")
            return inputs, labels
        corrupted, positions = self._corrupt(inputs)
        if isinstance(self.model, TrimzooMaskedLM):
            targets = np.take_along_axis(inputs["token_ids"], positions, 1)
            return {**corrupted, "mask_positions": positions}, targets
        clean = self.model(inputs, training=False)["sequence_output"]
        return corrupted, np.asarray(keras.ops.convert_to_numpy(clean))

    def _corrupt(self, inputs):
        """Replaces ``mask_rate`` of each row's real tokens (not the first
        and last, the special tokens) and returns the positions."""
        candidates = []
        for row in inputs["padding_mask"] > 0:
            real = np.flatnonzero(row)
            # Skip the first and last real tokens ([CLS], [SEP]) when there
            # is anything in between.
            candidates.append(real[1:-1] if len(real) > 2 else real[1:]
                              if len(real) == 2 else real)
        shortest = min(len(c) for c in candidates)
        if shortest == 0:
            raise ValueError("Every example needs at least one real token.")
        count = max(1, int(round(self.mask_rate * shortest)))
        positions = np.stack([np.sort(self.rng.choice(c, count,
                                                      replace=False))
                              for c in candidates]).astype("int32")
        ids = inputs["token_ids"].copy()
        vocabulary = backbone_of(self.model).vocabulary_size
        replacement = (np.full(positions.shape, self.mask_token_id)
                       if self.mask_token_id is not None
                       else self.rng.integers(0, vocabulary, positions.shape))
        np.put_along_axis(ids, positions, replacement.astype("int32"), 1)
        return {**inputs, "token_ids": ids}, positions

    def loss(self, prepared):
        inputs, target = prepared
        out = self.model(inputs, training=False)
        if isinstance(self.model, TrimzooClassifier):
            if self.model.num_classes == 1:
                return keras.ops.mean(keras.ops.square(
                    keras.ops.reshape(out, (-1,))
                    - keras.ops.cast(target.reshape(-1), out.dtype)))
            from_logits = self.model.activation is not keras.activations.get(
                "softmax")
            return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
                target, out, from_logits=from_logits))
        if isinstance(self.model, TrimzooMaskedLM):
            return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
                target, out, from_logits=True))
        seq = out["sequence_output"]
        weight = keras.ops.cast(inputs["padding_mask"] > 0, seq.dtype)
        err = keras.ops.sum(keras.ops.square(
            seq - keras.ops.cast(target, seq.dtype)), axis=-1)
        return keras.ops.sum(err * weight) / keras.ops.sum(weight)


def hidden_weights(model):
    """``[(variable, axes)]``: every weight touching a hidden dimension and
    the axes that run over the hidden dimensions."""
    backbone = backbone_of(model)
    out = [(backbone.token_embedding.embeddings, (1,)),
           (backbone.position_embedding.position_embeddings, (1,)),
           (backbone.segment_embedding.embeddings, (1,))]
    norms = [backbone.embeddings_layer_norm]
    for block in backbone.transformer_layers:
        attention = block.attention
        out += [(attention.qkv.kernel, (0,)),
                (attention.output_dense.kernel, (1,)),
                (attention.output_dense.bias, (0,))]
        norms += [block.attention_layer_norm, block.ffn_layer_norm]
        if block.use_ffn:
            out += [(block.ffn_intermediate.kernel, (0,)),
                    (block.ffn_output.kernel, (1,)),
                    (block.ffn_output.bias, (0,))]
    out += [(backbone.pooled_dense.kernel, (0, 1)),
            (backbone.pooled_dense.bias, (0,))]
    if isinstance(model, TrimzooClassifier):
        out.append((model.output_dense.kernel, (0,)))
    elif isinstance(model, TrimzooMaskedLM):
        # keras-hub keeps the head's transform in private attributes.
        head = model.masked_lm_head
        out += [(head._intermediate_dense.kernel, (0, 1)),
                (head._intermediate_dense.bias, (0,))]
        norms.append(head._intermediate_layer_norm)
    for norm in norms:
        if norm is not None:
            out += [(norm.gamma, (0,)), (norm.beta, (0,))]
    return out


def _per_dim(product, axes):
    """Sums ``product`` to one value per hidden dimension; a square weight
    with both axes hidden counts each entry once."""
    if product.ndim == 1:
        return product
    if axes == (0, 1):
        return product.sum(1) + product.sum(0) - np.diag(product)
    return product.sum(1 - axes[0])


def _array(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype="float64")


def _accumulate(model, products, scores, parts):
    """Adds one batch's per-part sums of ``products`` (``id(variable)`` ->
    elementwise product) to ``scores``; absolute values of gradient sums,
    plain sums of squared weights."""
    backbone = backbone_of(model)

    def p(var):
        return products.get(id(var), 0.0)

    if "heads" in parts:
        for i, block in enumerate(backbone.transformer_layers):
            att = block.attention
            rows = np.reshape(p(att.output_dense.kernel),
                              (att.num_heads, -1)).sum(1)
            if scores["kind"] == "magnitude":
                qkv = np.reshape(p(att.qkv.kernel),
                                 (-1, 3, att.num_heads, att.head_dim))
                bias = np.reshape(p(att.qkv.bias),
                                  (3, att.num_heads, att.head_dim))
                rows = rows + qkv.sum((0, 1, 3)) + bias.sum((0, 2))
            scores["heads"][i] += _signless(rows, scores["kind"])
    if "ffn" in parts:
        for i, block in enumerate(backbone.transformer_layers):
            if not block.use_ffn:
                continue
            into = (np.sum(p(block.ffn_intermediate.kernel), 0)
                    + p(block.ffn_intermediate.bias))
            out = np.sum(p(block.ffn_output.kernel), 1)
            scores["ffn"][i] += (into + out if scores["kind"] == "magnitude"
                                 else np.abs(into) + np.abs(out))
    if "hidden" in parts:
        total = sum(_per_dim(p(var), axes) if id(var) in products else 0.0
                    for var, axes in hidden_weights(model))
        scores["hidden"] += _signless(total, scores["kind"])


def _signless(values, kind):
    return values if kind == "magnitude" else np.abs(values)


def _score_variables(model, parts):
    backbone = backbone_of(model)
    variables = []
    for block in backbone.transformer_layers:
        if "heads" in parts:
            variables += [block.attention.output_dense.kernel,
                          block.attention.qkv.kernel,
                          block.attention.qkv.bias]
        if "ffn" in parts and block.use_ffn:
            variables += [block.ffn_intermediate.kernel,
                          block.ffn_intermediate.bias,
                          block.ffn_output.kernel]
    if "hidden" in parts:
        variables += [var for var, _ in hidden_weights(model)]
    unique = {}
    for var in variables:
        unique.setdefault(id(var), var)
    return list(unique.values())


def importance_scores(model, data=None, importance="gradient",
                      parts=("heads", "ffn", "hidden"), mask_token_id=None,
                      max_batches=None, seed=0, progress=None):
    """Raw importance scores of a model's heads, FFN neurons and hidden
    dimensions (see the module docstring; not normalised).

    Args:
        model: ``TrimzooBackbone``, ``TrimzooClassifier`` or
            ``TrimzooMaskedLM``.
        data: iterable of input dicts or ``(inputs, labels)`` tuples (a
            batched ``tf.data.Dataset``, a list); needed for
            ``"gradient"``.
        importance: str. ``"gradient"`` or ``"magnitude"``. Defaults to
            ``"gradient"``.
        parts: which of ``"heads"``, ``"ffn"``, ``"hidden"`` to score.
        mask_token_id: int or None. See ``ImportanceLoss``.
        max_batches: int or None. Stop after this many batches.
        seed: int. Seed of the input corruption. Defaults to 0.
        progress: callable or None. Called after each gradient batch with
            the number of batches done.

    Returns:
        dict with ``heads`` (one float64 array per layer), ``ffn`` (one
        array per layer, None where a layer has no FFN) and ``hidden`` (one
        array), for the parts asked for, and ``num_batches``.

    Examples:
    >>> import trimzoo
    >>> model = trimzoo.models.bert_tiny(vocabulary_size=100)
    >>> scores = importance_scores(model, importance="magnitude")
    >>> [s.shape for s in scores["heads"]], scores["hidden"].shape
    ([(2,), (2,)], (128,))
    """
    if importance not in IMPORTANCE:
        raise ValueError(f"Unknown importance {importance!r}. Valid values: "
                         f"{list(IMPORTANCE)}.")
    unknown = sorted(set(parts) - {"heads", "ffn", "hidden"})
    if unknown:
        raise ValueError(f"Unknown parts {unknown}; valid: heads, ffn, "
                         "hidden.")
    backbone = backbone_of(model)
    blocks = backbone.transformer_layers
    scores = {
        "kind": importance,
        "heads": [np.zeros(b.attention.num_heads) for b in blocks],
        "ffn": [np.zeros(b.intermediate_dim) if b.use_ffn else None
                for b in blocks],
        "hidden": np.zeros(backbone.hidden_dim),
    }
    variables = _score_variables(model, parts)
    batches = 0
    if importance == "magnitude":
        _accumulate(model, {id(v): _array(v) ** 2 for v in variables},
                    scores, parts)
        for key in ("heads", "ffn", "hidden"):
            value = scores[key]
            scores[key] = (np.sqrt(value) if not isinstance(value, list)
                           else [None if s is None else np.sqrt(s)
                                 for s in value])
    else:
        if data is None:
            raise ValueError("importance='gradient' needs data (or use "
                             "importance='magnitude').")
        loss = ImportanceLoss(model, mask_token_id=mask_token_id, seed=seed)
        for element in data:
            if max_batches is not None and batches >= max_batches:
                break
            prepared = loss.prepare(element)
            with tf.GradientTape() as tape:
                value = loss.loss(prepared)
            grads = tape.gradient(value, variables)
            products = {id(v): _array(v) * _array(g)
                        for v, g in zip(variables, grads) if g is not None}
            _accumulate(model, products, scores, parts)
            batches += 1
            if progress is not None:
                progress(batches)
        if not batches:
            raise ValueError("data yielded no batches.")
    out = {key: scores[key] for key in parts}
    out["num_batches"] = batches
    return out
