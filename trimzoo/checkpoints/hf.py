"""HuggingFace BERT / RoBERTa checkpoints (``config.json`` +
``model.safetensors``) <-> trimzoo.

Import and export are a renaming (and a transpose of dense kernels, which HF
stores as ``[out, in]``) of the flat state of ``trimzoo.models.state``.
RoBERTa differs from BERT only in its position table: its first
``pad_token_id + 1`` rows (2 for RoBERTa and Bort) are never used for real
tokens, so trimzoo keeps rows ``[2:]``. That equals the reference for inputs
padded on the right (the convention of every trimzoo pipeline).

Only safetensors files are read: ``pytorch_model.bin`` is a pickle, which can
run code when loaded, and is refused with a message saying how to convert it.
"""

import json
import logging
import math
import os

import keras_hub
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from trimzoo.models.state import get_state
from trimzoo.models.tokenizers import BertWordPieceTokenizer
from trimzoo.utils.io import atomic_path, read_json_object

logger = logging.getLogger(__name__)

SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
UNSAFE_WEIGHT_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
UNSUPPORTED_WEIGHT_FILES = ("tf_model.h5", "flax_model.msgpack")
MODEL_TYPES = ("bert", "roberta")

# HF ``hidden_act`` -> trimzoo ``activation``. "gelu" in HF is the exact erf
# gelu; "gelu_new", "gelu_pytorch_tanh" and "gelu_fast" are the tanh one.
HIDDEN_ACT = {
    "gelu": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "gelu_fast": "gelu_approximate",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
}
# trimzoo ``activation`` -> HF ``hidden_act`` for export.
EXPORT_ACT = {"gelu": "gelu", "gelu_approximate": "gelu_new",
              "relu": "relu", "silu": "silu"}

# (HF name, trimzoo name, transpose) outside the layers ...
_NAMES = (
    ("embeddings.word_embeddings.weight", "embeddings.token", False),
    ("embeddings.position_embeddings.weight", "embeddings.position", False),
    ("embeddings.token_type_embeddings.weight", "embeddings.segment", False),
    ("embeddings.LayerNorm.weight", "embeddings.norm.gamma", False),
    ("embeddings.LayerNorm.bias", "embeddings.norm.beta", False),
    ("pooler.dense.weight", "pooler.kernel", True),
    ("pooler.dense.bias", "pooler.bias", False),
)
# ... and in layer i (HF "encoder.layer.{i}.", trimzoo "layer.{i}.").
_LAYER_NAMES = tuple(
    (f"attention.self.{p}.{w}", f"attention.{p}.{t}", w == "weight")
    for p in ("query", "key", "value")
    for w, t in (("weight", "kernel"), ("bias", "bias"))
) + (
    ("attention.output.dense.weight", "attention.output.kernel", True),
    ("attention.output.dense.bias", "attention.output.bias", False),
    ("attention.output.LayerNorm.weight", "attention_norm.gamma", False),
    ("attention.output.LayerNorm.bias", "attention_norm.beta", False),
    ("intermediate.dense.weight", "ffn.intermediate.kernel", True),
    ("intermediate.dense.bias", "ffn.intermediate.bias", False),
    ("output.dense.weight", "ffn.output.kernel", True),
    ("output.dense.bias", "ffn.output.bias", False),
    ("output.LayerNorm.weight", "ffn_norm.gamma", False),
    ("output.LayerNorm.bias", "ffn_norm.beta", False),
)
# Tensors in HF files that are not backbone weights: buffers, and the heads
# of task models (BertForMaskedLM, ...), which the backbone does not have.
_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
_HEAD_PREFIXES = ("cls.", "lm_head.", "classifier.", "qa_outputs.",
                  "pre_classifier.")


def name_map(num_layers):
    """``{HF name: (trimzoo name, transpose)}`` for a ``num_layers`` model
    (HF names without the ``bert.`` / ``roberta.`` prefix)."""
    names = {hf: (tz, t) for hf, tz, t in _NAMES}
    for i in range(num_layers):
        for hf, tz, t in _LAYER_NAMES:
            names[f"encoder.layer.{i}.{hf}"] = (f"layer.{i}.{tz}", t)
    return names


