"""Checkpoint folders: detect the format, load a backbone
(``from_pretrained``: with its tokenizer; ``load_preset``: as a zoo preset,
its architecture checked), save a folder that loads back.

Three formats are read, all offline from a local folder:

- ``"hf"``: HuggingFace BERT / RoBERTa (``config.json`` with ``model_type`` +
  ``model.safetensors`` or a sharded ``model.safetensors.index.json``);
- ``"keras_hub_bert"``: a keras-hub ``BertBackbone`` preset;
- ``"trimzoo"``: a ``TrimzooBackbone`` preset, as written by
  ``backbone.save_to_preset``, ``TrimzooClassifier.save_to_preset`` or
  ``save_pretrained``.
"""

import inspect
import json
import logging
import math
import os
import types

import keras
import keras_hub

from trimzoo.checkpoints import hf
from trimzoo.utils.embedded import resolve_checkpoint
from trimzoo.checkpoints.keras_hub_bert import (
    config_from_keras_hub_bert,
    state_from_keras_hub_bert,
)
from trimzoo import models as trimzoo_models
from trimzoo.models import TrimzooClassifier
from trimzoo.models.backbone import (
    TrimzooBackbone,
    resolve_ffn_layers,
    resolve_layer_norms,
    resolve_normalizers,
    resolve_widths,
)
from trimzoo.models.preprocessors import preprocessor_for
from trimzoo.models.state import get_state, set_state
from trimzoo.models.text_task import set_folder_reader
from trimzoo.models.tokenizers import load_tokenizer
from trimzoo.models.zoo import preset_config
from trimzoo.utils.io import (atomic_path, check_links_inside, checked_load,
                              read_json_object, reading_weights, write_json)

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
FORMATS = ("hf", "keras_hub_bert", "trimzoo")
# Fields that define the function a checkpoint computes; the others
# (dropout, dtype) may differ from the checkpoint's and are taken from the
# request.
SHAPE_FIELDS = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim",
                "intermediate_dim", "max_sequence_length", "num_segments")
PER_LAYER_FIELDS = ("ffn_layers", "attention_norm", "ffn_norm",
                    "attention_normalizer")
TRAINING_FIELDS = ("dropout", "dtype")


def backbone_defaults():
    """``TrimzooBackbone``'s constructor defaults, by argument name."""
    params = inspect.signature(TrimzooBackbone.__init__).parameters.values()
    return {p.name: p.default for p in params
            if p.default is not inspect.Parameter.empty}


_defaults = backbone_defaults


def architecture(config):
    """The architecture a ``TrimzooBackbone`` config describes, with
    per-layer options resolved (``"every_3"`` -> a tuple of booleans), so
    that equal networks compare equal."""
    c = {**_defaults(), **config}
    num_layers = c["num_layers"]
    ffn = resolve_ffn_layers(c["ffn_layers"], num_layers)
    attn_norm, ffn_norm = resolve_layer_norms(
        c["layer_norm"], c["attention_norm"], c["ffn_norm"], ffn)
    heads, inter, head_dim = resolve_widths(
        c["num_heads"], c["intermediate_dim"], c["hidden_dim"], num_layers,
        c["head_dim"])
    return {
        **{k: c[k] for k in SHAPE_FIELDS},
        # Per-layer widths: one int when uniform, so that 4 and [4, 4]
        # compare equal (and differ from 8 whatever the layer count).
        "num_heads": heads[0] if len(set(heads)) == 1 else heads,
        "intermediate_dim": inter[0] if len(set(inter)) == 1 else inter,
        "head_dim": head_dim,
        "activation": c["activation"],
        "layer_norm_epsilon": float(c["layer_norm_epsilon"]),
        "ffn_layers": ffn,
        "attention_norm": attn_norm,
        "ffn_norm": ffn_norm,
        "attention_normalizer": resolve_normalizers(
            c["attention_normalizer"], num_layers),
    }


