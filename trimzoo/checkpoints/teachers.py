"""Teachers: the frozen models that distillation learns from, read from
their folders and checked against the student.

- A masked-LM teacher (pretraining's distillation, Bort's recipe) is any
  folder that holds a masked-LM head: a keras-hub masked-LM task preset
  (``task.json``), e.g. the ``final/`` folder that ``tools/pretrain.py``
  writes, or a keras-hub ``BertMaskedLM`` / ``RobertaMaskedLM`` preset saved
  locally; or a Hugging Face ``BertForMaskedLM`` / ``RobertaForMaskedLM``
  folder (``config.json`` + ``model.safetensors`` with the
  ``cls.predictions.*`` or ``lm_head.*`` weights), read with
  ``from_pretrained`` and given its head weights here.
- A classifier teacher (task distillation in fine-tuning) is a fine-tuned
  classifier folder (``RUN/best``) of the same task and vocabulary.

A ``task.json`` is resolved only among keras-hub's and trimzoo's task
classes (:func:`task_class`); the module a file names is never imported.
Training receives the loaded models (``trimzoo.training``).
"""

import logging
import os

import keras_hub
import numpy as np
from safetensors import safe_open

from trimzoo.checkpoints.folders import (check_model_folder, from_pretrained,
                                        load_classifier_folder)
from trimzoo.models.masked_lm import TrimzooMaskedLM
from trimzoo.models.tokenizers import load_tokenizer
from trimzoo.utils.io import reading_weights

# HF head weight names -> (TrimzooMaskedLM head weight, transpose?).
_HF_HEADS = {
    "bert": {
        "cls.predictions.transform.dense.weight": ("dense_kernel", True),
        "cls.predictions.transform.dense.bias": ("dense_bias", False),
        "cls.predictions.transform.LayerNorm.weight": ("norm_gamma", False),
        "cls.predictions.transform.LayerNorm.bias": ("norm_beta", False),
        "cls.predictions.bias": ("output_bias", False),
    },
    "roberta": {
        "lm_head.dense.weight": ("dense_kernel", True),
        "lm_head.dense.bias": ("dense_bias", False),
        "lm_head.layer_norm.weight": ("norm_gamma", False),
        "lm_head.layer_norm.bias": ("norm_beta", False),
        "lm_head.bias": ("output_bias", False),
    },
}
# Older TF-converted BERT checkpoints name layernorm weights gamma/beta.
_HF_ALIASES = {
    "cls.predictions.transform.LayerNorm.gamma":
        "cls.predictions.transform.LayerNorm.weight",
    "cls.predictions.transform.LayerNorm.beta":
        "cls.predictions.transform.LayerNorm.bias",
}


def check_same_vocabulary(student_tokenizer, teacher_tokenizer,
                          teacher_vocabulary_size):
    """Refuses a teacher whose vocabulary differs from the student's.

    Raises:
        ValueError: naming the first difference.
    """
    student_vocab = student_tokenizer.get_vocabulary()
    if len(student_vocab) != teacher_vocabulary_size:
        raise ValueError(
            f"The teacher's vocabulary has {teacher_vocabulary_size} tokens "
            f"but the student's tokenizer has {len(student_vocab)}. "
            "Distillation compares the two output distributions token by "
            "token, so both must use the same vocabulary.")
    if teacher_tokenizer is None:
        logging.warning(
            "The teacher folder has no tokenizer; only the vocabulary sizes "
            "(%d) could be compared.", teacher_vocabulary_size)
        return
    teacher_vocab = teacher_tokenizer.get_vocabulary()
    if len(teacher_vocab) != len(student_vocab):
        raise ValueError(
            f"The teacher's tokenizer has {len(teacher_vocab)} tokens but "
            f"the student's has {len(student_vocab)}.")
    for i, (a, b) in enumerate(zip(student_vocab, teacher_vocab)):
        if a != b:
            raise ValueError(
                f"The teacher's vocabulary differs from the student's: token "
                f"{i} is {b!r} for the teacher and {a!r} for the student. "
                "Distil with the teacher's tokenizer (data.vocab=TEACHER).")


def is_masked_lm_preset(folder):
    cls = check_model_folder(folder)  # Links, the allow-lists.
    return cls is not None and issubclass(cls, keras_hub.models.MaskedLM)


def _load_tokenizer_if_any(folder):
    try:
        return load_tokenizer(folder)
    except FileNotFoundError:
        return None