# --- config.json ----------------------------------------------------------


def position_offset(config):
    """Rows of the position table before the first real position: 0 for
    BERT, ``pad_token_id + 1`` (2) for RoBERTa."""
    if config.get("model_type") == "roberta":
        pad = config.get("pad_token_id", 1)
        return int(pad if pad is not None else 1) + 1
    return 0


def config_from_hf(config, source="config.json"):
    """``TrimzooBackbone`` arguments from a HF BERT/RoBERTa ``config.json``.

    Raises:
        ValueError: naming ``source`` and the field, for a missing or invalid
            field or an architecture trimzoo does not implement (relative
            positions, decoders, another ``model_type``, another activation).

    Examples:
    RoBERTa's first two position rows are never used, so 514 positions in
    the file are 512 in the backbone:

    >>> config = {"model_type": "roberta", "vocab_size": 50265,
    ...           "num_hidden_layers": 4, "num_attention_heads": 8,
    ...           "hidden_size": 1024, "intermediate_size": 768,
    ...           "max_position_embeddings": 514, "type_vocab_size": 1,
    ...           "hidden_act": "gelu", "layer_norm_eps": 1e-5}
    >>> args = config_from_hf(config)
    >>> args["max_sequence_length"], args["num_segments"]
    (512, 1)
    >>> config_from_hf({**config, "hidden_act": "tanh"})
    Traceback (most recent call last):
    ...
    ValueError: config.json: hidden_act 'tanh' is not supported. Valid values: [...].
    """

    def field(name, default=None, kind=int):
        value = config.get(name, default)
        if value is None:
            raise ValueError(f"{source}: missing field {name!r}.")
        if kind is int and (isinstance(value, bool)
                            or not isinstance(value, int) or value < 1):
            raise ValueError(
                f"{source}: {name!r} must be a positive integer, got "
                f"{value!r}."
            )
        if kind is float and (isinstance(value, bool)
                              or not isinstance(value, (int, float))
                              or not math.isfinite(value) or value < 0):
            raise ValueError(
                f"{source}: {name!r} must be a non-negative number, got "
                f"{value!r}."
            )
        return value

    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"{source}: model_type {model_type!r} is not supported; "
            f"trimzoo reads {list(MODEL_TYPES)} checkpoints."
        )
    kind = config.get("position_embedding_type", "absolute")
    if kind != "absolute":
        raise ValueError(
            f"{source}: position_embedding_type {kind!r} is not supported "
            "(only 'absolute')."
        )
    for flag in ("is_decoder", "add_cross_attention"):
        if config.get(flag):
            raise ValueError(f"{source}: {flag}=true is not supported.")
    act = config.get("hidden_act", "gelu")
    if act not in HIDDEN_ACT:
        raise ValueError(
            f"{source}: hidden_act {act!r} is not supported. Valid values: "
            f"{sorted(HIDDEN_ACT)}."
        )
    positions = field("max_position_embeddings")
    offset = position_offset(config)
    if positions <= offset:
        raise ValueError(
            f"{source}: max_position_embeddings ({positions}) must exceed "
            f"the RoBERTa position offset ({offset})."
        )
    return {
        "vocabulary_size": field("vocab_size"),
        "num_layers": field("num_hidden_layers"),
        "num_heads": field("num_attention_heads"),
        "hidden_dim": field("hidden_size"),
        "intermediate_dim": field("intermediate_size"),
        "dropout": float(field("hidden_dropout_prob", 0.1, float)),
        "max_sequence_length": positions - offset,
        "num_segments": field("type_vocab_size", 2),
        "activation": HIDDEN_ACT[act],
        "layer_norm_epsilon": float(field("layer_norm_eps", 1e-12, float)),
    }


# --- model.safetensors ----------------------------------------------------