def check_architecture(found, expected, source):
    """Raises ``ValueError`` listing every architecture field in which the
    checkpoint config ``found`` differs from the ``expected`` one.

    Examples:
    >>> import trimzoo
    >>> found = trimzoo.models.preset_config("bert_tiny")
    >>> check_architecture(found, {**found, "dropout": 0.0}, "ckpt")
    >>> check_architecture(found, {**found, "num_layers": 4}, "ckpt")
    Traceback (most recent call last):
    ...
    ValueError: The checkpoint in 'ckpt' does not match the requested architecture:
      num_layers: checkpoint 2, requested 4
    Pass matching overrides, or load it with trimzoo.from_pretrained to take the architecture from the checkpoint.
    """
    have, want = architecture(found), architecture(expected)
    fields = [k for k in have
              if not (k in PER_LAYER_FIELDS
                      and have["num_layers"] != want["num_layers"])]
    diffs = []
    for k in fields:
        if k == "layer_norm_epsilon":
            same = math.isclose(have[k], want[k], rel_tol=1e-6)
        else:
            same = have[k] == want[k]
        if not same:
            diffs.append(f"  {k}: checkpoint {have[k]!r}, requested "
                         f"{want[k]!r}")
    if diffs:
        raise ValueError(
            f"The checkpoint in {source!r} does not match the requested "
            "architecture:\n" + "\n".join(diffs) + "\nPass matching "
            "overrides, or load it with trimzoo.from_pretrained to "
            "take the architecture from the checkpoint."
        )


