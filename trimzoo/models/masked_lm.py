"""Masked language model on a trimzoo backbone (pretraining and teachers)."""

import keras
import keras_hub

from trimzoo.layers._utils import default_initializer
from trimzoo.models.backbone import TrimzooBackbone
from trimzoo.models.input_checks import check_predict_data


@keras.saving.register_keras_serializable(package="trimzoo")
class TrimzooMaskedLM(keras_hub.models.MaskedLM):
    """A ``TrimzooBackbone`` with BERT's masked-LM head.

    The head is keras-hub's ``MaskedLMHead``: a dense + gelu + layernorm
    transform of the hidden states at ``mask_positions``, followed by a
    projection onto the vocabulary that **reuses the token embedding
    matrix** (weight tying, as in BERT, RoBERTa and Bort) plus an output
    bias. The only new weights are the transform and the bias.

    Inputs are the backbone's dict (``token_ids``, ``segment_ids``,
    ``padding_mask``, int ``[batch, seq]``) plus ``mask_positions`` (int
    ``[batch, num_predictions]``, indices into the sequence). The output is
    logits ``[batch, num_predictions, vocabulary_size]``.

    This is a keras-hub ``MaskedLM`` task, so ``compile``/``fit`` work with
    keras-hub's defaults and ``save_to_preset`` writes a folder that
    ``TrimzooMaskedLM.from_preset`` (head included) and
    ``keras_hub.models.Backbone.from_preset`` (backbone only) read. Under a
    mixed-precision backbone the head computes in float32, so the logits
    are float32.

    Args:
        backbone: ``TrimzooBackbone``.
        preprocessor: optional keras-hub preprocessor. Defaults to None
            (inputs are already token ids and mask positions, as produced by
            ``trimzoo.data.pretraining``).

    Examples:
    >>> import numpy as np
    >>> import trimzoo
    >>> backbone = trimzoo.models.bert_tiny(vocabulary_size=100)
    >>> model = TrimzooMaskedLM(backbone)
    >>> ids = np.array([[2, 5, 4, 7, 3]], "int32")
    >>> logits = model({"token_ids": ids,
    ...                 "segment_ids": np.zeros_like(ids),
    ...                 "padding_mask": np.ones_like(ids),
    ...                 "mask_positions": np.array([[2]], "int32")})
    >>> tuple(logits.shape)
    (1, 1, 100)
    """

    backbone_cls = TrimzooBackbone
    preprocessor_cls = None

    def __init__(self, backbone, preprocessor=None, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.masked_lm_head = keras_hub.layers.MaskedLMHead(
            vocabulary_size=backbone.vocabulary_size,
            token_embedding=backbone.token_embedding,
            intermediate_activation="gelu",
            layer_norm_epsilon=backbone.layer_norm_epsilon,
            kernel_initializer=default_initializer(),
            dtype=_head_dtype(backbone.dtype_policy),
            name="mlm_head",
        )

        # === Functional model ===
        inputs = {
            **backbone.input,
            "mask_positions": keras.Input(
                shape=(None,), dtype="int32", name="mask_positions"
            ),
        }
        sequence_output = backbone(backbone.input)["sequence_output"]
        outputs = self.masked_lm_head(
            sequence_output, inputs["mask_positions"]
        )
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

    def predict(self, x, *args, **kwargs):
        check_predict_data(x)
        return super().predict(x, *args, **kwargs)


def _head_dtype(policy):
    """The head runs in float32 under a mixed policy: its vocabulary
    projection already produces float32 logits (keras' reversible
    embedding), and the output bias must match them."""
    if policy.compute_dtype != policy.variable_dtype:
        return "float32"
    return policy