def hf_head_weights(folder):
    """The masked-LM head weights of a HF folder (``model.safetensors``),
    keyed ``dense_kernel`` ``[in, out]``, ``dense_bias``, ``norm_gamma``,
    ``norm_beta``, ``output_bias``; None if it has no such head."""
    path = os.path.join(folder, "model.safetensors")
    if not os.path.exists(path):
        return None
    with safe_open(path, framework="np") as f:
        keys = {_HF_ALIASES.get(k, k): k for k in f.keys()}
        for names in _HF_HEADS.values():
            if all(name in keys for name in names):
                head = {}
                for name, (target, transpose) in names.items():
                    value = np.asarray(f.get_tensor(keys[name]), "float32")
                    head[target] = value.T if transpose else value
                return head
    return None


def _set_head_weights(masked_lm, head):
    mlm_head = masked_lm.masked_lm_head
    targets = {
        "dense_kernel": mlm_head._intermediate_dense.kernel,
        "dense_bias": mlm_head._intermediate_dense.bias,
        "norm_gamma": mlm_head._intermediate_layer_norm.gamma,
        "norm_beta": mlm_head._intermediate_layer_norm.beta,
        "output_bias": mlm_head._bias,
    }
    for name, variable in targets.items():
        if tuple(variable.shape) != head[name].shape:
            raise ValueError(
                f"Teacher head weight {name} has shape {head[name].shape}, "
                f"expected {tuple(variable.shape)}.")
        variable.assign(head[name])


def load_teacher(folder):
    """A frozen masked-LM teacher and its tokenizer (or None).

    Args:
        folder: str. A keras-hub masked-LM task preset, or any checkpoint
            folder ``trimzoo.from_pretrained`` reads that also holds
            HF masked-LM head weights.

    Returns:
        ``(masked_lm, tokenizer)``: a keras-hub ``MaskedLM`` with
        ``trainable = False``, called with the inputs of
        ``TrimzooMaskedLM``.

    Raises:
        ValueError: if the folder's model has no masked-LM head (e.g. a
            sentence-embedding checkpoint): there is nothing to distil.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Teacher folder {folder!r} does not exist.")
    if is_masked_lm_preset(folder):
        with reading_weights(folder):
            teacher = keras_hub.models.MaskedLM.from_preset(folder)
        tokenizer = _load_tokenizer_if_any(folder)
    else:
        backbone, tokenizer = from_pretrained(folder)
        head = hf_head_weights(folder)
        if head is None:
            raise ValueError(
                f"The teacher folder {folder!r} has no masked-LM head "
                "(no task.json, and no cls.predictions.* / lm_head.* weights "
                "in model.safetensors). Distillation needs the teacher's "
                "token distribution: use a masked-LM checkpoint, e.g. the "
                "final/ folder of a pretraining run.")
        teacher = TrimzooMaskedLM(backbone)
        _set_head_weights(teacher, head)
    teacher.trainable = False
    return teacher, tokenizer


def has_masked_lm_head(folder):
    """True when ``load_teacher`` finds a masked-LM head in ``folder``: a
    masked-LM task preset or HF head weights."""
    folder = os.fspath(folder)
    return is_masked_lm_preset(folder) or hf_head_weights(folder) is not None


def load_classifier_teacher(path, num_classes, student, tokenizer,
                            hidden_weight=0.0):
    """Loads and checks a fine-tuned teacher classifier for ``student``.

    Args:
        path: str. The teacher's preset folder (``RUN/best``).
        num_classes: int. The task's number of classes.
        student: ``TrimzooClassifier``. The model to train.
        tokenizer: the student's tokenizer.
        hidden_weight: float. > 0 asks for hidden-state matching, which
            needs the teacher's hidden width.

    Raises:
        ValueError: naming the mismatch: another task (number of classes),
            another vocabulary, a regression task, or widths that cannot be
            matched.
    """
    teacher = load_classifier_folder(path)
    if num_classes < 2:
        raise ValueError(
            "Task distillation compares class distributions; a regression "
            "task (num_classes == 1) cannot be distilled this way.")
    if teacher.num_classes != num_classes:
        raise ValueError(
            f"The teacher {path} predicts {teacher.num_classes} classes but "
            f"the task has {num_classes}: it was fine-tuned on another "
            "task.")
    teacher_tokenizer = None
    if os.path.isfile(os.path.join(os.fspath(path), "tokenizer.json")):
        teacher_tokenizer = load_tokenizer(path)
    check_same_vocabulary(tokenizer, teacher_tokenizer,
                          teacher.backbone.vocabulary_size)
    if hidden_weight and (teacher.backbone.hidden_dim
                          != student.backbone.hidden_dim):
        raise ValueError(
            f"Hidden-state distillation needs equal widths: the student's "
            f"hidden size is {student.backbone.hidden_dim}, the teacher's "
            f"{teacher.backbone.hidden_dim}. Set distill.hidden_weight=0 "
            "(logits only).")
    return teacher