def checkpoint_format(path):
    """``"hf"``, ``"keras_hub_bert"`` or ``"trimzoo"`` for a checkpoint
    folder.

    Raises:
        FileNotFoundError: if ``path`` is not a folder or has no config.json.
        ValueError: for a pickle-only folder or an unsupported model.

    Examples:
    >>> from trimzoo.utils.embedded import minilm_path
    >>> checkpoint_format(minilm_path())
    'hf'
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"No such checkpoint folder: {path!r}.")
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.exists(config_path):
        hf.check_weight_files(path)  # a clearer error for pickle-only dirs
        raise FileNotFoundError(f"Missing file: {config_path}")
    check_links_inside(path)
    config = read_json_object(config_path)
    if "registered_name" in config or "class_name" in config:
        cls = backbone_class(config, config_path)
        return ("trimzoo" if issubclass(cls, TrimzooBackbone)
                else "keras_hub_bert")
    if "model_type" in config:
        return "hf"
    raise ValueError(
        f"{config_path} is neither a HF config (no 'model_type') nor a "
        "keras-hub preset config (no 'registered_name')."
    )


def read_config(path):
    """``(format, TrimzooBackbone arguments)`` of a checkpoint folder,
    without reading its weights."""
    fmt = checkpoint_format(path)
    config_path = os.path.join(os.fspath(path), CONFIG_FILE)
    config = read_json_object(config_path)
    if fmt == "hf":
        return fmt, hf.config_from_hf(config, source=config_path)
    args = config.get("config")
    if not isinstance(args, dict):
        raise ValueError(f"{config_path}: missing 'config' object.")
    if fmt == "keras_hub_bert":
        return fmt, config_from_keras_hub_bert(types.SimpleNamespace(**args))
    params = set(_defaults()) | {"vocabulary_size", "num_layers", "num_heads",
                                 "hidden_dim", "intermediate_dim"}
    return fmt, {k: v for k, v in args.items() if k in params}


def load_backbone(path, expected=None):
    """A ``TrimzooBackbone`` with the weights of a checkpoint folder.

    The architecture comes from the folder. With ``expected`` (the full
    constructor arguments of a requested preset, as ``load_preset`` passes
    them) every architecture field must match, or a ``ValueError``
    lists the differences; ``dropout`` and ``dtype`` are taken from
    ``expected``. Every weight of the backbone is loaded from the checkpoint
    (a missing or surplus tensor is an error), except a pooler absent from
    a HF masked-LM checkpoint, which keeps its initialisation with a
    warning, as in HF.

    Args:
        path: str. A HF BERT/RoBERTa, keras-hub BertBackbone or trimzoo
            folder.
        expected: dict or None. Requested ``TrimzooBackbone`` arguments.

    Returns:
        ``TrimzooBackbone``.

    Examples:
    A HF BERT folder (written here by ``export_hf``) loads with its own
    architecture, and ``expected`` checks it against a request:

    >>> import os, tempfile, trimzoo
    >>> from trimzoo.checkpoints import export_hf
    >>> path = os.path.join(tempfile.mkdtemp(), "bert")
    >>> export_hf(trimzoo.models.bert_tiny(vocabulary_size=100), path)
    >>> load_backbone(path).num_layers
    2
    >>> request = trimzoo.models.preset_config(
    ...     "bert_tiny", vocabulary_size=100, dropout=0.0)
    >>> load_backbone(path, expected=request).dropout
    0.0
    """
    path = os.fspath(resolve_checkpoint(path))
    fmt, config = read_config(path)
    overrides = {}
    if expected is not None:
        check_architecture(config, expected, path)
        overrides = {k: expected[k] for k in TRAINING_FIELDS
                     if expected.get(k) is not None}
    if fmt == "trimzoo":
        # A TrimzooBackbone subclass rebuilds itself from its own config.
        return _warn_non_finite(_from_trimzoo_preset(path, overrides), path)
    config.update(overrides)
    if fmt == "keras_hub_bert":
        source = checked_load(
            path, lambda: keras_hub.models.BertBackbone.from_preset(path),
            lambda: keras_hub.models.BertBackbone.from_preset(
                path, load_weights=False), _backbone_parts)
        state, missing = state_from_keras_hub_bert(source), []
    else:
        tensors = hf.read_safetensors(path)
        state, missing = hf.state_from_hf(
            tensors, config, read_json_object(os.path.join(path, CONFIG_FILE)),
            source=path)
    backbone = TrimzooBackbone(**config)
    if missing:
        logger.warning("%s has no %s; keeping their initial values.", path,
                       missing)
        fresh = get_state(backbone)
        state.update({name: fresh[name] for name in missing})
    set_state(backbone, state, source=path)
    return _warn_non_finite(backbone, path)


def load_preset(name, weights, **overrides):
    """Preset ``name`` of the zoo with the weights of the checkpoint folder
    ``weights``: ``trimzoo.models.create(name, **overrides)``, loaded.

    The folder's architecture must match the preset with ``overrides``
    (``load_backbone`` with ``expected``), or a ``ValueError`` lists the
    differences; ``dropout`` and ``dtype`` are taken from the request. Also
    ``trimzoo.load_preset``.

    Args:
        name: str. A preset name, see ``trimzoo.models.list_models()``.
        weights: str. A checkpoint folder (HF BERT/RoBERTa, keras-hub
            preset or trimzoo preset).
        **overrides: ``TrimzooBackbone`` arguments that replace the
            preset's.

    Returns:
        ``TrimzooBackbone``.

    Examples:
    >>> import os, tempfile, trimzoo
    >>> path = os.path.join(tempfile.mkdtemp(), "bert")
    >>> save_pretrained(trimzoo.models.bert_tiny(vocabulary_size=100),
    ...                 None, path)
    >>> load_preset("bert_tiny", path, vocabulary_size=100).num_layers
    2
    >>> load_preset("bert_mini", path, vocabulary_size=100)
    Traceback (most recent call last):
    ...
    ValueError: The checkpoint in '...' does not match the requested architecture: ...
    """
    return load_backbone(weights, expected=preset_config(name, **overrides))


def _from_trimzoo_preset(path, overrides):
    return checked_load(
        path, lambda: TrimzooBackbone.from_preset(path, **overrides),
        lambda: TrimzooBackbone.from_preset(path, load_weights=False,
                                            **overrides),
        _backbone_parts)


def _backbone_parts(backbone):
    """What a backbone folder's ``model.weights.h5`` must hold."""
    return ({"model.weights.h5": backbone.weights}, CONFIG_FILE,
            getattr(backbone, "num_layers", None))


def _warn_non_finite(backbone, source):
    """Warns, naming each tensor, when loaded weights hold NaN or inf."""
    bad = [w.path for w in backbone.weights
           if not bool(keras.ops.all(keras.ops.isfinite(w.value)))]
    if bad:
        logger.warning("%s: non-finite values (NaN or inf) in %d tensor(s): "
                       "%s", source, len(bad), ", ".join(bad))
    return backbone


