"""What the trimzoo text tasks share: token-id dicts pass the preprocessor
by, ``from_preset`` reads any checkpoint folder, batched eager outputs with a
progress bar.

Reading the folders keras-hub cannot (HF BERT / RoBERTa, keras-hub BERT
presets) is the job of ``trimzoo.checkpoints``, which sits above the models:
it hands ``from_preset`` its reader through ``set_folder_reader`` when it is
imported, and ``import trimzoo`` imports it.
"""

import os

import numpy as np
import tensorflow as tf
import tqdm

from trimzoo.models.preprocessors import (
    is_token_dict,
    preprocessor_for,
    tokenizer_of_folder,
)
from trimzoo.utils.io import checked_load, reading_weights

#: Lists longer than this many batches get a progress bar by default.
PROGRESS_MIN_BATCHES = 20

#: ``path -> (backbone, tokenizer)`` for a checkpoint folder keras-hub
#: cannot read, None for one it reads; see ``set_folder_reader``.
_folder_reader = None


def set_folder_reader(reader):
    """Makes ``from_preset`` of every trimzoo text task read checkpoint
    folders through ``reader``: a function of a folder path that returns
    ``(backbone, tokenizer)`` for a folder it reads (the task is built on
    them), or None for a folder keras-hub's ``from_preset`` reads itself.
    ``trimzoo.checkpoints`` sets its ``read_task_folder``."""
    global _folder_reader
    _folder_reader = reader


def check_texts(texts):
    """``texts`` as a list of str, with a clear error for anything else."""
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise ValueError("Got 0 texts; pass at least one.")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(
                f"Text {i} is {type(text).__name__} {text!r:.60}, not str.")
    return texts


class TextTaskMixin:
    """Mixed into the trimzoo keras-hub tasks (before the keras-hub base).

    - ``fit`` / ``predict`` / ``evaluate`` run the preprocessor on strings
      and pass already-tokenized inputs (dicts with ``token_ids``) straight
      to the model, so the token-id pipelines of ``trimzoo.data`` keep
      working with models that carry a preprocessor.
    - ``from_preset`` also reads HF BERT/RoBERTa and keras-hub BERT folders
      (backbone and tokenizer via ``trimzoo.from_pretrained``), and
      gives a task folder saved without a preprocessor one made from its
      tokenizer, when it has one.
    """

    def preprocess_samples(self, x, y=None, sample_weight=None):
        if is_token_dict(x) or self.preprocessor is None:
            if y is None and sample_weight is None:
                return x
            return (x, y) if sample_weight is None else (x, y, sample_weight)
        return super().preprocess_samples(x, y=y, sample_weight=sample_weight)

    @classmethod
    def from_preset(cls, preset, load_weights=True, sequence_length=None,
                    **kwargs):
        """Builds the task from a preset folder (``save_to_preset``, a
        fine-tuned ``best/`` folder, ``save_pretrained``) or a HF / keras-hub
        BERT checkpoint folder.

        Args:
            preset: str. The folder (or a keras-hub preset name).
            load_weights: bool. Defaults to True.
            sequence_length: int or None. The preprocessor's sequence length;
                None keeps the saved one (128 for a folder saved without
                one, at most the model's ``max_sequence_length``).
            **kwargs: task arguments, e.g. ``num_classes`` for a folder
                without a head, or ``preprocessor=None`` for token-id
                inputs only.
        """
        path = os.fspath(preset)
        pretrained = (_folder_reader(path)
                      if os.path.isdir(path) and _folder_reader else None)
        if pretrained is not None:
            backbone, tokenizer = pretrained
            if "preprocessor" not in kwargs:
                kwargs["preprocessor"] = preprocessor_for(
                    backbone, tokenizer, sequence_length,
                    cls.preprocessor_cls)
            return cls(backbone=backbone, **kwargs)
        explicit = "preprocessor" in kwargs
        parent = super()
        if load_weights and os.path.isdir(path):
            model = checked_load(
                path, lambda: parent.from_preset(preset, **kwargs),
                lambda: parent.from_preset(preset, load_weights=False,
                                           **kwargs),
                lambda model: _task_parts(model, "num_classes" not in kwargs))
        else:
            with reading_weights(path):
                model = parent.from_preset(preset, load_weights=load_weights,
                                           **kwargs)
        if (model.preprocessor is None and not explicit
                and os.path.isdir(path) and _has_tokenizer(path)):
            model.preprocessor = preprocessor_for(
                model.backbone, tokenizer_of_folder(path), sequence_length,
                cls.preprocessor_cls)
        elif sequence_length is not None and model.preprocessor is not None:
            model.preprocessor.sequence_length = int(sequence_length)
        return model

    def _batches(self, texts, batch_size, progress, preprocess=None):
        """Runs the model on ``texts`` (a list of str) ``batch_size`` at a
        time; yields ``(inputs, outputs)`` of each batch as NumPy."""
        if self.preprocessor is None:
            raise ValueError(
                f"This {type(self).__name__} has no preprocessor, so it cannot "
                "read strings; build it with one (or load a folder that has "
                "a tokenizer).")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        batches = range(0, len(texts), batch_size)
        if progress is None:
            progress = len(batches) >= PROGRESS_MIN_BATCHES
        run = _serving_call(self)
        for start in tqdm.tqdm(batches, disable=not progress, unit="batch",
                               desc=type(self).__name__):
            x = (preprocess or self.preprocessor)(
                texts[start:start + batch_size])
            yield ({k: np.asarray(v) for k, v in x.items()},
                   np.asarray(run(x)))


def _task_parts(model, head=True):
    """What a task folder's weights files must hold: the backbone's
    variables (``model.weights.h5``) and, where the head was loaded
    (``head``: keras-hub builds a new one for a given ``num_classes``), the
    head's (``task.weights.h5``); ``task.json`` builds both."""
    backbone = {id(v) for v in model.backbone.weights}
    files = {"model.weights.h5": model.backbone.weights}
    if head:
        files["task.weights.h5"] = [v for v in model.weights
                                    if id(v) not in backbone]
    return (files,
            "task.json", getattr(model.backbone, "num_layers", None))


def _serving_call(model):
    """A traced inference call of ``model``, kept on the model (one trace
    per input signature, any batch and length)."""
    fn = getattr(model, "_trimzoo_serving_call", None)
    if fn is None:
        fn = tf.function(lambda x: model(x, training=False),
                         reduce_retracing=True)
        model._trimzoo_serving_call = fn
    return fn


def _has_tokenizer(path):
    return os.path.exists(os.path.join(path, "tokenizer.json"))
