"""The precision a model computes in: ``"float32"``, ``"bfloat16"``,
``"float16"`` or ``"auto"``.

``"bfloat16"`` is Keras's ``mixed_bfloat16`` policy: variables stay float32
(saved weights are the same files), matrix products and activations run in
bfloat16, the logits come back float32 from the classifier head. ``"auto"``
picks bfloat16 only where the CPU has bfloat16 units (AMX-BF16 or
AVX512-BF16, see :mod:`trimzoo.utils.hardware`) *and* a short measurement
on this machine finds it faster than float32; everywhere else it stays
float32, which is always correct. The choice and its reason are returned so
that tools can say which precision ran. ``"float16"`` (Keras's
``mixed_float16``) is for GPUs; training in it needs loss scaling, which
the pretraining loop adds. Keras post-training quantization (int8, int4,
float8) is :func:`quantized`, not one of these precisions (see
:data:`QUANTIZATIONS`).

Examples:

>>> no_bf16 = "flags : fpu avx2 fma"
>>> resolve_precision("auto", cpuinfo=no_bf16)
('float32', 'auto: this CPU has no bfloat16 units')
>>> resolve_precision("bfloat16")
('bfloat16', 'asked for')
>>> policy_name("bfloat16"), policy_name("float32")
('mixed_bfloat16', 'float32')
"""

import contextlib
import warnings

import keras
import numpy as np

from trimzoo.models.backbone import TrimzooBackbone
from trimzoo.utils import timing
from trimzoo.utils import hardware

#: Every precision a model, a training run or a tool accepts.
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16",
             "float16": "mixed_float16"}
#: Keras post-training quantization modes (``model.quantize``, see
#: :func:`quantized`) that run on a CPU. Measured against float32 by the
#: benchmark (``tools/benchmark.py --precisions``); not a prediction
#: precision: with TensorFlow their int8 products do not go through oneDNN,
#: and on a 2-core AMD EPYC with AVX512-VNNI (no AMX; 2026-12-02) they ran
#: 2.3-4.3x slower than float32 (docs/benchmarks.md).
QUANTIZATIONS = ("int8", "int4", "float8")
#: ``auto`` takes bfloat16 when it measures at least this much faster.
MIN_SPEEDUP = 1.05
_MEASURED = {}


def check_precision(precision, what="precision"):
    """``precision`` if valid, else a ValueError listing the values."""
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown {what} {precision!r}. Valid values: "
                         f"{list(PRECISIONS)}.")
    return precision


def policy_name(precision):
    """The Keras dtype policy of a resolved precision."""
    return _POLICIES[resolve_precision(precision)[0]]