def check_weight_files(folder):
    """Raises a clear error unless ``folder`` has safetensors weights."""
    has = {name: os.path.exists(os.path.join(folder, name))
           for name in (SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE,
                        *UNSAFE_WEIGHT_FILES, *UNSUPPORTED_WEIGHT_FILES)}
    if has[SAFETENSORS_FILE] or has[SAFETENSORS_INDEX_FILE]:
        return
    unsafe = [n for n in UNSAFE_WEIGHT_FILES if has[n]]
    if unsafe:
        raise ValueError(
            f"{os.path.join(folder, unsafe[0])} is a pickle file, which can "
            "run arbitrary code when loaded; trimzoo only reads safetensors. "
            "Convert it once in an environment you trust, e.g. with "
            "transformers: `AutoModel.from_pretrained(dir).save_pretrained("
            "dir, safe_serialization=True)`, which writes model.safetensors."
        )
    other = [n for n in UNSUPPORTED_WEIGHT_FILES if has[n]]
    if other:
        raise ValueError(
            f"{os.path.join(folder, other[0])}: only safetensors weights "
            "are supported; save the model as model.safetensors."
        )
    raise FileNotFoundError(
        f"No weights in {folder!r}: expected {SAFETENSORS_FILE} or "
        f"{SAFETENSORS_INDEX_FILE}."
    )


def read_safetensors(folder):
    """``{name: np.ndarray}`` from ``model.safetensors`` or the shards listed
    in ``model.safetensors.index.json``; half-precision values become
    float32."""
    check_weight_files(folder)
    single = os.path.join(folder, SAFETENSORS_FILE)
    if os.path.exists(single):
        files = [single]
    else:
        index_path = os.path.join(folder, SAFETENSORS_INDEX_FILE)
        weight_map = read_json_object(index_path).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f"{index_path}: missing or empty 'weight_map'.")
        files = [os.path.join(folder, f)
                 for f in sorted(set(weight_map.values()))]
        missing = [f for f in files if not os.path.exists(f)]
        if missing:
            raise FileNotFoundError(
                f"{index_path} lists shards that are missing: {missing}."
            )
    tensors = {}
    for path in files:
        try:
            with safe_open(path, framework="np") as f:
                shard = {key: f.get_tensor(key) for key in f.keys()}
        except Exception as e:  # safetensors raises its own error type
            raise ValueError(f"Cannot read {path}: {e}") from e
        twice = sorted(set(shard) & set(tensors))
        if twice:
            raise ValueError(f"{path}: tensors {twice[:5]} are also in "
                             "another shard.")
        for key, value in shard.items():
            if not (np.issubdtype(value.dtype, np.integer)
                    or value.dtype == np.bool_):
                value = value.astype("float32")  # also bf16 / fp16
            tensors[key] = value
    return tensors


def _model_prefix(tensors, source):
    """The prefix of the backbone's tensors: "" (BertModel), "bert." or
    "roberta." (task models), ..."""
    suffix = "embeddings.word_embeddings.weight"
    prefixes = [k[: -len(suffix)] for k in tensors if k.endswith(suffix)]
    if len(prefixes) != 1:
        raise ValueError(
            f"{source}: expected one '*{suffix}' tensor, found "
            f"{len(prefixes)}; is this a BERT/RoBERTa checkpoint?"
        )
    return prefixes[0]


def state_from_hf(tensors, config, hf_config, source="model.safetensors"):
    """trimzoo state (see ``trimzoo.models.state``) from HF tensors.

    Args:
        tensors: dict of HF tensor name -> array, as ``read_safetensors``.
        config: the ``TrimzooBackbone`` arguments (``config_from_hf``).
        hf_config: the HF ``config.json`` dict (for the position offset).
        source: what to name in errors.

    Returns:
        ``(state, missing)``: the state, and the trimzoo names that the
        checkpoint lacks and may legitimately lack (the pooler, absent from
        masked-LM RoBERTa checkpoints).

    Raises:
        ValueError: for tensors that belong to no trimzoo weight (another
            architecture) or a wrong position-table size.
    """
    prefix = _model_prefix(tensors, source)
    names = name_map(config["num_layers"])
    state, ignored, unknown = {}, [], []
    for key, value in tensors.items():
        if not key.startswith(prefix):
            (ignored if key.startswith(_HEAD_PREFIXES) else unknown).append(
                key)
            continue
        name = key[len(prefix):]
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
            "LayerNorm.beta", "LayerNorm.bias")
        if name in _BUFFERS:
            continue  # constant buffers, not weights
        if name.startswith(_HEAD_PREFIXES):
            ignored.append(key)
        elif name in names:
            target, transpose = names[name]
            state[target] = value.T if transpose else value
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(
            f"{source} has {len(unknown)} tensors that are not part of a "
            f"{config['num_layers']}-layer BERT/RoBERTa encoder, e.g. "
            f"{sorted(unknown)[:5]}. Check num_hidden_layers in config.json."
        )
    if ignored:
        logger.info("%s: ignoring %d tensors outside the backbone, e.g. %s",
                    source, len(ignored), sorted(ignored)[:3])
    offset = position_offset(hf_config)
    if "embeddings.position" in state:
        table = state["embeddings.position"]
        want = config["max_sequence_length"] + offset
        if table.shape[0] != want:
            raise ValueError(
                f"{source}: the position table has {table.shape[0]} rows, "
                f"config.json says max_position_embeddings={want}."
            )
        state["embeddings.position"] = table[offset:]
    missing = [n for n in ("pooler.kernel", "pooler.bias") if n not in state]
    return state, missing


