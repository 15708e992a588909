"""Knowledge distillation from a frozen masked-LM teacher (Bort's recipe).

The student is trained on

    loss = alpha · MLM + beta · T² · KL(softmax(teacher/T) ‖ softmax(student/T))

over the masked positions, with Bort's released defaults alpha = 0.1,
beta = 0.5, T = 2 (de Wynter & Perry, 2020): ``losses.distillation_loss``,
trained by ``objectives.DistillationObjective``. This module loads the teacher. The teacher sees the same
masked inputs as the student, runs without dropout and is never updated.
It must use the same vocabulary as the student; a mismatch is refused.

A teacher is any folder that holds a masked-LM head:
- a keras-hub masked-LM task preset (``task.json``), e.g. the ``final/``
  folder that ``tools/pretrain.py`` writes, or a keras-hub ``BertMaskedLM``
  / ``RobertaMaskedLM`` preset saved locally;
- a Hugging Face ``BertForMaskedLM`` / ``RobertaForMaskedLM`` folder
  (``config.json`` + ``model.safetensors`` with the ``cls.predictions.*`` or
  ``lm_head.*`` weights), read with ``trimzoo.from_pretrained`` and
  given its head weights here.
"""

import json
import logging
import os

import keras
import keras_hub
import numpy as np
from safetensors import safe_open

from trimzoo import models as trimzoo_models
from trimzoo.checkpoints import from_pretrained
from trimzoo.models.tokenizers import load_tokenizer
from trimzoo.models.masked_lm import TrimzooMaskedLM
# The objective and its defaults live in ``losses``; kept importable here.
from trimzoo.training.losses import (  # noqa: F401
    ALPHA, BETA, TEMPERATURE, distillation_loss, kl_per_position)
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


def allowed_task_classes():
    """The task classes a teacher's ``task.json`` may name, by class name:
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


def _task_class(path):
    """The allowed class a ``task.json`` names; ``ValueError`` for any
    other (nothing is imported)."""
    with open(path) as f:
        config = json.load(f)
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
    masked = sorted(n for n, c in allowed.items()
                    if issubclass(c, keras_hub.models.MaskedLM))
    raise ValueError(
        f"{path} names the task class {module}.{name}, which is not a "
        "trimzoo or keras-hub task class; a teacher's task.json never "
        f"imports a module. Masked-LM classes that load: {masked}.")


def _is_task_preset(folder):
    path = os.path.join(folder, "task.json")
    if not os.path.exists(path):
        return False
    return issubclass(_task_class(path), keras_hub.models.MaskedLM)


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
    if _is_task_preset(folder):
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
    return _is_task_preset(folder) or hf_head_weights(folder) is not None
