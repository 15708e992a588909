"""The fine-tuning recipe a config leaves to the data: ``"auto"`` values.

``configs/finetune.py`` leaves ``pooling``, ``train.epochs`` and
``train.learning_rate`` unset (None). A run then fills them in from what it
knows before training starts — the checkpoint, the model's width and the
number of training examples — and records what it chose, and why, in
``metrics.json`` (``"recipe"``). A value set in the config is used as given.

The rules (measured in docs/benchmarks.md, "Fine-tuning recipes"):

- **pooling**: the pooling the checkpoint was trained with, where its folder
  says (a sentence-transformers ``1_Pooling/config.json``: all-MiniLM-L6-v2
  is a mean-pooled sentence encoder whose [CLS] pooler was never trained),
  else BERT's ``"cls"``.
- **epochs**: enough passes over the data for :data:`MIN_STEPS` optimizer
  steps, between :data:`MIN_EPOCHS` and :data:`MAX_EPOCHS`. A few hundred
  rows get more epochs; a large task keeps BERT's 3.
- **learning rate**: BERT's 2e-5 at width 768 and above, rising for
  narrower models (:func:`learning_rate_for_width`): small encoders are
  fine-tuned at higher rates (1e-4 at width 384). A run of fewer than
  :data:`REFERENCE_STEPS` optimizer steps (a small data set) takes up to
  :data:`MAX_STEP_BOOST` times that rate, ``sqrt(REFERENCE_STEPS / steps)``,
  so that few updates still move the model as far.

Examples:

>>> recipe = resolve_recipe(num_train=300, batch_size=32, hidden_dim=384)
>>> recipe["epochs"], recipe["learning_rate"], recipe["steps"]
(10, 0.0003, 100)
>>> resolve_recipe(num_train=9760, batch_size=32, hidden_dim=768,
...                epochs=None, learning_rate=None)["epochs"]
3
>>> resolve_recipe(num_train=300, batch_size=32, hidden_dim=384, epochs=2,
...                learning_rate=3e-5)["auto"]
[]
"""

import json
import math
import os

from trimzoo.utils.embedded import resolve_checkpoint

#: Optimizer steps the auto recipe gives a run at least.
MIN_STEPS = 100
#: The auto recipe's range of epochs.
MIN_EPOCHS, MAX_EPOCHS = 3, 10
#: The fine-tuning rate of BERT-base (width 768) and wider models.
BASE_LEARNING_RATE = 2e-5
#: The rate of a width-384 encoder (all-MiniLM-L6-v2's), and the most any
#: width gets.
SMALL_LEARNING_RATE, MAX_LEARNING_RATE = 1e-4, 1e-3
#: Runs with fewer optimizer steps than this (BERT's 3 epochs on a
#: 10,000-example task) learn faster, by at most MAX_STEP_BOOST.
REFERENCE_STEPS, MAX_STEP_BOOST = 900, 3.0
#: Sentence-transformers pooling modes -> the classifier's ``pooling``.
_SENTENCE_POOLING = {"pooling_mode_mean_tokens": "mean",
                     "pooling_mode_cls_token": "cls",
                     "pooling_mode_max_tokens": "max"}


def learning_rate_for_width(hidden_dim):
    """The auto learning rate of a model ``hidden_dim`` wide.

    2e-5 at 768 and above, 1e-4 at 384, log-linear in the width between and
    beyond (narrower models take higher rates), at most 1e-3.

    >>> [learning_rate_for_width(w) for w in (1024, 768, 384)]
    [2e-05, 2e-05, 0.0001]
    >>> round(learning_rate_for_width(512), 7), learning_rate_for_width(16)
    (5.13e-05, 0.001)
    """
    if hidden_dim >= 768:
        return BASE_LEARNING_RATE
    # Exponent of the power law through (768, 2e-5) and (384, 1e-4).
    power = math.log(SMALL_LEARNING_RATE / BASE_LEARNING_RATE) / math.log(2)
    rate = BASE_LEARNING_RATE * (768 / hidden_dim) ** power
    return float(f"{min(rate, MAX_LEARNING_RATE):.3g}")


