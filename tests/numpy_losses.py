"""NumPy references of the training objectives (``trimzoo.training.losses``),
written from the papers' formulas in float64."""

import numpy as np


def log_softmax(z):
    z = np.asarray(z, "float64")
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def cross_entropy(logits, labels):
    """Per-item ``-log softmax(logits)[label]``."""
    labels = np.asarray(labels)
    return -np.take_along_axis(log_softmax(logits), labels[..., None],
                               -1)[..., 0]


def kl(student, teacher, temp):
    """Per-item ``KL(softmax(teacher/T) || softmax(student/T))``."""
    lt = log_softmax(np.asarray(teacher, "float64") / temp)
    ls = log_softmax(np.asarray(student, "float64") / temp)
    return (np.exp(lt) * (lt - ls)).sum(-1)


def distillation(s, t, labels, weights, alpha, beta, temp):
    """Bort: ``(loss, ce, kl)``, means over the weighted positions."""
    weights = np.asarray(weights, "float64")
    n = weights.sum()
    ce = (cross_entropy(s, labels) * weights).sum() / n
    kd = (kl(s, t, temp) * weights).sum() / n
    return alpha * ce + beta * temp ** 2 * kd, ce, kd


def classifier_distillation(s, t, labels, alpha, temp):
    """Hinton et al.: ``(loss, ce, kl)``, means over the examples."""
    ce = cross_entropy(s, labels).mean()
    kd = kl(s, t, temp).mean()
    return alpha * ce + (1 - alpha) * temp ** 2 * kd, ce, kd


def hidden_state(student_states, teacher_states, mask, mapping):
    """Sum over matched layers of the squared error averaged over the real
    tokens and the hidden units."""
    mask = np.asarray(mask, "float64")
    total = 0.0
    for i, j in enumerate(mapping):
        err = ((np.asarray(student_states[i], "float64")
                - np.asarray(teacher_states[j], "float64")) ** 2).mean(-1)
        total += (err * mask).sum() / mask.sum()
    return total


def attention(student_maps, teacher_maps, mask):
    """Sum over matched layers of the squared error of the attention
    weights, summed over real keys, averaged over heads and real queries."""
    mask = np.asarray(mask, "float64")
    total = 0.0
    for s, t in zip(student_maps, teacher_maps):
        err = (np.asarray(s, "float64") - np.asarray(t, "float64")) ** 2
        err = (err * mask[:, None, None, :]).sum(-1).mean(1)  # [batch, q]
        total += (err * mask).sum() / mask.sum()
    return total