# --- export ---------------------------------------------------------------


def check_exportable(backbone):
    """Raises ``ValueError`` listing what a HF BERT/RoBERTa cannot express
    (FFN-less layers, dropped layernorms, other normalisers, activations).

    Examples:
    >>> import trimzoo
    >>> check_exportable(trimzoo.models.bert_tiny(vocabulary_size=100))
    >>> check_exportable(trimzoo.models.trimbert_mini(
    ...     vocabulary_size=100, num_layers=1, hidden_dim=32, num_heads=2,
    ...     intermediate_dim=64, ffn_layers="none"))
    Traceback (most recent call last):
    ...
    ValueError: This backbone cannot be written as a HF BERT/RoBERTa checkpoint, ... Differences: ["layer 0: ['use_ffn', 'ffn_norm', 'attention_normalizer=sigmoid']"]
    """
    problems = []
    for i, opts in enumerate(backbone.layer_options):
        bad = [k for k in ("use_ffn", "attention_norm", "ffn_norm")
               if not opts[k]]
        if opts["attention_normalizer"] != "softmax":
            bad.append(f"attention_normalizer={opts['attention_normalizer']}")
        if bad:
            problems.append(f"layer {i}: {bad}")
    if backbone.activation not in EXPORT_ACT:
        problems.append(f"activation={backbone.activation!r}")
    if not isinstance(backbone.num_heads, int) or not isinstance(
            backbone.intermediate_dim, int) or backbone.head_dim is not None:
        problems.append("per-layer widths (num_heads, intermediate_dim or "
                        "head_dim of a pruned model)")
    if problems:
        raise ValueError(
            "This backbone cannot be written as a HF BERT/RoBERTa "
            "checkpoint, which needs an FFN and both layernorms in every "
            "layer, softmax attention and one of the activations "
            f"{sorted(EXPORT_ACT)}. Differences: {problems[:6]}"
        )


def hf_config(backbone, model_type="bert"):
    """The HF ``config.json`` dict of ``backbone``."""
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"model_type must be one of {list(MODEL_TYPES)}, got "
            f"{model_type!r}."
        )
    roberta = model_type == "roberta"
    return {
        "architectures": ["RobertaModel" if roberta else "BertModel"],
        "model_type": model_type,
        "vocab_size": backbone.vocabulary_size,
        "hidden_size": backbone.hidden_dim,
        "num_hidden_layers": backbone.num_layers,
        "num_attention_heads": backbone.num_heads,
        "intermediate_size": backbone.intermediate_dim,
        "hidden_act": EXPORT_ACT[backbone.activation],
        "hidden_dropout_prob": backbone.dropout,
        "attention_probs_dropout_prob": backbone.dropout,
        "max_position_embeddings": backbone.max_sequence_length
        + (2 if roberta else 0),
        "type_vocab_size": backbone.num_segments,
        "initializer_range": 0.02,
        "layer_norm_eps": backbone.layer_norm_epsilon,
        "pad_token_id": 1 if roberta else 0,
        **({"bos_token_id": 0, "eos_token_id": 2} if roberta else {}),
        "position_embedding_type": "absolute",
    }


