"""Weight inheritance: any smaller zoo architecture cut from a trained model.

``extract`` is the one primitive behind layer dropping (Poor Man's BERT),
head and FFN-neuron pruning (Michel et al. 2019; DynaBERT, Hou et al.
2020), narrower hidden states (Bort's ``H``, de Wynter & Perry 2020) and
the TrimBERT conversion (``to_trimbert``): it keeps a subset of a source
model's layers, heads, FFN neurons and hidden dimensions, optionally removes
FFN sublayers and layernorms or switches the attention normaliser, and
returns a new model of the same kind that carries the source's weights for
everything that remains. The result is one ``TrimzooBackbone`` (per-layer
``num_heads`` and ``intermediate_dim``, the source's ``head_dim``), so it
saves, loads and exports like any zoo model.

What each cut does to the source's function:

- dropping top layers, heads or FFN neurons is exact: the extracted model
  computes what the source computes with those layers skipped, those heads'
  context (before the output projection) zeroed, those neurons zeroed;
  keeping everything reproduces the source bit for bit;
- dropping hidden dimensions is not exact: every layernorm then normalises
  over fewer dimensions (different mean and variance), so even the
  embeddings change; it is a starting point for distillation or
  fine-tuning, as in Bort;
- removing an FFN sublayer or a layernorm, or switching the normaliser,
  changes the function (see ``to_trimbert`` for measured sizes).
"""

import numpy as np

from trimzoo.models.backbone import (
    TrimzooBackbone,
    resolve_ffn_layers,
    resolve_layer_norms,
    resolve_normalizers,
)
from trimzoo.models.classifier import TrimzooClassifier
from trimzoo.models.masked_lm import TrimzooMaskedLM


def backbone_of(model):
    """The ``TrimzooBackbone`` of a backbone, classifier or masked LM."""
    if isinstance(model, (TrimzooClassifier, TrimzooMaskedLM)):
        return model.backbone
    if isinstance(model, TrimzooBackbone):
        return model
    raise TypeError(
        "Expected a TrimzooBackbone, TrimzooClassifier or "
        f"TrimzooMaskedLM, got {type(model).__name__}.")


def check_indices(what, values, size, unit, allow_empty=False):
    """Sorted unique 0-based indices below ``size``; None means all.

    Raises:
        ValueError: naming ``what`` for non-integers, duplicates, indices
            out of range or (unless ``allow_empty``) an empty selection.
    """
    if values is None:
        return list(range(size))
    try:
        values = list(values)
    except TypeError:
        raise ValueError(f"{what} must be a list of 0-based indices, got "
                         f"{values!r}.") from None
    bad = [v for v in values if isinstance(v, bool)
           or not isinstance(v, (int, np.integer)) or not 0 <= v < size]
    if bad:
        raise ValueError(
            f"{what} must be 0-based indices in [0, {size - 1}] (there are "
            f"{size} {unit}); got {bad}.")
    if len(set(values)) != len(values):
        raise ValueError(f"{what} has duplicates: {values}.")
    if not values and not allow_empty:
        raise ValueError(f"{what} keeps no {unit}; keep at least one.")
    return sorted(int(v) for v in values)


def _per_layer(name, spec, kept):
    """``spec`` as one entry per kept layer: None, a sequence aligned with
    the kept layers, or a dict ``{source layer index: entry}``."""
    if spec is None:
        return [None] * len(kept)
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - set(kept))
        if unknown:
            raise ValueError(
                f"{name} names source layers {unknown}, which are not kept "
                f"(kept layers: {kept}).")
        return [spec.get(i) for i in kept]
    spec = list(spec)
    if len(spec) != len(kept):
        raise ValueError(
            f"{name} has {len(spec)} entries but {len(kept)} layers are kept; "
            "give one entry (a list of indices, or None for all) per kept "
            "layer, or a dict {source layer index: indices}.")
    return spec