def measure_bf16_speedup(rounds=5, batch_size=8, seq_len=128, hidden_dim=512,
                         num_layers=2, train_step=None):
    """float32 time / bfloat16 time of a BERT encoder's forward pass (with
    ``train_step``: of the training step it makes) on this machine
    (round-robin, median of per-round ratios; cached per shape and step).

    The probe is a ``num_layers``-layer post-LN encoder of width
    ``hidden_dim`` (4× FFN) at ``batch_size`` × ``seq_len``: the
    matrix-product mix of the zoo's models, small enough to time in a few
    seconds.

    Args:
        train_step: function ``(backbone, inputs) -> callable`` or None.
            The callable runs one training step of ``backbone`` on
            ``inputs`` (no arguments). The training loop passes a step of
            its own (``trimzoo.training.precision.masked_lm_step``: the
            real objective and optimizer); the models know no loss.
            None: a forward pass is timed.
    """
    key = (rounds, batch_size, seq_len, hidden_dim, num_layers, train_step)
    if key in _MEASURED:
        return _MEASURED[key]

    kwargs = dict(vocabulary_size=1000, num_layers=num_layers,
                  num_heads=max(1, hidden_dim // 64), hidden_dim=hidden_dim,
                  intermediate_dim=4 * hidden_dim,
                  max_sequence_length=seq_len)
    models = {}
    for precision in ("float32", "bfloat16"):
        models[precision] = TrimzooBackbone(dtype=_POLICIES[precision],
                                            **kwargs)
    models["bfloat16"].set_weights(models["float32"].get_weights())
    rng = np.random.default_rng(0)
    inputs = {"token_ids": rng.integers(1, 1000, (batch_size, seq_len)
                                        ).astype("int32"),
              "segment_ids": np.zeros((batch_size, seq_len), "int32"),
              "padding_mask": np.ones((batch_size, seq_len), "int32")}
    if train_step is not None:
        calls = {p: train_step(m, inputs) for p, m in models.items()}
    else:
        calls = {p: (lambda m=m: m.predict_on_batch(inputs))
                 for p, m in models.items()}
    times = timing.round_robin(calls, rounds=rounds, warmup=1)
    ratio = timing.median_ratio(times["float32"], times["bfloat16"])
    _MEASURED[key] = ratio
    return ratio


def resolve_precision(precision="auto", cpuinfo=None, measure=None,
                      batch_size=None, train_step=None):
    """``(precision, reason)``: the precision to run in (``"auto"``
    resolved to ``"float32"`` or ``"bfloat16"``) and why.

    Args:
        precision: str. One of :data:`PRECISIONS`.
        cpuinfo: str or None. ``/proc/cpuinfo`` text (tests inject flags);
            None reads this machine's.
        measure: callable or None. Returns the float32/bfloat16 time ratio;
            None: :func:`measure_bf16_speedup` (run once per process and
            batch size).
        batch_size: int or None. The batch size the caller runs: ``auto``
            measures at it (bfloat16 can pay at batch 8 and lose at batch
            1); None: 8.
        train_step: function ``(backbone, inputs) -> callable`` or None.
            The caller trains: ``auto`` times the training step it makes
            (see :func:`measure_bf16_speedup`) instead of a forward pass.
    """
    check_precision(precision)
    if precision != "auto":
        return precision, "asked for"
    units = hardware.cpu_features(cpuinfo)["bf16_units"]
    if not units:
        return "float32", "auto: this CPU has no bfloat16 units"
    if measure is None:
        kwargs = {} if batch_size is None else {"batch_size": int(batch_size)}
        if train_step is not None:
            kwargs["train_step"] = train_step
        ratio = measure_bf16_speedup(**kwargs)
    else:
        ratio = measure()
    at = ((" for a training step" if train_step is not None else "")
          + ("" if batch_size is None else f" at batch {int(batch_size)}"))
    if ratio >= MIN_SPEEDUP:
        return "bfloat16", (f"auto: {', '.join(units)}; bfloat16 measured "
                            f"{ratio:.2f}x float32{at}")
    return "float32", (f"auto: {', '.join(units)}, but bfloat16 measured "
                       f"only {ratio:.2f}x float32{at}")


@contextlib.contextmanager
def dtype_policy(name):
    """``name`` as the global Keras dtype policy inside the block; the
    caller's policy after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _copy(model, policy):
    """A copy of ``model`` (a backbone or a task model with a
    ``backbone``) built under the Keras dtype policy ``policy``, holding
    the same float32 weights and preprocessor."""
    backbone = getattr(model, "backbone", model)
    config = model.get_config()
    if model is backbone:
        config["dtype"] = policy
    else:
        config["backbone"] = dict(config["backbone"])
        config["backbone"]["config"] = dict(config["backbone"]["config"],
                                            dtype=policy)
        # Not rebuilt: the copy shares the model's preprocessor.
        config.pop("preprocessor", None)
    with dtype_policy(policy):
        clone = model.__class__.from_config(config)
    clone.set_weights(model.get_weights())
    if getattr(model, "preprocessor", None) is not None:
        clone.preprocessor = model.preprocessor
    return clone


def with_precision(model, precision):
    """A copy of ``model`` (a backbone or a task model with a ``backbone``)
    computing in ``precision`` (one of :data:`PRECISIONS`), with the
    same float32 weights; the model itself when it already does."""
    policy = policy_name(precision)
    if getattr(model, "backbone", model).dtype_policy.name == policy:
        return model
    return _copy(model, policy)


def quantized(model, mode="int8"):
    """A copy of ``model`` with Keras's post-training quantization
    ``model.quantize(mode)`` applied: the kernels of its dense, einsum-dense
    and embedding layers become ``mode`` variables (int8, int4) with
    per-channel scales, or float8 scaling factors; layernorms, biases and
    the position embeddings stay as they are. ``model`` keeps its float32
    weights (quantize after loading: saved weights are float32 in every
    precision).

    Args:
        model: a backbone or a task model.
        mode: str. One of :data:`QUANTIZATIONS`. Defaults to ``"int8"``.

    Raises:
        ValueError: an unknown mode, listing the valid ones.
    """
    if mode not in QUANTIZATIONS:
        raise ValueError(f"Unknown quantization mode {mode!r}. Valid values: "
                         f"{list(QUANTIZATIONS)}.")
    clone = _copy(model, getattr(model, "backbone", model).dtype_policy.name)
    # The model only: a task's preprocessor (its tokenizer) is no layer to
    # quantize.
    preprocessor = getattr(clone, "preprocessor", None)
    skip = {id(layer) for layer in preprocessor._flatten_layers()} if (
        preprocessor is not None) else set()
    with warnings.catch_warnings():
        # Keras warns once per layer type it leaves as it is (layernorms,
        # dropout, position embeddings...): expected, not news.
        warnings.filterwarnings("ignore", "Layer .* does not have a "
                                "`quantize` method")
        clone.quantize(mode, filters=lambda layer: id(layer) not in skip)
    return clone
