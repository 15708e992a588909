"""Clear errors for bad backbone inputs and arguments, eager and in graphs.

A model fed an id outside its tables must not compute something: a
negative token id would otherwise gather a wrapped row in a compiled graph,
and ids past the vocabulary fail deep inside TensorFlow with no name.

* Concrete inputs (NumPy, eager tensors) are checked in Python:
  :func:`check_inputs`.
* Symbolic TensorFlow inputs (``predict()``, ``fit()``, any
  ``tf.function``, the exported SavedModel) get ``tf.debugging`` asserts
  that run with the graph: :func:`graph_checks`. A reduction over the ids
  costs nothing measurable next to the encoder (docs/reliability.md has the
  timing). They are added only on the TensorFlow backend; under JAX or
  PyTorch only the eager checks run. XLA-compiled functions and the TFLite
  converter drop asserts, so compiled graphs and ``.tflite`` files are
  unchecked.
"""

import difflib

import keras
import numpy as np

INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")


def _closest(name, valid):
    match = difflib.get_close_matches(name, list(valid), n=1)
    return f" Did you mean {match[0]!r}?" if match else ""


def check_argument_names(names, valid, owner):
    """Raises ``TypeError`` for a name not in ``valid``, with the closest
    valid name ("did you mean") and the list of valid ones.

    Examples:
    >>> check_argument_names(["num_layer"], ["num_layers", "hidden_dim"],
    ...                      "bert_tiny")
    Traceback (most recent call last):
    ...
    TypeError: bert_tiny got an unexpected argument 'num_layer'. Did you mean 'num_layers'? Valid arguments: ['hidden_dim', 'num_layers'].
    """
    unknown = [n for n in names if n not in valid]
    if unknown:
        name = unknown[0]
        others = f" (also unknown: {unknown[1:]})" if unknown[1:] else ""
        raise TypeError(
            f"{owner} got an unexpected argument {name!r}."
            f"{_closest(name, valid)} Valid arguments: {sorted(valid)}."
            f"{others}")


def _is_concrete(x):
    """True for values we can inspect without tracing (NumPy, eager)."""
    if isinstance(x, (np.ndarray, list, tuple, np.generic, int)):
        return True
    if keras.backend.is_keras_tensor(x):
        return False
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # Only on the TensorFlow backend.

        if isinstance(x, tf.Tensor):
            return tf.executing_eagerly() and hasattr(x, "numpy")
    return False


def _check_values(name, array, upper):
    if not array.size:
        return
    if name == "padding_mask":
        if array.dtype != bool and not np.isin(array, (0, 1)).all():
            bad = np.unique(array[~np.isin(array, (0, 1))])[:5]
            raise ValueError(
                f"Input 'padding_mask' must hold 0 (padding) or 1 (token), "
                f"got values {bad.tolist()}.")
    elif array.min() < 0 or array.max() >= upper:
        raise ValueError(
            f"Input {name!r} has values in [{array.min()}, {array.max()}], "
            f"outside [0, {upper - 1}].")