def check_vocabulary(backbone, tokenizer, source):
    """Raises ``ValueError`` when ``tokenizer`` has more tokens than the
    backbone's embedding table (its ids would fail inside a model).

    Examples:
    >>> import trimzoo
    >>> from trimzoo.models.tokenizers import load_tokenizer
    >>> from trimzoo.utils.embedded import minilm_path
    >>> check_vocabulary(trimzoo.models.bert_tiny(vocabulary_size=100),
    ...                  load_tokenizer(minilm_path()), "ckpt")
    Traceback (most recent call last):
    ...
    ValueError: ckpt: the tokenizer has 30522 tokens but the model's embedding table has 100 rows (vocabulary_size); token ids >= 100 would fail. Use the tokenizer the model was trained with.
    """
    size = tokenizer.vocabulary_size()
    if size > backbone.vocabulary_size:
        raise ValueError(
            f"{source}: the tokenizer has {size} tokens but the model's "
            f"embedding table has {backbone.vocabulary_size} rows "
            f"(vocabulary_size); token ids >= {backbone.vocabulary_size} "
            f"would fail. Use the tokenizer the model was trained with.")


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

    Also ``trimzoo.from_pretrained``.

    Args:
        path: str. The checkpoint folder.

    Returns:
        ``(backbone, tokenizer)``: a ``TrimzooBackbone`` and a keras-hub
        tokenizer (callable on strings, also in ``tf.data``).

    Raises:
        FileNotFoundError: for a missing folder, config, weights or
            tokenizer files (use ``load_backbone`` for a folder without a
            tokenizer).
        ValueError: for a pickle checkpoint, an invalid config, an
            unsupported architecture, naming the file and field, or a
            tokenizer larger than the embedding table.

    Examples:
    >>> from trimzoo.utils.embedded import minilm_path
    >>> backbone, tokenizer = from_pretrained(minilm_path())
    >>> backbone.num_layers, backbone.hidden_dim
    (6, 384)
    >>> [tokenizer.id_to_token(int(i)) for i in tokenizer("A naïve café")]
    ['a', 'naive', 'cafe']
    """
    backbone = load_backbone(path)
    tokenizer = load_tokenizer(path)
    check_vocabulary(backbone, tokenizer, path)
    return backbone, tokenizer


def read_task_folder(path):
    """``(backbone, tokenizer)`` of a checkpoint folder that keras-hub's
    ``from_preset`` cannot read (HF BERT / RoBERTa, keras-hub
    ``BertBackbone`` preset), or None for a trimzoo preset folder.

    The trimzoo text tasks' ``from_preset`` reads such folders with it
    (``trimzoo.models.text_task.set_folder_reader``, done below when this
    module is imported, as ``import trimzoo`` does)."""
    check_model_folder(path)
    if checkpoint_format(path) == "trimzoo":
        return None
    return from_pretrained(path)


set_folder_reader(read_task_folder)


def save_pretrained(backbone, tokenizer, path, overwrite=False,
                    extra_files=None):
    """Writes ``backbone`` and ``tokenizer`` as a keras-hub preset folder
    that ``from_pretrained`` (and keras-hub's
    ``from_preset``) read back.

    The folder is written next to ``path`` under a temporary name and
    renamed into place at the end, so ``path`` never holds half a
    checkpoint.

    Args:
        backbone: ``TrimzooBackbone``.
        tokenizer: keras-hub tokenizer or None (then only
            ``load_backbone`` can read the folder).
        path: str. The folder to create.
        overwrite: bool. Replace an existing ``path``. Defaults to False.
        extra_files: dict or None. ``{file name: JSON-serialisable value}``
            written into the folder, e.g. a note of how it was made.

    Examples:
    >>> import os, tempfile, trimzoo
    >>> backbone = trimzoo.models.trimbert_mini(
    ...     vocabulary_size=100, num_layers=3, hidden_dim=32, num_heads=2,
    ...     intermediate_dim=64)
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt")
    >>> save_pretrained(backbone, None, path,
    ...                 extra_files={"note.json": {"steps": 0}})
    >>> checkpoint_format(path), sorted(os.listdir(path))[:3]
    ('trimzoo', ['config.json', 'metadata.json', 'model.weights.h5'])
    >>> load_backbone(path).layer_options[2]["use_ffn"]
    True
    """
    if not isinstance(backbone, TrimzooBackbone):
        raise TypeError(
            f"save_pretrained needs a TrimzooBackbone, got "
            f"{type(backbone).__name__}."
        )
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise FileExistsError(
            f"{path!r} is a file, not a checkpoint folder; overwrite=True "
            "replaces only a folder. Choose another path.")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"{path!r} exists; pass overwrite=True to replace it.")
    with atomic_path(path) as tmp:
        os.makedirs(tmp)
        backbone.save_to_preset(tmp)
        if tokenizer is not None:
            tokenizer.save_to_preset(tmp)
        for name, value in (extra_files or {}).items():
            write_json(os.path.join(tmp, name), value)


def allowed_task_classes():
    """The task classes a ``task.json`` may name, by class name:
    keras-hub's public ``keras_hub.models`` tasks and trimzoo's. Like
    Keras' safe mode, loading resolves names in this table and never
    imports the module a file names."""
    classes = {}
    for module in (keras_hub.models, trimzoo_models):
        for name in dir(module):
            value = getattr(module, name)
            if isinstance(value, type) and issubclass(
                    value, keras_hub.models.Task):
                classes[name] = value
    return classes


def backbone_class(config, source):
    """The backbone class a Keras config (``config.json``, or the
    ``backbone`` of a ``task.json``) names: ``TrimzooBackbone`` (and its
    subclasses) or keras-hub's ``BertBackbone``, resolved by registered
    name; ``ValueError`` naming ``source`` for any other (nothing is
    imported)."""
    name = config.get("registered_name")
    cls = keras.saving.get_registered_object(str(name)) if name else None
    if isinstance(cls, type) and issubclass(
            cls, (TrimzooBackbone, keras_hub.models.BertBackbone)):
        return cls
    raise ValueError(
        f"{source} names the backbone class {config.get('module')}."
        f"{config.get('class_name')} (registered name {name!r}), which is "
        "not TrimzooBackbone or keras-hub's BertBackbone; a config file "
        "never imports a module. Write the folder again with trimzoo "
        "(save_pretrained, save_classifier).")


def check_model_folder(path):
    """The one check of a model folder before anything in it is read, for
    every loader (fine-tuning, compress, predict, export, teachers):
    links stay inside it (:func:`check_links_inside`), ``config.json``
    names an allowed backbone (:func:`backbone_class`; HF configs name
    none), and ``task.json`` an allowed task class (:func:`task_class`) on
    an allowed backbone.

    Returns:
        The task class, or None for a folder without ``task.json``.

    Raises:
        ValueError: in one line naming the file.
    """
    path = os.fspath(path)
    check_links_inside(path)
    config_path = os.path.join(path, CONFIG_FILE)
    if os.path.isfile(config_path):
        config = read_json_object(config_path)
        if "registered_name" in config or "class_name" in config:
            backbone_class(config, config_path)
    task_file = os.path.join(path, "task.json")
    if not os.path.isfile(task_file):
        return None
    cls = task_class(task_file)
    backbone = (read_json_object(task_file).get("config") or {}).get(
        "backbone")
    if isinstance(backbone, dict):
        backbone_class(backbone, task_file)
        if os.path.isfile(config_path):
            _same_architecture(config, config_path, backbone, task_file)
    return cls


def _same_architecture(config, config_path, backbone, task_file):
    """A classifier folder's ``config.json`` (what tools read as its
    architecture) must describe the backbone its ``task.json`` builds and
    its weights hold; keras-hub builds from ``task.json`` alone."""
    ours, theirs = config.get("config") or {}, backbone.get("config") or {}
    fields = [f for f in SHAPE_FIELDS + PER_LAYER_FIELDS
              if f in ours or f in theirs]
    changed = [f for f in fields if ours.get(f) != theirs.get(f)]
    if changed:
        raise ValueError(
            f"{config_path} says " + ", ".join(
                f"{f}={ours.get(f)!r}" for f in changed)
            + f" but {task_file}, whose backbone the weights hold, says "
            + ", ".join(f"{f}={theirs.get(f)!r}" for f in changed)
            + ": the folder mixes two models. Write it again from the "
            "model.")


def load_text_classifier(path):
    """The classifier of a classifier folder (``task.json`` of a keras-hub
    or trimzoo text classifier), loaded after :func:`check_model_folder`:
    what predict, export and the benchmarks load instead of
    ``keras_hub.models.TextClassifier.from_preset``, which resolves a
    folder's class names with Keras' own rules."""
    path = os.fspath(path)
    cls = check_model_folder(path)
    if cls is None or not issubclass(cls, keras_hub.models.TextClassifier):
        name = "no task.json" if cls is None else f"a {cls.__name__}"
        raise ValueError(f"{path} holds {name}, not a text classifier.")
    with reading_weights(path):
        return cls.from_preset(path)


def task_class(path):
    """The allowed class a ``task.json`` names; ``ValueError`` for any
    other (nothing is imported)."""
    config = read_json_object(path)
    allowed = allowed_task_classes()
    registered = keras.saving.get_registered_object(
        str(config.get("registered_name")))
    if registered in allowed.values():
        return registered
    name = config.get("class_name")
    module = str(config.get("module", ""))
    if name in allowed and module.split(".")[0] in (
            "keras_hub", "keras_nlp", "trimzoo"):
        return allowed[name]
    ours = sorted(n for n, c in allowed.items()
                  if c.__module__.startswith("trimzoo"))
    raise ValueError(
        f"{path} names the task class {module}.{name}, which is not a "
        "trimzoo or keras-hub task class; a task.json never imports a "
        f"module. Classes that load: trimzoo's {ours} and keras-hub's "
        "keras_hub.models tasks.")


def is_classifier_folder(path):
    """True for a preset folder holding a classifier (``task.json``), e.g.
    a fine-tuning run's ``best/`` or ``final/``."""
    return os.path.isfile(os.path.join(os.fspath(path), "task.json"))


