"""The training objectives, as plain functions of logits and labels.

Every Objective in ``trimzoo.training.objectives`` trains one of these functions and
the tests check each against a NumPy reference, so the objective that
trains is the objective that is tested. Averages are over the real items
(masked positions, examples); ``denominator`` replaces the local count in
distributed training, where each replica divides its sum by the count of
the **global** batch.

Bort's distillation weights (de Wynter & Perry, 2020) live here and nowhere
else: ``ALPHA`` (masked-LM cross-entropy), ``BETA`` (KL to the teacher) and
``TEMPERATURE``. ``CLASSIFIER_ALPHA`` weighs the label cross-entropy in
task distillation of classifiers (Hinton et al., 2015).
"""

import tensorflow as tf

ALPHA, BETA, TEMPERATURE = 0.1, 0.5, 2.0
CLASSIFIER_ALPHA = 0.5


def _mean(values, weights, denominator):
    weights = tf.cast(weights, tf.float32)
    if denominator is None:
        denominator = tf.maximum(tf.reduce_sum(weights), 1.0)
    return tf.reduce_sum(values * weights) / denominator


def cross_entropy(logits, labels):
    """Per-item softmax cross-entropy of integer ``labels`` (float32)."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32))


def kl_per_position(student_logits, teacher_logits, temperature):
    """``KL(softmax(teacher/T) ‖ softmax(student/T))`` for every position.

    Args:
        student_logits: float ``[..., vocab]``.
        teacher_logits: float ``[..., vocab]``.
        temperature: float. The softmax temperature ``T``.

    Returns:
        float32 ``[...]``.

    Examples:

    >>> kl = kl_per_position([[0.0, 0.0]], [[0.0, 0.0]], 2.0)
    >>> float(kl[0])
    0.0
    """
    t = tf.cast(teacher_logits, tf.float32) / temperature
    s = tf.cast(student_logits, tf.float32) / temperature
    log_p_t = tf.nn.log_softmax(t, axis=-1)
    log_p_s = tf.nn.log_softmax(s, axis=-1)
    return tf.reduce_sum(tf.exp(log_p_t) * (log_p_t - log_p_s), axis=-1)


def masked_lm_loss(logits, labels, weights, denominator=None):
    """Mean cross-entropy over the real masked positions.

    Args:
        logits: float ``[batch, predictions, vocab]``.
        labels: int ``[batch, predictions]``, the original token ids.
        weights: float ``[batch, predictions]``, 1 for real predictions and
            0 for padding.
        denominator: float scalar or None. What the summed cross-entropy is
            divided by. Defaults to ``sum(weights)`` (at least 1).

    Returns:
        dict of scalars: ``loss`` (the objective) and ``mlm_loss`` (the
        same value, named like the distillation component).

    Examples:

    >>> out = masked_lm_loss([[[0.0, 0.0], [9.0, 0.0]]], [[0, 1]],
    ...                      [[1.0, 0.0]])
    >>> round(float(out["loss"]), 4)  # ln 2; the padded position is ignored
    0.6931
    """
    mlm = _mean(cross_entropy(logits, labels), weights, denominator)
    return {"loss": mlm, "mlm_loss": mlm}


def distillation_loss(student_logits, teacher_logits, labels, weights,
                      alpha=ALPHA, beta=BETA, temperature=TEMPERATURE,
                      denominator=None):
    """Bort's objective, averaged over the real masked positions:

        alpha · CE(labels, student) + beta · T² · KL(teacher/T ‖ student/T)

    Args:
        student_logits: float ``[batch, predictions, vocab]``.
        teacher_logits: float ``[batch, predictions, vocab]``.
        labels: int ``[batch, predictions]``, the original token ids.
        weights: float ``[batch, predictions]``, 1 for real predictions and
            0 for padding.
        alpha: float. Weight of the cross-entropy. Defaults to ``ALPHA``
            (0.1).
        beta: float. Weight of the KL term. Defaults to ``BETA`` (0.5).
        temperature: float. Defaults to ``TEMPERATURE`` (2).
        denominator: float scalar or None. Defaults to ``sum(weights)``.

    Returns:
        dict of scalars: ``loss`` (the objective), ``mlm_loss`` (mean
        cross-entropy) and ``kd_loss`` (mean KL, before ``beta · T²``).

    Examples:

    >>> same = [[[1.0, 2.0, 3.0]]]
    >>> out = distillation_loss(same, same, [[2]], [[1.0]])
    >>> float(out["kd_loss"])  # identical distributions
    0.0
    """
    mlm = _mean(cross_entropy(student_logits, labels), weights, denominator)
    kd = _mean(kl_per_position(student_logits, teacher_logits, temperature),
               weights, denominator)
    loss = alpha * mlm + beta * temperature ** 2 * kd
    return {"loss": loss, "mlm_loss": mlm, "kd_loss": kd}


def classification_loss(logits, labels, num_classes, denominator=None):
    """Mean cross-entropy (``num_classes > 1``) or mean squared error
    (regression, ``num_classes == 1``) over a batch of examples.

    Args:
        logits: float ``[batch, num_classes]``.
        labels: int ``[batch]`` class ids, or float ``[batch]`` targets.
        num_classes: int. 1 for regression.
        denominator: float scalar or None. Defaults to the batch size.

    Returns:
        dict of scalars: ``loss``.

    Examples:

    >>> out = classification_loss([[0.0, 0.0]], [1], num_classes=2)
    >>> round(float(out["loss"]), 4)
    0.6931
    """
    per_example = classification_losses(logits, labels, num_classes)
    ones = tf.ones_like(per_example)
    return {"loss": _mean(per_example, ones, denominator)}


def classification_losses(logits, labels, num_classes):
    """Per-example terms of ``classification_loss`` (float32 ``[batch]``)."""
    logits = tf.cast(logits, tf.float32)
    if num_classes == 1:
        target = tf.reshape(tf.cast(labels, tf.float32), [-1])
        return tf.math.squared_difference(logits[:, 0], target)
    return cross_entropy(logits, tf.reshape(labels, [-1]))


def layer_map(student_layers, teacher_layers):
    """Teacher layer matched to each student layer: student ``i`` <->
    teacher ``floor(i · L_t / L_s)`` (layers counted from 0).

    Examples:

    >>> layer_map(4, 12)
    [0, 3, 6, 9]
    """
    if student_layers < 1 or teacher_layers < 1:
        raise ValueError(
            f"Need at least one layer each; got student_layers="
            f"{student_layers}, teacher_layers={teacher_layers}.")
    return [i * teacher_layers // student_layers
            for i in range(student_layers)]


def hidden_state_loss(student_states, teacher_states, padding_mask,
                      mapping=None, denominator=None):
    """Mean squared error between student layer outputs and the teacher
    layer outputs that ``mapping`` matches them with, over real tokens.

    Args:
        student_states: list of float ``[batch, seq, hidden]``, one per
            student layer.
        teacher_states: list of float ``[batch, seq, hidden]``, one per
            teacher layer (same hidden width as the student).
        padding_mask: int or bool ``[batch, seq]``, 1 for real tokens.
        mapping: list of int or None. Teacher layer of each student layer.
            Defaults to ``layer_map(len(student), len(teacher))``.
        denominator: float scalar or None. Number of real tokens the sums
            are divided by. Defaults to ``sum(padding_mask)``.

    Returns:
        dict of scalars: ``loss`` (the squared error averaged over real
        tokens and hidden units, summed over the matched layers) and
        ``hidden_loss`` (the same value).

    Examples:

    >>> import numpy as np
    >>> s = [np.ones((1, 2, 3), "float32")]
    >>> t = [np.zeros((1, 2, 3), "float32"), np.ones((1, 2, 3), "float32")]
    >>> float(hidden_state_loss(s, t, [[1, 1]])["loss"])  # student 0 <-> 0
    1.0
    """
    if mapping is None:
        mapping = layer_map(len(student_states), len(teacher_states))
    if len(mapping) != len(student_states):
        raise ValueError(
            f"mapping has {len(mapping)} entries for "
            f"{len(student_states)} student layers.")
    mask = tf.cast(padding_mask, tf.float32)
    total = 0.0
    for student, j in zip(student_states, mapping):
        diff = tf.cast(student, tf.float32) - tf.stop_gradient(
            tf.cast(teacher_states[j], tf.float32))
        total += tf.reduce_mean(tf.square(diff), axis=-1)
    hidden = _mean(total, mask, denominator)
    return {"loss": hidden, "hidden_loss": hidden}


def attention_loss(student_maps, teacher_maps, padding_mask,
                   denominator=None):
    """Attention distillation (TinyBERT's attention term): the squared
    error between the student's attention weights and the teacher's it is
    matched with, summed over the real keys, averaged over heads and over
    real query tokens, summed over the matched layers.

    Args:
        student_maps: list of float ``[batch, heads, seq, seq]``, one per
            matched student layer (normalised weights, see
            ``SelfAttention.attention_weights``).
        teacher_maps: list of the same shapes: the teacher heads each
            student head learns (already chosen and ordered).
        padding_mask: int or bool ``[batch, seq]``, 1 for real tokens.
        denominator: float scalar or None. Number of real tokens the sums
            are divided by. Defaults to ``sum(padding_mask)``.

    Returns:
        dict of scalars: ``loss`` and ``attention_loss`` (the same value).

    Examples:

    >>> import numpy as np
    >>> s = [np.full((1, 2, 2, 2), 0.5, "float32")]
    >>> t = [np.array([[[[1.0, 0.0], [0.5, 0.5]]] * 2], "float32")]
    >>> float(attention_loss(s, t, [[1, 1]])["loss"])  # (0.25 + 0.25 + 0) / 2
    0.25
    """
    if len(student_maps) != len(teacher_maps):
        raise ValueError(f"{len(student_maps)} student attention maps for "
                         f"{len(teacher_maps)} teacher maps.")
    mask = tf.cast(padding_mask, tf.float32)
    key_mask = mask[:, None, None, :]
    total = 0.0
    for student, teacher in zip(student_maps, teacher_maps):
        diff = (tf.cast(student, tf.float32) - tf.stop_gradient(
            tf.cast(teacher, tf.float32))) * key_mask
        total += tf.reduce_mean(tf.reduce_sum(tf.square(diff), axis=-1),
                                axis=1)
    attention = _mean(total, mask, denominator)
    return {"loss": attention, "attention_loss": attention}


def classifier_distillation_loss(student_logits, teacher_logits, labels,
                                 alpha=CLASSIFIER_ALPHA,
                                 temperature=TEMPERATURE, denominator=None):
    """Task distillation of a classifier (Hinton et al., 2015):

        alpha · CE(labels, student) + (1 - alpha) · T² · KL(teacher/T ‖
        student/T)

    averaged over the examples of the batch.

    Args:
        student_logits: float ``[batch, num_classes]``.
        teacher_logits: float ``[batch, num_classes]``.
        labels: int ``[batch]``.
        alpha: float in [0, 1]. Weight of the label cross-entropy. Defaults
            to ``CLASSIFIER_ALPHA`` (0.5).
        temperature: float. Defaults to ``TEMPERATURE`` (2).
        denominator: float scalar or None. Defaults to the batch size.

    Returns:
        dict of scalars: ``loss``, ``ce_loss`` and ``kd_loss`` (mean KL,
        before ``(1 - alpha) · T²``).

    Examples:

    >>> out = classifier_distillation_loss([[0.0, 0.0]], [[0.0, 0.0]], [0])
    >>> round(float(out["loss"]), 4)  # 0.5 · ln 2, no KL
    0.3466
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    ce = cross_entropy(student_logits, labels)
    ones = tf.ones_like(ce)
    ce = _mean(ce, ones, denominator)
    kd = _mean(kl_per_position(student_logits, teacher_logits, temperature),
               ones, denominator)
    loss = alpha * ce + (1.0 - alpha) * temperature ** 2 * kd
    return {"loss": loss, "ce_loss": ce, "kd_loss": kd}