def checkpoint_pooling(folder):
    """The pooling a checkpoint folder was trained with (``"mean"``,
    ``"cls"``, ``"max"``) per its sentence-transformers
    ``1_Pooling/config.json``, or None when the folder does not say."""
    if not folder:
        return None
    path = os.path.join(os.fspath(folder), "1_Pooling", "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            modes = json.load(f)
    except (OSError, ValueError):
        return None
    chosen = [pooling for key, pooling in _SENTENCE_POOLING.items()
              if modes.get(key)]
    return chosen[0] if len(chosen) == 1 else None


def resolve_pooling(pooling, init_checkpoint=None):
    """``(pooling, reason)``: ``pooling`` as given, else the checkpoint's
    (:func:`checkpoint_pooling`), else ``"cls"``.

    >>> resolve_pooling("max")
    ('max', 'asked for')
    >>> resolve_pooling(None, "minilm")
    ('mean', 'auto: the checkpoint was trained with mean pooling')
    >>> resolve_pooling(None)
    ('cls', "auto: BERT's [CLS] pooler (the checkpoint names no pooling)")
    """
    if pooling:
        return pooling, "asked for"
    try:
        folder = resolve_checkpoint(init_checkpoint) if init_checkpoint else None
    except ValueError:  # An unknown embedded name fails where it is loaded.
        folder = None
    found = checkpoint_pooling(folder)
    if found:
        return found, f"auto: the checkpoint was trained with {found} pooling"
    return "cls", "auto: BERT's [CLS] pooler (the checkpoint names no pooling)"


def _auto_learning_rate(hidden_dim, steps):
    """``(rate, reason)``: the width's rate, raised for few steps."""
    rate = learning_rate_for_width(hidden_dim)
    why = f"width {hidden_dim}"
    boost = min(MAX_STEP_BOOST, math.sqrt(REFERENCE_STEPS / steps))
    if boost > 1 and rate < MAX_LEARNING_RATE:
        rate = min(MAX_LEARNING_RATE, rate * boost)
        why += (f", x{boost:.2f} for {steps} steps (fewer than "
                f"{REFERENCE_STEPS})")
    return float(f"{rate:.3g}"), why


def resolve_recipe(num_train, batch_size, hidden_dim, epochs=None,
                   learning_rate=None, max_steps_per_epoch=0):
    """The epochs, learning rate and optimizer steps of a run.

    Args:
        num_train: int. Training examples.
        batch_size: int. Global batch size.
        hidden_dim: int. The model's width.
        epochs: int, or None for the auto rule.
        learning_rate: float, or None for the auto rule.
        max_steps_per_epoch: int. A cap on steps per epoch (0 = none).

    Returns:
        dict: ``epochs``, ``learning_rate``, ``steps_per_epoch``, ``steps``
        (in all), ``auto`` (the fields chosen here) and ``reasons`` (one
        line per auto field).
    """
    steps_per_epoch = max(1, math.ceil(num_train / batch_size))
    if max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, max_steps_per_epoch)
    auto, reasons = [], []
    if epochs is None:
        epochs = min(MAX_EPOCHS, max(MIN_EPOCHS,
                                     math.ceil(MIN_STEPS / steps_per_epoch)))
        auto.append("epochs")
        reasons.append(
            f"epochs {epochs}: {steps_per_epoch} steps per epoch "
            f"({num_train} examples, batch {batch_size}); at least "
            f"{MIN_STEPS} steps, {MIN_EPOCHS}-{MAX_EPOCHS} epochs")
    if learning_rate is None:
        learning_rate, why = _auto_learning_rate(
            hidden_dim, steps_per_epoch * int(epochs))
        auto.append("learning_rate")
        reasons.append(f"learning rate {learning_rate:g}: {why}")
    return {"epochs": int(epochs), "learning_rate": float(learning_rate),
            "steps_per_epoch": steps_per_epoch,
            "steps": steps_per_epoch * int(epochs),
            "auto": auto, "reasons": reasons}