def load_classifier_folder(path):
    """The ``TrimzooClassifier`` of a classifier folder, with its
    preprocessor (tokenizer, sequence length) and label names.

    Raises:
        FileNotFoundError: no ``task.json`` in ``path``.
        ValueError: ``task.json`` names a class other than trimzoo's
            classifier.
    """

    path = os.fspath(path)
    task_file = os.path.join(path, "task.json")
    if not os.path.isfile(task_file):
        raise FileNotFoundError(
            f"{path} holds no classifier (no task.json); a classifier "
            "folder is written by tools/finetune.py (RUN/best or RUN/final).")
    cls = check_model_folder(path)
    if not issubclass(cls, TrimzooClassifier):
        raise ValueError(
            f"{task_file} names the class {cls.__name__}; only "
            "TrimzooClassifier folders are loaded as classifiers.")
    return TrimzooClassifier.from_preset(path)


def save_classifier(model, preprocessor, path, overwrite=False,
                    extra_files=None):
    """Writes a classifier with its preprocessor (tokenizer, sequence
    length) and label names as one preset folder (``task.json``), which
    ``keras_hub.models.TextClassifier.from_preset``, ``tools/predict.py``
    and ``tools/export.py`` read. Written atomically; weights only, in
    float32.

    Args:
        model: ``TrimzooClassifier``.
        preprocessor: keras-hub ``Preprocessor`` of the classifier, or a
            tokenizer (a ``TrimzooTextClassifierPreprocessor`` on it is
            saved).
        path: str. The folder to create.
        overwrite: bool. Replace an existing ``path``. Defaults to False.
        extra_files: dict or None. ``{file name: JSON value}`` written into
            the folder.
    """
    import copy

    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"{path!r} exists; pass overwrite=True to replace it.")
    config = model.get_config()
    # keras-hub's preset loader cannot parse a mixed policy name; a mixed
    # policy keeps its variables in float32 anyway.
    config["backbone"] = copy.deepcopy(config["backbone"])
    config["backbone"]["config"]["dtype"] = "float32"
    clone = model.__class__.from_config(config)
    clone.set_weights(model.get_weights())
    if not isinstance(preprocessor, keras_hub.models.Preprocessor):
        preprocessor = preprocessor_for(model.backbone, preprocessor)
    clone.preprocessor = preprocessor
    with atomic_path(path) as tmp:
        clone.save_to_preset(tmp)
        for name, value in (extra_files or {}).items():
            write_json(os.path.join(tmp, name), value)