def check_inputs(inputs, vocabulary_size, num_segments, max_sequence_length):
    """Checks keys, ranks, dtypes and shapes; the values of concrete
    inputs: ids within their tables, padding mask 0/1, 1 to
    ``max_sequence_length`` tokens.

    Raises:
        ValueError: naming the input and the valid range.
    """
    if not isinstance(inputs, dict):
        raise ValueError(
            "TrimzooBackbone expects a dict with keys "
            f"{list(INPUT_NAMES)}, got {type(inputs).__name__}.")
    missing = [k for k in INPUT_NAMES if k not in inputs]
    extra = [k for k in inputs if k not in INPUT_NAMES]
    if missing or extra:
        raise ValueError(
            f"TrimzooBackbone inputs must have exactly the keys "
            f"{list(INPUT_NAMES)}; missing {missing}, unexpected {extra}.")
    uppers = {"token_ids": vocabulary_size, "segment_ids": num_segments,
              "padding_mask": 2}
    shapes = {}
    for name in INPUT_NAMES:
        value = inputs[name]
        if isinstance(value, (list, tuple)):
            value = np.asarray(value)
        shape = tuple(value.shape)
        if len(shape) != 2:
            raise ValueError(
                f"Input {name!r} must have rank 2 [batch, seq], got shape "
                f"{shape}.")
        dtype = keras.backend.standardize_dtype(value.dtype)
        if "int" not in dtype and dtype != "bool":
            raise ValueError(
                f"Input {name!r} must hold integers, got dtype {dtype}. "
                "Token ids, segment ids and padding masks are int tensors.")
        shapes[name] = shape
        if _is_concrete(value):
            _check_values(name, np.asarray(value), uppers[name])
    if len(set(shapes.values())) > 1 and all(
            None not in s for s in shapes.values()):
        raise ValueError(f"Inputs must share one shape, got {shapes}.")
    length = shapes["token_ids"][1]
    if length is not None and length > max_sequence_length:
        raise ValueError(
            f"Sequence length {length} exceeds max_sequence_length "
            f"{max_sequence_length}.")
    if length == 0:
        raise ValueError(
            "Empty sequences (length 0): every input needs at least one "
            "token ([CLS]).")


def graph_checks(inputs, vocabulary_size, num_segments, max_sequence_length):
    """``inputs`` with ``tf.debugging`` asserts attached to each symbolic
    TensorFlow tensor (a graph being traced); other inputs unchanged.

    The asserts fail the graph with ``InvalidArgumentError`` naming the
    input (unquoted: TensorFlow escapes quotes in the message) and its
    valid range: ids outside their table, a padding mask
    other than 0/1, an empty sequence or one longer than the position
    table.
    """
    if keras.backend.backend() != "tensorflow":
        return inputs
    import tensorflow as tf  # Only on the TensorFlow backend.

    def symbolic(x):
        return (isinstance(x, tf.Tensor) and not hasattr(x, "numpy")
                and not keras.backend.is_keras_tensor(x))

    if not any(symbolic(v) for v in inputs.values()):
        return inputs
    checks = []
    for name, upper in (("token_ids", vocabulary_size),
                        ("segment_ids", num_segments)):
        x = inputs[name]
        if symbolic(x):
            low, high = tf.reduce_min(x), tf.reduce_max(x)
            ok = tf.logical_or(tf.equal(tf.size(x), 0), tf.logical_and(
                low >= 0, high < tf.cast(upper, x.dtype)))
            checks.append(tf.debugging.Assert(ok, [
                f"Input {name} has values outside [0, {upper - 1}]: min",
                low, "max", high]))
    mask = inputs["padding_mask"]
    if symbolic(mask) and mask.dtype != tf.bool:
        ok = tf.reduce_all(tf.logical_or(tf.equal(mask, 0),
                                         tf.equal(mask, 1)))
        checks.append(tf.debugging.Assert(ok, [
            "Input padding_mask must hold 0 (padding) or 1 (token)."]))
    ids = inputs["token_ids"]
    if symbolic(ids):
        length = tf.shape(ids)[1]
        checks.append(tf.debugging.Assert(
            tf.logical_and(length >= 1, length <= max_sequence_length),
            [f"Sequence length must be in [1, {max_sequence_length}] "
             "(max_sequence_length), got", length]))
    with tf.control_dependencies(checks):
        return {name: tf.identity(value) if symbolic(value) else value
                for name, value in inputs.items()}


def check_predict_data(x):
    """Raises ``ValueError`` for ``predict()`` on zero examples (Keras'
    loop would fail with an unrelated error) or on sequences of length 0."""
    if isinstance(x, dict) and x:
        first = next(iter(x.values()))
    else:
        first = x
    shape = getattr(first, "shape", None)
    if shape is not None and len(shape) and shape[0] == 0:
        raise ValueError(
            "predict() got 0 examples (an empty batch); pass at least one.")
    if shape is not None and len(shape) == 2 and shape[1] == 0:
        raise ValueError(
            "Empty sequences (length 0): every input needs at least one "
            "token ([CLS]).")
