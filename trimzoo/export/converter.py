"""SavedModel -> TFLite conversion, builtin ops only.

This module imports TensorFlow and NumPy only (no Keras model code): the
TFLite converter leaks memory on every call (~20 MB), so code that converts
many models (tests, sweeps) runs :func:`convert_saved_model` in a fresh
process (``trimzoo.export.tflite.convert_file(..., isolate=True)``).

The float path is ``tf.lite.TFLiteConverter.from_saved_model`` with
``supported_ops = [TFLITE_BUILTINS]``: the converter then fails on any op
that would need the Flex delegate (``SELECT_TF_OPS``), which the pip
``ai_edge_litert`` interpreter cannot run. That failure is raised as
:class:`FlexOpsError` naming the ops.
"""

import re
import warnings

import numpy as np
import tensorflow as tf

#: ``quantize`` values: float32 (no quantisation), float16 weights,
#: dynamic-range int8 (int8 weights, activations quantised on the fly) and
#: full-integer int8 (int8 weights and activations, calibrated).
QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")

#: Ops that full-integer ``int8`` keeps in float32 (their inputs are
#: dequantised): the layernorm statistics, the attention scores / softmax /
#: weighted sum and the residual adds and scales. BERT's residual stream has
#: a few outlier features that a per-tensor int8 scale cannot hold; with
#: these ops in int8 the pooled output of the embedded MiniLM checkpoint
#: keeps a mean cosine similarity of ~0.6 to the float model, with them in
#: float ~0.94, and the model is also faster (LiteRT has no XNNPACK kernel
#: for int8 ``BATCH_MATMUL`` / ``SELECT_V2``). The matmuls of the dense
#: layers (all the weights) stay int8.
INT8_FLOAT_OPS = ("MEAN", "SQUARED_DIFFERENCE", "RSQRT", "SELECT_V2",
                  "SOFTMAX", "BATCH_MATMUL", "ADD", "MUL")

_INTERPRETER_WARNING = r".*tf\.lite\.Interpreter is deprecated.*"


class FlexOpsError(RuntimeError):
    """The model needs TensorFlow (Flex / ``SELECT_TF_OPS``) ops, which the
    builtin-only TFLite export refuses.

    Attributes:
        ops: list of str. The TensorFlow op names that have no builtin
            TFLite kernel (e.g. ``["StridedSlice"]``), as far as the
            converter reported them.
    """

    def __init__(self, message, ops=()):
        super().__init__(message)
        self.ops = list(ops)

    def __reduce__(self):
        # Keeps ``ops`` when the error comes back from a fresh process.
        return type(self), (str(self), self.ops)


def _flex_ops_from_error(text):
    """Op names from a converter error ("TF Select ops: A, B")."""
    ops = []
    for match in re.finditer(r"TF Select ops: ([^\n]*)", text):
        ops += [op.strip() for op in match.group(1).split(",") if op.strip()]
    return sorted(set(ops))


def _flex_details(text, ops):
    """The graph nodes (layer paths) of the Flex ops and the converter's
    ``Details:`` lines, from a converter error."""
    nodes = []
    for op, node in re.findall(r'fused\["(\w+):", "([^"@]+)', text):
        if op in ops and node not in nodes:
            nodes.append(node)
    details = [line.strip() for line in text.splitlines()
               if line.strip().startswith("tf.") and "(" in line]
    lines = [f"  node: {node}" for node in nodes[:8]]
    lines += [f"  {line[:300]}" for line in dict.fromkeys(details)][:8]
    return "\n".join(lines)


def _check_quantize(quantize):
    if quantize not in QUANTIZE_MODES:
        raise ValueError(
            f"Unknown quantize mode {quantize!r}. Valid values: "
            f"{list(QUANTIZE_MODES)}."
        )


def convert_saved_model(saved_model_dir, quantize="none",
                        calibration=None, float_ops=INT8_FLOAT_OPS):
    """Converts the ``serving_default`` signature of a SavedModel to TFLite.

    Args:
        saved_model_dir: str. A SavedModel whose signature has fixed or
            dynamic shapes (dynamic dimensions stay dynamic in the TFLite
            model).
        quantize: str. One of :data:`QUANTIZE_MODES`. Defaults to
            ``"none"``.
        calibration: list of dicts ``{input name: array}`` (one model call
            each), required for ``"int8"``: the representative dataset.
        float_ops: tuple of TFLite op names kept in float32 by ``"int8"``.
            Defaults to :data:`INT8_FLOAT_OPS`; ``()`` quantises every op
            that has an int8 kernel.

    Returns:
        bytes. The ``.tflite`` flatbuffer.

    Raises:
        FlexOpsError: the graph needs TensorFlow ops (Flex).
        ValueError: unknown ``quantize``, or ``"int8"`` without
            ``calibration``.
    """
    _check_quantize(quantize)
    if quantize == "int8" and not calibration:
        raise ValueError(
            "quantize='int8' needs calibration data (a representative "
            "dataset of real inputs)."
        )
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=["serving_default"])
    # Builtin ops only: never tf.lite.OpsSet.SELECT_TF_OPS.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        with warnings.catch_warnings():
            # The converter's calibration runs the deprecated interpreter.
            warnings.filterwarnings("ignore", message=_INTERPRETER_WARNING)
            if quantize == "int8":
                return _convert_int8(converter, calibration, float_ops)
            return converter.convert()
    except Exception as err:  # ConverterError has no stable import path.
        text = str(err)
        flex = _flex_ops_from_error(text)
        if flex or "not supported by the native TFLite runtime" in text:
            raise FlexOpsError(
                f"{saved_model_dir}: the model needs TensorFlow ops that "
                f"have no builtin TFLite kernel: {flex or 'see below'}. "
                "Flex (SELECT_TF_OPS) models cannot run in the ai_edge_litert "
                "interpreter, so the export refuses them; rewrite the layer "
                "with ops that have builtin kernels.\n"
                + (_flex_details(text, flex) or text[-2000:]),
                ops=flex,
            ) from None
        raise


def _convert_int8(converter, calibration, float_ops):
    """Full-integer quantisation calibrated on ``calibration``, with
    ``float_ops`` kept in float (selective quantisation)."""
    samples = [dict(sample) for sample in calibration]

    def representative_dataset():
        for sample in samples:
            yield {name: np.asarray(value) for name, value in sample.items()}

    converter.representative_dataset = representative_dataset
    # Int8 kernels where they exist, float kernels for the rest (and for
    # float_ops); still builtin only.
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    if not float_ops:
        return converter.convert()
    # The public selective-quantisation API: calibrate once, then quantise
    # with the denylisted ops left in float.
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_ops=list(float_ops))
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_options=options)
    return debugger.get_nondebug_quantized_model()