def _uniform(values):
    return values[0] if len(set(values)) == 1 else list(values)


def _structure(backbone, kept, ffn_layers, layer_norm, attention_norm,
               ffn_norm, attention_normalizer):
    """Per-kept-layer (ffn, attention_norm, ffn_norm, normaliser) flags and
    the config entries that state them."""
    options = [backbone.layer_options[i] for i in kept]
    n = len(kept)
    had_ffn = tuple(o["use_ffn"] for o in options)
    ffn = had_ffn if ffn_layers is None else resolve_ffn_layers(ffn_layers, n)
    added = [kept[j] for j in range(n) if ffn[j] and not had_ffn[j]]
    if added:
        raise ValueError(
            f"ffn_layers asks for an FFN in source layers {added}, which have "
            "none: extract only removes parts, it cannot create weights.")
    if layer_norm is not None:
        attn, ffn_ln = resolve_layer_norms(layer_norm, attention_norm,
                                           ffn_norm, ffn)
    else:
        base_attn = tuple(o["attention_norm"] for o in options)
        base_ffn = tuple(o["ffn_norm"] and f for o, f in zip(options, ffn))
        attn, ffn_ln = resolve_layer_norms(
            "all", base_attn if attention_norm is None else attention_norm,
            base_ffn if ffn_norm is None else ffn_norm, ffn)
    for site, flags in (("attention_norm", attn), ("ffn_norm", ffn_ln)):
        added = [kept[j] for j in range(n)
                 if flags[j] and not options[j][site]]
        if added:
            raise ValueError(
                f"{site} asks for a layernorm in source layers {added}, which "
                "have none there: extract cannot create weights.")
    normalizers = (tuple(o["attention_normalizer"] for o in options)
                   if attention_normalizer is None
                   else resolve_normalizers(attention_normalizer, n))
    config = {
        "ffn_layers": ffn_layers if isinstance(ffn_layers, str)
        else list(ffn),
        "attention_norm": None if layer_norm and attention_norm is None
        else list(attn),
        "ffn_norm": None if layer_norm and ffn_norm is None else list(ffn_ln),
        "attention_normalizer": attention_normalizer
        if isinstance(attention_normalizer, str) else list(normalizers),
    }
    if layer_norm is not None:
        config["layer_norm"] = layer_norm
    return ffn, config


