"""Real inputs for the parity gate, int8 calibration and the benchmark.

Texts are the model's own (``trimzoo.data.model_data``): the user's file
(``--data``), else the task a fine-tuned folder records (its validation
split for the parity gate, with labels for classifier accuracy, and its
training split for int8 calibration), else the embedded Rotten Tomatoes
reviews (labels only for a classifier of that task). They are tokenized with the model's own tokenizer and packed as
single sentences (``[CLS] text [SEP]``), as fine-tuning packs them.

The tokenizer is the model folder's (fine-tuned folders and
``save_pretrained`` folders hold one); for a folder without one, a model
with the bert-base-uncased vocabulary size (30522) uses the embedded
checkpoint's WordPiece vocabulary. A model with neither gets random token
ids (the report says so): its parity numbers are then not measured on real
text.
"""

import dataclasses
import logging
import os

import numpy as np

from trimzoo.utils.embedded import minilm_path
from trimzoo.data.model_data import default_texts
from trimzoo.data.rotten_tomatoes import load_split
from trimzoo.models.tokenizers import encode, load_tokenizer
from trimzoo.export.saved_model import backbone_of, model_kind, num_classes

log = logging.getLogger("trimzoo")

#: Vocabulary size of the embedded checkpoint's WordPiece tokenizer.
EMBEDDED_VOCABULARY_SIZE = 30522
#: Task whose splits are the real text.
TASK = "rotten_tomatoes"


@dataclasses.dataclass
class ParityData:
    """Model inputs for the parity gate.

    Attributes:
        inputs: dict of int32 arrays ``[num_examples, seq_len]``.
        labels: int array ``[num_examples]`` or None (no labels for this
            model: a backbone, or a classifier whose class count is not the
            task's).
        source: str. Where the inputs come from, e.g.
            ``"rotten_tomatoes/validation"`` or ``"random token ids"``.
        tokenizer: str or None. Where the tokenizer came from.
        texts: list of str or None. The texts behind ``inputs``.
    """

    inputs: dict
    labels: object
    source: str
    tokenizer: object
    texts: list = None

    @property
    def num_examples(self):
        return len(self.inputs["token_ids"])

    @property
    def seq_len(self):
        return self.inputs["token_ids"].shape[1]

    def describe(self):
        """A JSON-ready summary for the report."""
        mask = self.inputs["padding_mask"]
        return {
            "source": self.source,
            "tokenizer": self.tokenizer,
            "num_examples": int(self.num_examples),
            "padded_length": int(self.seq_len),
            "mean_tokens": round(float(mask.sum(axis=1).mean()), 1),
            "labelled": self.labels is not None,
        }


def find_tokenizer(model, folder=None, tokenizer=None):
    """The tokenizer for real-text inputs, and where it came from.

    Order: ``tokenizer`` (a keras-hub tokenizer, or a folder to load one
    from); the model folder's; the embedded bert-base-uncased WordPiece
    vocabulary when the model's vocabulary has its size.

    Returns:
        ``(tokenizer or None, description or None)``.

    Raises:
        ValueError: the tokenizer has more tokens than the model's
            vocabulary.
    """
    vocabulary_size = backbone_of(model).vocabulary_size
    found, where = None, None
    if tokenizer is not None and not isinstance(tokenizer, (str,
                                                            os.PathLike)):
        found, where = tokenizer, "given"
    elif tokenizer is not None:
        found, where = load_tokenizer(tokenizer), os.fspath(tokenizer)
    elif folder is not None:
        try:
            found, where = load_tokenizer(folder), os.fspath(folder)
        except FileNotFoundError:
            pass
    if found is None and vocabulary_size == EMBEDDED_VOCABULARY_SIZE:
        try:
            path = minilm_path()
        except FileNotFoundError:
            path = None
        if path is not None:
            found = load_tokenizer(path)
            where = "embedded bert-base-uncased WordPiece vocabulary"
    if found is not None and found.vocabulary_size() > vocabulary_size:
        raise ValueError(
            f"The tokenizer ({where}) has {found.vocabulary_size()} tokens "
            f"but the model's vocabulary has {vocabulary_size}."
        )
    return found, where