def export_tensors(backbone, model_type="bert"):
    """``{HF name: array}`` of ``backbone`` (HF's ``BertModel`` /
    ``RobertaModel`` names, kernels as ``[out, in]``)."""
    check_exportable(backbone)
    state = get_state(backbone)
    if model_type == "roberta":
        # Rows 0 (unused) and 1 (padding_idx) precede the real positions.
        table = state["embeddings.position"]
        state["embeddings.position"] = np.concatenate(
            [np.zeros((2, table.shape[1]), table.dtype), table])
    tensors = {}
    for hf, (name, transpose) in name_map(backbone.num_layers).items():
        value = state.pop(name)
        tensors[hf] = np.ascontiguousarray(value.T if transpose else value)
    if state:  # a state name without an HF counterpart: a bug here
        raise AssertionError(f"Unexported weights: {sorted(state)[:5]}")
    return tensors


def _tokenizer_files(tokenizer):
    """``{file name: text}`` of ``tokenizer`` in HF's format."""
    if isinstance(tokenizer, keras_hub.tokenizers.WordPieceTokenizer):
        files = {"vocab.txt": "".join(
            t + "\n" for t in tokenizer.get_vocabulary())}
        if isinstance(tokenizer, BertWordPieceTokenizer):
            lower = tokenizer.do_lower_case
            strip = tokenizer.get_config()["strip_accents"]
        else:
            lower, strip = tokenizer.lowercase, tokenizer.strip_accents
        config = {"tokenizer_class": "BertTokenizer", "do_lower_case": lower,
                  "strip_accents": strip,
                  "tokenize_chinese_chars": tokenizer.split_on_cjk}
    elif isinstance(tokenizer, keras_hub.tokenizers.BytePairTokenizer):
        files = {
            "vocab.json": json.dumps(dict(tokenizer.vocabulary),
                                     ensure_ascii=False),
            "merges.txt": "#version: 0.2\n" + "".join(
                m + "\n" for m in tokenizer.merges
                if not m.startswith("#version")),
        }
        config = {"tokenizer_class": "RobertaTokenizer",
                  "add_prefix_space": tokenizer.add_prefix_space}
    else:
        raise ValueError(
            f"Cannot export a {type(tokenizer).__name__} in HF format "
            "(WordPiece or byte-level BPE only)."
        )
    files["tokenizer_config.json"] = json.dumps(config, indent=2)
    return files


def export_hf(backbone, path, model_type="bert", tokenizer=None):
    """Writes ``backbone`` as a HF BERT or RoBERTa folder.

    The folder holds ``config.json`` and ``model.safetensors`` (HF
    ``BertModel`` / ``RobertaModel`` names), plus the tokenizer files
    (``vocab.txt`` or ``vocab.json`` + ``merges.txt``, and
    ``tokenizer_config.json``) when ``tokenizer`` is given, so that HF
    ``transformers`` and ``trimzoo.from_pretrained`` both read it.

    Args:
        backbone: ``TrimzooBackbone`` with BERT's per-layer structure (see
            ``check_exportable``).
        path: str. Folder to create (it may exist and be empty).
        model_type: str. ``"bert"`` or ``"roberta"`` (position table written
            with RoBERTa's two leading rows). Defaults to ``"bert"``.
        tokenizer: optional keras-hub WordPiece or byte-level BPE tokenizer.

    Examples:
    >>> import tempfile, trimzoo
    >>> backbone = trimzoo.models.bert_tiny(vocabulary_size=100)
    >>> export_hf(backbone, tempfile.mkdtemp() + "/bert")
    """
    tensors = export_tensors(backbone, model_type)
    config = hf_config(backbone, model_type)
    files = {"config.json": json.dumps(config, indent=2)}
    if tokenizer is not None:
        files.update(_tokenizer_files(tokenizer))
    path = os.fspath(path)
    if os.path.exists(path) and os.listdir(path):
        raise FileExistsError(f"{path!r} exists and is not empty.")
    with atomic_path(path) as tmp:
        os.makedirs(tmp)
        for name, text in files.items():
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.write(text)
        save_file(tensors, os.path.join(tmp, SAFETENSORS_FILE),
                  metadata={"format": "pt"})