def extract(source, layers=None, heads=None, ffn_neurons=None,
            hidden_dims=None, ffn_layers=None, layer_norm=None,
            attention_norm=None, ffn_norm=None, attention_normalizer=None,
            return_plan=False):
    """A smaller model that inherits the source's weights.

    Keeps the source layers ``layers``, in each kept layer the heads
    ``heads`` and FFN neurons ``ffn_neurons``, and the hidden dimensions
    ``hidden_dims`` (embeddings, every projection, every layernorm's gamma
    and beta and the pooler are sliced by the same dimensions). Head size is
    the source's, so a layer with fewer heads has a narrower attention.
    With a ``TrimzooClassifier`` or ``TrimzooMaskedLM`` the head comes
    along, sliced by the kept hidden dimensions. The source is not
    modified. See the module docstring for what is exact.

    Args:
        source: ``TrimzooBackbone``, ``TrimzooClassifier`` or
            ``TrimzooMaskedLM``.
        layers: list of int or None. 0-based source layers to keep.
            Defaults to None (all).
        heads: per kept layer, a list of head indices to keep (None: all),
            as a list aligned with the kept layers or a dict ``{source layer
            index: indices}``. Defaults to None (all heads).
        ffn_neurons: FFN neurons to keep, given like ``heads``; a layer
            keeps at least one (remove a sublayer with ``ffn_layers``).
            Defaults to None (all).
        hidden_dims: list of int or None. Hidden dimensions to keep (not
            exact: see the module docstring). Defaults to None (all).
        ffn_layers: tuple of bool or policy (``"every_N"``, ``"none"``) over
            the kept layers: which keep their FFN; only existing FFNs can be
            kept. Defaults to None (as in the source).
        layer_norm: str or None. Layernorm policy over the kept layers
            (``"one_per_block"`` keeps the last layernorm of each block).
            Defaults to None (the source's layernorms, minus those of
            removed FFNs).
        attention_norm, ffn_norm: tuple of bool or None. Per-kept-layer
            layernorm flags; override ``layer_norm``. Defaults to None.
        attention_normalizer: str, tuple of str or None. Score normaliser(s)
            of the kept layers. Defaults to None (as in the source).
        return_plan: bool. Also return a dict of the kept indices
            (``layers``, ``heads``, ``ffn_neurons`` per kept layer, None
            where a layer has no FFN, ``hidden_dims``). Defaults to False.

    Returns:
        A model of the source's kind, or ``(model, plan)``; trainable even
        when the source is frozen.

    Raises:
        ValueError: for indices out of range, duplicates, empty selections
            (every layer keeps at least one head), entries per layer that do
            not match the kept layers, or parts that the source lacks.

    Examples:
    >>> import trimzoo
    >>> source = trimzoo.models.bert_tiny(vocabulary_size=100)
    >>> small = extract(source, layers=[1], heads=[[0]],
    ...                 ffn_neurons=[range(0, 512, 2)])
    >>> small.num_layers, small.num_heads, small.head_dim
    (1, 1, 64)
    >>> small.intermediate_dim
    256
    """
    backbone = backbone_of(source)
    kept = check_indices("layers", layers, backbone.num_layers, "layers")
    options = backbone.layer_options
    ffn, config_update = _structure(
        backbone, kept, ffn_layers, layer_norm, attention_norm, ffn_norm,
        attention_normalizer)
    head_sets, neuron_sets = [], []
    for j, (i, head_spec, ffn_spec) in enumerate(zip(
            kept, _per_layer("heads", heads, kept),
            _per_layer("ffn_neurons", ffn_neurons, kept))):
        head_sets.append(check_indices(
            f"heads of layer {i}", head_spec, options[i]["num_heads"],
            "heads"))
        if not options[i]["use_ffn"] and ffn_spec is not None:
            raise ValueError(f"ffn_neurons given for layer {i}, which has "
                             "no FFN.")
        neuron_sets.append(check_indices(
            f"ffn_neurons of layer {i}", ffn_spec,
            options[i]["intermediate_dim"], "FFN neurons (remove a "
            "sublayer with ffn_layers instead)") if ffn[j] else None)
    hidden = check_indices("hidden_dims", hidden_dims, backbone.hidden_dim,
                           "hidden dimensions")

    config = backbone.get_config()
    config.update(config_update)
    # A new model: trainable even when cut from a frozen source (a teacher
    # frozen for distillation), whose get_config carries trainable=False.
    config["trainable"] = True
    head_dim = options[0]["head_dim"]
    num_heads = [len(h) for h in head_sets]
    ffn_widths = {len(n) for n in neuron_sets if n is not None}
    # A layer without FFN takes the common FFN width, so that a uniform
    # model keeps a scalar intermediate_dim.
    inter = [len(n) if n is not None else
             (next(iter(ffn_widths)) if len(ffn_widths) == 1
              else options[i]["intermediate_dim"])
             for i, n in zip(kept, neuron_sets)]
    default_head_dim = (len(set(num_heads)) == 1
                        and len(hidden) % num_heads[0] == 0
                        and len(hidden) // num_heads[0] == head_dim)
    config.update({
        "num_layers": len(kept),
        "hidden_dim": len(hidden),
        "num_heads": _uniform(num_heads),
        "intermediate_dim": _uniform(inter),
        "head_dim": None if default_head_dim and backbone.head_dim is None
        else head_dim,
    })
    new = type(backbone).from_config(config)
    _copy_weights(backbone, new, kept, head_sets, neuron_sets, hidden)
    model = _with_head(source, new, hidden)
    if return_plan:
        return model, {"layers": kept, "heads": head_sets,
                       "ffn_neurons": neuron_sets, "hidden_dims": hidden}
    return model


def _value(variable):
    return np.asarray(variable.numpy() if hasattr(variable, "numpy")
                      else variable)


def _copy(target, value):
    """``target.assign(value)``; shapes must already agree."""
    if tuple(target.shape) != tuple(value.shape):  # a bug, not bad input
        raise AssertionError(f"{target.path}: {value.shape} != "
                             f"{tuple(target.shape)}")
    target.assign(value)


def _copy_weights(backbone, new, kept, head_sets, neuron_sets, hidden):
    """Writes the source's weights, cut to what is kept, into ``new``.

    Works on the Keras variables directly (not the ``get_state`` view of
    ``trimzoo.checkpoints``, which sits above models), in the variables'
    own dtype, so keeping everything is bit-exact.
    """
    h = np.asarray(hidden)
    for name in ("token_embedding", "segment_embedding"):
        _copy(getattr(new, name).embeddings,
              _value(getattr(backbone, name).embeddings)[:, h])
    _copy(new.position_embedding.position_embeddings,
          _value(backbone.position_embedding.position_embeddings)[:, h])
    _copy_norm(backbone.embeddings_layer_norm, new.embeddings_layer_norm, h)
    _copy(new.pooled_dense.kernel, _value(backbone.pooled_dense.kernel)[h][
        :, h])
    _copy(new.pooled_dense.bias, _value(backbone.pooled_dense.bias)[h])
    for j, i in enumerate(kept):
        old, block = backbone.transformer_layers[i], new.transformer_layers[j]
        size, inner = old.attention.head_dim, old.attention.inner_dim
        cols = np.concatenate([np.arange(k * size, (k + 1) * size)
                               for k in head_sets[j]])
        qkv_cols = np.concatenate([p * inner + cols for p in range(3)])
        _copy(block.attention.qkv.kernel,
              _value(old.attention.qkv.kernel)[h][:, qkv_cols])
        _copy(block.attention.qkv.bias,
              _value(old.attention.qkv.bias)[qkv_cols])
        _copy(block.attention.output_dense.kernel,
              _value(old.attention.output_dense.kernel)[cols][:, h])
        _copy(block.attention.output_dense.bias,
              _value(old.attention.output_dense.bias)[h])
        _copy_norm(old.attention_layer_norm, block.attention_layer_norm, h)
        if block.use_ffn:
            n = np.asarray(neuron_sets[j])
            _copy(block.ffn_intermediate.kernel,
                  _value(old.ffn_intermediate.kernel)[h][:, n])
            _copy(block.ffn_intermediate.bias,
                  _value(old.ffn_intermediate.bias)[n])
            _copy(block.ffn_output.kernel,
                  _value(old.ffn_output.kernel)[n][:, h])
            _copy(block.ffn_output.bias, _value(old.ffn_output.bias)[h])
            _copy_norm(old.ffn_layer_norm, block.ffn_layer_norm, h)


def _copy_norm(old, new, hidden):
    """Layernorm gamma and beta cut to ``hidden``; ``new`` may be None (a
    removed layernorm)."""
    if new is not None:
        _copy(new.gamma, _value(old.gamma)[hidden])
        _copy(new.beta, _value(old.beta)[hidden])


def _with_head(source, backbone, hidden):
    """``backbone`` under the source's task head, sliced to ``hidden``."""
    if isinstance(source, TrimzooBackbone):
        return backbone
    if isinstance(source, TrimzooClassifier):
        model = TrimzooClassifier(
            backbone, num_classes=source.num_classes,
            preprocessor=source.preprocessor, activation=source.activation,
            dropout=source.dropout, pooling=source.pooling,
            label_names=source.label_names)
        old, new = source.output_dense, model.output_dense
        _copy(new.kernel, _value(old.kernel)[hidden])
        _copy(new.bias, _value(old.bias))
        return model
    model = TrimzooMaskedLM(backbone, preprocessor=source.preprocessor)
    # keras-hub's MaskedLMHead keeps its transform in private attributes;
    # the vocabulary projection is the (already sliced) token embedding.
    old, new = source.masked_lm_head, model.masked_lm_head
    dense_old, dense_new = old._intermediate_dense, new._intermediate_dense
    _copy(dense_new.kernel, _value(dense_old.kernel)[hidden][:, hidden])
    _copy(dense_new.bias, _value(dense_old.bias)[hidden])
    _copy_norm(old._intermediate_layer_norm, new._intermediate_layer_norm,
               hidden)
    _copy(new._bias, _value(old._bias))
    return model


def to_trimbert(source, ffn_every=3, normalizer="sigmoid",
                layer_norm="one_per_block", **kwargs):
    """TrimBERT (Sridhar, Sarah and Sundaresan, 2022) cut from a trained
    BERT: keeps the FFN sublayer only in every ``ffn_every``-th layer, one
    layernorm per block (the FFN-output one where the block keeps its FFN,
    else the attention-output one) and switches the attention normaliser;
    every weight that still exists is inherited (``extract``).

    Each change perturbs the source's function before any healing
    (distillation or fine-tuning). Measured on the embedded
    all-MiniLM-L6-v2 (6 layers) over 64 Rotten Tomatoes validation
    sentences: mean cosine similarity of the sequence output to the
    source's over real tokens (of the mean-pooled sentence vector in
    brackets). Removing the FFN of layers 0, 1, 3, 4 (``every_3``): 0.42
    (0.30); only the FFN-output layernorm per block (``one_per_block``):
    0.48 (0.41); normaliser ``"sigmoid"``: 0.26 (0.23), ``"relu"``: 0.79
    (0.78), ``"relu_sum"``: 0.84 (0.85); all three (the defaults): 0.00
    (-0.02). The conversion keeps the weights, not the function: it is a
    starting point for distillation from the source, not a usable model
    by itself.

    Args:
        source: ``TrimzooBackbone``, ``TrimzooClassifier`` or
            ``TrimzooMaskedLM``.
        ffn_every: int or None. Keep the FFN of layers ``N-1, 2N-1, ...``
            (``"every_N"``); None keeps the source's FFNs. Defaults to 3.
        normalizer: str or None. Attention normaliser of every layer; None
            keeps the source's. Defaults to ``"sigmoid"`` (the
            ``trimbert_*`` presets' choice).
        layer_norm: str or None. Layernorm policy; None keeps the source's
            layernorms (minus those of removed FFNs). Defaults to
            ``"one_per_block"``.
        **kwargs: further ``extract`` arguments (``layers``, ``heads``,
            ``ffn_neurons``, ``hidden_dims``, ...).

    Returns:
        A model of the source's kind.

    Examples:
    >>> import trimzoo
    >>> source = trimzoo.models.bert_tiny(vocabulary_size=100, num_layers=3)
    >>> small = to_trimbert(source)
    >>> [o["use_ffn"] for o in small.layer_options]
    [False, False, True]
    >>> small.layer_norm, small.attention_normalizer
    ('one_per_block', 'sigmoid')
    """
    if ffn_every is not None and (
            isinstance(ffn_every, bool)
            or not isinstance(ffn_every, (int, np.integer)) or ffn_every < 1):
        raise ValueError(
            f"ffn_every must be a positive integer or None, got {ffn_every!r}.")
    return extract(
        source,
        ffn_layers=None if ffn_every is None else f"every_{int(ffn_every)}",
        layer_norm=layer_norm, attention_normalizer=normalizer, **kwargs)