def task_examples(split):
    """``[(text, label)]`` of the real task's ``split``."""
    return load_split(split)


def _encode(tokenizer, texts, seq_len):
    return encode(tokenizer, texts, sequence_length=seq_len)


def random_inputs(model, num_examples, seq_len, seed=0):
    """Random token ids with random lengths (right padding), for models
    without a tokenizer."""
    backbone = backbone_of(model)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min(4, seq_len), seq_len + 1, size=num_examples)
    ids = rng.integers(1, backbone.vocabulary_size,
                       size=(num_examples, seq_len)).astype("int32")
    mask = (np.arange(seq_len)[None, :] < lengths[:, None]).astype("int32")
    return {"token_ids": ids * mask,
            "segment_ids": np.zeros_like(ids),
            "padding_mask": mask}


def parity_data(model, tokenizer=None, seq_len=128, num_examples=None,
                split="validation", seed=0, tokenizer_source=None,
                texts=None):
    """Inputs (and labels, for classifiers) for the parity gate.

    Args:
        model: backbone or classifier.
        tokenizer: keras-hub tokenizer or None (random ids).
        seq_len: int. Padded length; capped at the model's
            ``max_sequence_length``.
        num_examples: int or None. Number of texts; None takes the whole
            split for a classifier (its accuracy is part of the gate) and
            256 texts for a backbone.
        split: str. Split of the real task. Defaults to ``"validation"``.
        seed: int. Seed of the random fallback.
        tokenizer_source: str or None. Where the tokenizer came from, for
            the report.
        texts: ``trimzoo.data.model_data.ModelTexts`` or None. The texts
            (and labels) to check on: the model's own task or the user's
            file. None: the embedded task's ``split``.

    Returns:
        :class:`ParityData`.
    """
    seq_len = min(int(seq_len), backbone_of(model).max_sequence_length)
    is_classifier = model_kind(model) == "classifier"
    if num_examples is None:
        num_examples = None if is_classifier else 256
    if tokenizer is None:
        count = num_examples or 256
        log.warning(
            "No tokenizer for this model: the parity gate runs on %d random "
            "token sequences, not real text.", count)
        return ParityData(random_inputs(model, count, seq_len, seed), None,
                          "random token ids", None)
    if texts is None:

        texts = default_texts(split)
    chosen, labels = list(texts.texts), texts.labels
    if num_examples is not None:
        chosen = chosen[:num_examples]
        labels = None if labels is None else labels[:num_examples]
    if not is_classifier or labels is None:
        labels = None
    elif max(labels) >= num_classes(model) or num_classes(model) == 1:
        log.warning(
            "The labels of %s do not fit the classifier's %d classes: the "
            "gate compares predicted labels but cannot measure accuracy.",
            texts.source, num_classes(model))
        labels = None
    else:
        labels = np.array(labels, dtype="int64")
    return ParityData(_encode(tokenizer, chosen, seq_len), labels,
                      texts.source, tokenizer_source, chosen)


def calibration_data(model, tokenizer=None, seq_len=128, batch_size=1,
                     num_samples=128, seed=0, texts=None):
    """The representative dataset for full-integer int8: a list of input
    dicts of shape ``[batch_size, seq_len]`` from ``texts`` (a list of str:
    the model's own task's training texts, or the user's file), by default
    the embedded task's training split (random ids without a
    tokenizer)."""
    seq_len = min(int(seq_len), backbone_of(model).max_sequence_length)
    total = num_samples * batch_size
    if tokenizer is None:
        inputs = random_inputs(model, total, seq_len, seed + 1)
    else:
        rng = np.random.default_rng(seed)
        if texts is None:
            texts = [text for text, _ in task_examples("train")]
        chosen = rng.choice(len(texts), size=min(total, len(texts)),
                            replace=False)
        inputs = _encode(tokenizer, [texts[i] for i in chosen], seq_len)
    count = len(inputs["token_ids"]) // batch_size
    return [{name: value[i * batch_size:(i + 1) * batch_size]
             for name, value in inputs.items()} for i in range(count)]
