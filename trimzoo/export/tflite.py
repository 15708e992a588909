"""TFLite export: conversion (float32, float16, dynamic-range int8, full
int8), the builtin-ops-only check and a runner on the ``ai_edge_litert``
interpreter.

Shapes: with a fixed ``seq_len`` the model is converted with fully static
input shapes ``[batch_size, seq_len]`` (``batch_size`` defaults to 1, the
edge case): every shape is then known at conversion time and XNNPACK runs
the whole graph, which is ~2x faster than a model with a dynamic dimension
(TF 2.21 on the project's 2-core x86-64 machines; docs/export.md). Without ``seq_len`` both dimensions stay dynamic and the
runner resizes the inputs per call.
"""

import collections
import logging
import os
import tempfile

import numpy as np

from trimzoo.export.converter import (
    INT8_FLOAT_OPS,
    QUANTIZE_MODES,
    FlexOpsError,
    convert_saved_model,
)
from trimzoo.export.saved_model import SIGNATURE, export_saved_model
from trimzoo.models.backbone import INPUT_NAMES
from trimzoo.utils.process import quiet_tensorflow_env, run_in_fresh_process

log = logging.getLogger("trimzoo")

#: quantize mode -> (report/format name, file name).
TFLITE_FORMATS = {
    "none": ("tflite_float32", "model_float32.tflite"),
    "float16": ("tflite_float16", "model_float16.tflite"),
    "dynamic": ("tflite_dynamic_int8", "model_dynamic_int8.tflite"),
    "int8": ("tflite_int8", "model_int8.tflite"),
}

__all__ = ["INT8_FLOAT_OPS", "QUANTIZE_MODES", "TFLITE_FORMATS",
           "FlexOpsError", "TFLiteRunner", "check_builtin_only", "convert",
           "conversion_saved_model", "convert_saved_model", "convert_file",
           "tensor_types", "tflite_ops"]


# --- Inspecting a flatbuffer ------------------------------------------------

def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _enum_names(enum_class):
    return {value: name for name, value in vars(enum_class).items()
            if not name.startswith("_") and isinstance(value, int)}


def _read(model):
    if isinstance(model, (str, os.PathLike)):
        with open(model, "rb") as f:
            model = f.read()
    return bytes(model)


def tflite_ops(model):
    """``{op name: count}`` of a TFLite model (bytes or path).

    Builtin ops are named as in the TFLite schema (``FULLY_CONNECTED``);
    custom ops as ``CUSTOM:<code>``, so Flex ops show as
    ``CUSTOM:FlexStridedSlice``.
    """
    schema = _schema()
    flatbuffer = _read(model)
    root = schema.Model.GetRootAs(flatbuffer, 0)
    builtin = _enum_names(schema.BuiltinOperator)
    names = []
    for i in range(root.OperatorCodesLength()):
        code = root.OperatorCodes(i)
        number = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if number == schema.BuiltinOperator.CUSTOM:
            custom = code.CustomCode()
            names.append("CUSTOM:" + (custom.decode() if custom else "?"))
        else:
            names.append(builtin.get(number, f"BUILTIN_{number}"))
    counts = collections.Counter()
    for s in range(root.SubgraphsLength()):
        graph = root.Subgraphs(s)
        for o in range(graph.OperatorsLength()):
            counts[names[graph.Operators(o).OpcodeIndex()]] += 1
    return dict(sorted(counts.items()))


def tensor_types(model):
    """``{tensor type: count}`` over the tensors of a TFLite model (e.g.
    ``{"FLOAT32": 120, "INT8": 300}``)."""
    schema = _schema()
    root = schema.Model.GetRootAs(_read(model), 0)
    types = _enum_names(schema.TensorType)
    counts = collections.Counter()
    for s in range(root.SubgraphsLength()):
        graph = root.Subgraphs(s)
        for t in range(graph.TensorsLength()):
            counts[types.get(graph.Tensors(t).Type(), "?")] += 1
    return dict(sorted(counts.items()))


def check_builtin_only(model):
    """Raises :class:`FlexOpsError` if the TFLite model has any Flex or
    other custom op; returns its op counts otherwise."""
    ops = tflite_ops(model)
    custom = [name for name in ops if name.startswith("CUSTOM:")]
    if custom:
        flex = [name.split(":", 1)[1] for name in custom]
        raise FlexOpsError(
            f"The TFLite model has non-builtin ops {flex}; only builtin "
            "ops run in the ai_edge_litert interpreter.",
            ops=[name[4:] if name.startswith("Flex") else name
                 for name in flex],
        )
    return ops


# --- Converting ---------------------------------------------------------------

