"""The training step that ``auto`` precision times: one step of this
package's own loop.

``trimzoo.models.precision`` decides between float32 and bfloat16 by timing
both on a small encoder; when the caller trains, it times the step made by
:func:`masked_lm_step`: ``MaskedLMObjective.compiled_train_step`` (the loss,
clipping and update the ``Trainer`` runs) with the optimizer of
``create_optimizer`` (AdamW), so the decision measures the step a training
run takes, not a private copy of one.

Examples:

>>> import trimzoo
>>> backbone = trimzoo.models.bert_tiny(
...     vocabulary_size=50, num_layers=1, hidden_dim=16, num_heads=2,
...     intermediate_dim=32, max_sequence_length=16)
>>> inputs = {"token_ids": np.full((2, 16), 5, "int32"),
...           "segment_ids": np.zeros((2, 16), "int32"),
...           "padding_mask": np.ones((2, 16), "int32")}
>>> step = masked_lm_step(backbone, inputs, jit_compile=False)
>>> bool(np.isfinite(step()))
True
"""

import numpy as np
import tensorflow as tf

from trimzoo.models.masked_lm import TrimzooMaskedLM
from trimzoo.models.preprocessors import MASK_RATE
from trimzoo.training.objectives import JIT_COMPILE, MaskedLMObjective
from trimzoo.training.optimizers import create_optimizer


def masked_lm_step(backbone, inputs, learning_rate=1e-4,
                   jit_compile=JIT_COMPILE):
    """One masked-LM training step of ``backbone`` on ``inputs`` (a
    backbone's dict of ``[batch, seq_len]`` int arrays), as a no-argument
    callable that returns the step's mean loss.

    ``MASK_RATE`` of the positions of every sequence (evenly spaced, after
    ``[CLS]``) are predicted; the step is ``MaskedLMObjective``'s compiled
    train step (forward with dropout, weighted cross-entropy, backward,
    global-norm clipping, AdamW update), compiled as pretraining compiles
    it by default.
    """
    token_ids = np.asarray(inputs["token_ids"])
    batch_size, seq_len = token_ids.shape
    predictions = max(1, int(round(MASK_RATE * seq_len)))
    positions = np.linspace(1, seq_len - 1, predictions).astype("int32")
    positions = np.tile(positions, (batch_size, 1))
    labels = np.take_along_axis(token_ids, positions, axis=1)
    batch = ({**{k: tf.constant(v) for k, v in inputs.items()},
              "mask_positions": tf.constant(positions)},
             tf.constant(labels),
             tf.constant(np.ones(positions.shape, "float32")))
    model = TrimzooMaskedLM(backbone)
    optimizer = create_optimizer(learning_rate, total_steps=10**9)
    optimizer.build(model.trainable_variables)
    step = MaskedLMObjective(model).compiled_train_step(
        optimizer, jit_compile=jit_compile)

    def call():
        stats = step(batch)
        return float(stats["loss_sum"]) / max(float(stats["count"]), 1.0)

    return call
