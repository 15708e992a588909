"""Sequence classification / regression head on a trimzoo backbone."""

import keras
import keras_hub

from trimzoo.layers._utils import default_initializer
from trimzoo.layers.pooling import SequencePooling
from trimzoo.models.backbone import TrimzooBackbone
from trimzoo.models.input_checks import check_predict_data


@keras.saving.register_keras_serializable(package="trimzoo")
class TrimzooClassifier(keras_hub.models.TextClassifier):
    """Dropout + dense on a pooled vector of the backbone's outputs.

    A keras-hub ``TextClassifier``, so ``save_to_preset`` /
    ``keras_hub.models.TextClassifier.from_preset`` work. Inputs are the
    backbone's dict of int tensors; outputs are logits ``[batch,
    num_classes]`` (``num_classes=1`` for regression such as STS-B).

    Args:
        backbone: ``TrimzooBackbone``.
        num_classes: int. Number of labels, 1 for regression.
        preprocessor: optional keras-hub preprocessor. Defaults to None
            (inputs are already token ids).
        activation: output activation, e.g. ``"softmax"``. Defaults to None
            (logits).
        dropout: float. Dropout before the dense layer. Defaults to ``0.1``.
        pooling: str. What the head reads: ``"cls"`` (the backbone's
            ``pooled_output``: dense + tanh on the first token, as BERT
            was pretrained), ``"mean"`` or ``"max"`` over the real tokens of
            ``sequence_output`` (mean is how sentence encoders such as
            all-MiniLM-L6-v2 were trained; the backbone's unused pooler is
            then frozen). Defaults to ``"cls"``.

    Examples:
    >>> import trimzoo
    >>> backbone = trimzoo.models.bert_tiny(vocabulary_size=100)
    >>> model = TrimzooClassifier(backbone, num_classes=3)
    >>> model.output_shape
    (None, 3)
    >>> TrimzooClassifier(backbone, num_classes=2, pooling="mean").pooling
    'mean'

    """

    backbone_cls = TrimzooBackbone

    def __init__(
        self,
        backbone,
        num_classes,
        preprocessor=None,
        activation=None,
        dropout=0.1,
        pooling="cls",
        **kwargs,
    ):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="classifier_dropout"
        )
        self.pooling_layer = None
        if pooling != "cls":
            self.pooling_layer = SequencePooling(
                pooling, dtype=backbone.dtype_policy, name="pooling")
            # The pooler then feeds nothing: freeze it so training does not
            # warn that it has no gradients (its weights are kept as is).
            backbone.pooled_dense.trainable = False
        self.output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=default_initializer(),
            activation=activation,
            # Logits in float32 also under mixed precision.
            dtype="float32",
            name="logits",
        )

        # === Functional model ===
        inputs = backbone.input
        outputs = backbone(inputs)
        if self.pooling_layer is None:
            pooled = outputs["pooled_output"]
        else:
            pooled = self.pooling_layer(outputs["sequence_output"],
                                        inputs["padding_mask"])
        outputs = self.output_dense(self.output_dropout(pooled))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = int(num_classes)
        self.activation = keras.activations.get(activation)
        self.dropout = float(dropout)
        self.pooling = pooling

    def predict(self, x, *args, **kwargs):
        check_predict_data(x)
        return super().predict(x, *args, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "activation": keras.activations.serialize(self.activation),
                "dropout": self.dropout,
                "pooling": self.pooling,
            }
        )
        return config
