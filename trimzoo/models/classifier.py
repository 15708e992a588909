"""Sequence classification / regression head on a trimzoo backbone."""

import keras
import keras_hub

from trimzoo.layers._utils import default_initializer
from trimzoo.models.backbone import TrimzooBackbone


@keras.saving.register_keras_serializable(package="trimzoo")
class TrimzooClassifier(keras_hub.models.TextClassifier):
    """Dropout + dense on the backbone's pooled output.

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

    Examples:
    >>> import trimzoo
    >>> backbone = trimzoo.models.bert_tiny(vocabulary_size=100)
    >>> model = TrimzooClassifier(backbone, num_classes=3)
    >>> model.output_shape
    (None, 3)
    """

    backbone_cls = TrimzooBackbone

    def __init__(
        self,
        backbone,
        num_classes,
        preprocessor=None,
        activation=None,
        dropout=0.1,
        **kwargs,
    ):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="classifier_dropout"
        )
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
        pooled = backbone(inputs)["pooled_output"]
        outputs = self.output_dense(self.output_dropout(pooled))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = int(num_classes)
        self.activation = keras.activations.get(activation)
        self.dropout = float(dropout)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "activation": keras.activations.serialize(self.activation),
                "dropout": self.dropout,
            }
        )
        return config