def convert_file(saved_model_dir, quantize="none", calibration=None,
                 float_ops=INT8_FLOAT_OPS, isolate=False):
    """Converts a SavedModel's ``serving_default`` to TFLite, builtin ops
    only, and checks the result's ops.

    Args:
        saved_model_dir: str. A SavedModel from ``export_saved_model``.
        quantize: str. One of :data:`QUANTIZE_MODES`.
        calibration: list of input dicts (one model call each); required
            for ``"int8"``.
        float_ops: ops ``"int8"`` keeps in float, see
            :data:`INT8_FLOAT_OPS`.
        isolate: bool. Convert in a fresh Python process
            (``trimzoo.utils.process.run_in_fresh_process``; the converter
            leaks memory on every call). Defaults to False.

    Returns:
        bytes. The TFLite flatbuffer.

    Raises:
        FlexOpsError: the graph needs TensorFlow (Flex) ops.
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(
            f"Unknown quantize mode {quantize!r}. Valid values: "
            f"{list(QUANTIZE_MODES)}."
        )
    if isolate:
        flatbuffer = run_in_fresh_process(
            convert_saved_model, saved_model_dir, quantize, calibration,
            float_ops, env=quiet_tensorflow_env())
    else:
        flatbuffer = convert_saved_model(saved_model_dir, quantize,
                                         calibration, float_ops)
    check_builtin_only(flatbuffer)
    return flatbuffer


def conversion_saved_model(model, seq_len, batch_size, folder):
    """``folder/convert_{batch_size}_{seq_len}``: a SavedModel of ``model``
    with the TFLite input shapes, written once and reused."""
    path = os.path.join(folder, f"convert_{batch_size}_{seq_len}")
    if not os.path.exists(path):
        export_saved_model(model, path, seq_len=seq_len,
                           batch_size=batch_size)
    return path


def convert(model, quantize="none", seq_len=None, batch_size=None,
            calibration=None, float_ops=INT8_FLOAT_OPS, isolate=False):
    """Converts a Keras backbone or classifier to TFLite.

    Args:
        model: ``TrimzooBackbone`` or classifier.
        quantize: str. ``"none"`` (float32), ``"float16"``, ``"dynamic"``
            (dynamic-range int8) or ``"int8"`` (full integer, needs
            ``calibration``). Defaults to ``"none"``.
        seq_len: int or None. Fixed sequence length, or None for dynamic.
        batch_size: int or None. Fixed batch size; defaults to 1 when
            ``seq_len`` is fixed (fully static shapes), else dynamic.
        calibration: list of input dicts ``{token_ids, segment_ids,
            padding_mask}`` of shape ``[batch_size or 1, seq_len]``.
        float_ops: see :data:`INT8_FLOAT_OPS`.
        isolate: bool. Convert in a fresh process. Defaults to False.

    Returns:
        bytes. The TFLite flatbuffer (builtin ops only).

    Raises:
        FlexOpsError: the model needs Flex ops.

    Examples:
    >>> import trimzoo
    >>> backbone = trimzoo.models.bert_tiny(
    ...     vocabulary_size=100, num_layers=1, hidden_dim=16, num_heads=2,
    ...     intermediate_dim=32, max_sequence_length=16)
    >>> flatbuffer = convert(backbone, seq_len=16)
    >>> "FULLY_CONNECTED" in check_builtin_only(flatbuffer)
    True
    >>> runner = TFLiteRunner(flatbuffer)
    >>> runner.seq_len, runner.batch_size
    (16, 1)
    """
    if seq_len is not None and batch_size is None:
        batch_size = 1
    with tempfile.TemporaryDirectory(prefix="trimzoo_export_") as tmp:
        path = export_saved_model(model, os.path.join(tmp, "saved_model"),
                                  seq_len=seq_len, batch_size=batch_size)
        return convert_file(path, quantize, calibration, float_ops, isolate)


# --- Running ------------------------------------------------------------------

class TFLiteRunner:
    """Runs a TFLite export with the ``ai_edge_litert`` interpreter.

    Call it with a dict of int32 arrays ``[batch, seq]``: a model with a
    fixed batch size runs the batch in chunks of that size (the last one
    padded), a model with a fixed length needs inputs of that length.

    Args:
        model: bytes or str. The flatbuffer or a ``.tflite`` path.
        num_threads: int or None. Interpreter threads; None lets LiteRT
            choose. Defaults to None.

    Attributes:
        batch_size, seq_len: the fixed input dimensions, or None.
    """

    def __init__(self, model, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        if isinstance(model, (str, os.PathLike)):
            if not os.path.exists(model):
                raise FileNotFoundError(f"No such TFLite model: {model!r}.")
            self.interpreter = Interpreter(model_path=os.fspath(model),
                                           num_threads=num_threads)
        else:
            self.interpreter = Interpreter(model_content=bytes(model),
                                           num_threads=num_threads)
        signatures = self.interpreter.get_signature_list()
        if SIGNATURE not in signatures:
            raise ValueError(
                f"The TFLite model has no {SIGNATURE!r} signature "
                f"(signatures: {list(signatures)})."
            )
        missing = set(INPUT_NAMES) - set(signatures[SIGNATURE]["inputs"])
        if missing:
            raise ValueError(f"The TFLite model lacks inputs {missing}.")
        self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        shape = self.runner.get_input_details()["token_ids"][
            "shape_signature"]
        self.batch_size = int(shape[0]) if shape[0] > 0 else None
        self.seq_len = int(shape[1]) if shape[1] > 0 else None

    def __call__(self, inputs):
        token_ids = np.asarray(inputs["token_ids"])
        total, length = token_ids.shape
        if self.seq_len is not None and length != self.seq_len:
            raise ValueError(
                f"This TFLite model has a fixed sequence length of "
                f"{self.seq_len}; got inputs of length {length}."
            )
        arrays = {name: np.asarray(inputs[name], dtype="int32")
                  for name in INPUT_NAMES}
        step = self.batch_size or total
        chunks = []
        for start in range(0, total, step):
            chunk = {name: value[start:start + step]
                     for name, value in arrays.items()}
            rows = len(chunk["token_ids"])
            if rows < step:  # Pad a fixed-batch model's last chunk.
                chunk = {name: np.concatenate(
                    [value, np.repeat(value[-1:], step - rows, axis=0)])
                    for name, value in chunk.items()}
            outputs = self.runner(**chunk)
            chunks.append({name: np.array(value[:rows])
                           for name, value in outputs.items()})
        return {name: np.concatenate([c[name] for c in chunks])
                for name in chunks[0]}
