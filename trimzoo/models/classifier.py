"""Sequence classification / regression head on a trimzoo backbone."""

import weakref

import keras
import keras_hub

from trimzoo.layers._utils import default_initializer
from trimzoo.layers.pooling import SequencePooling
from trimzoo.models.backbone import TrimzooBackbone
from trimzoo.models.input_checks import check_predict_data
from trimzoo.models.precision import (check_precision, resolve_precision,
                                      with_precision)
from trimzoo.models.preprocessors import TrimzooTextClassifierPreprocessor
from trimzoo.models.text_task import TextTaskMixin


# model -> {precision: a copy computing in it}; gone with the model.
_PRECISION_COPIES = weakref.WeakKeyDictionary()


@keras.saving.register_keras_serializable(package="trimzoo")
class TrimzooClassifier(TextTaskMixin, keras_hub.models.TextClassifier):
    """Dropout + dense on a pooled vector of the backbone's outputs.

    A keras-hub ``TextClassifier``, so ``save_to_preset`` /
    ``keras_hub.models.TextClassifier.from_preset`` work. With a
    preprocessor (``TrimzooTextClassifierPreprocessor``, saved with the
    preset) ``fit``, ``predict`` and ``evaluate`` take strings (or pairs of
    strings); token-id dicts are passed to the model as they are. Outputs
    are logits ``[batch, num_classes]`` (``num_classes=1`` for regression
    such as STS-B).

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
        label_names: sequence of str or None. The name of each class, in
            order (saved with the preset). Defaults to None.

    Examples:
    >>> import trimzoo
    >>> backbone = trimzoo.models.bert_tiny(vocabulary_size=100)
    >>> model = TrimzooClassifier(backbone, num_classes=3)
    >>> model.output_shape
    (None, 3)
    >>> TrimzooClassifier(backbone, num_classes=2, pooling="mean").pooling
    'mean'

    Strings in, with the reference WordPiece tokenizer of a vocabulary:

    >>> from trimzoo.models import (BertWordPieceTokenizer,
    ...                             TrimzooTextClassifierPreprocessor)
    >>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"]
    >>> backbone = trimzoo.models.bert_tiny(vocabulary_size=len(vocab))
    >>> classifier = TrimzooClassifier(
    ...     backbone, num_classes=2, label_names=["neg", "pos"],
    ...     preprocessor=TrimzooTextClassifierPreprocessor(
    ...         BertWordPieceTokenizer(vocab), sequence_length=8))
    >>> history = classifier.fit(x=["good", "bad"], y=[1, 0], verbose=0)
    >>> classifier.predict(["good good", "bad"], verbose=0).shape
    (2, 2)

    In bfloat16 (see ``trimzoo.models.precision``): ``with_precision``
    returns a copy with the same float32 weights that computes in
    bfloat16 (faster on CPUs with bfloat16 units); the logits stay float32.
    ``"auto"`` takes bfloat16 only where it measures faster here.

    >>> from trimzoo.models.precision import with_precision
    >>> fast = with_precision(classifier, "bfloat16")
    >>> fast.backbone.dtype_policy.name, fast.label_names
    ('mixed_bfloat16', ('neg', 'pos'))
    >>> fast.predict(["good good", "bad"], verbose=0).dtype
    dtype('float32')

    """

    backbone_cls = TrimzooBackbone
    preprocessor_cls = TrimzooTextClassifierPreprocessor

    def __init__(
        self,
        backbone,
        num_classes,
        preprocessor=None,
        activation=None,
        dropout=0.1,
        pooling="cls",
        label_names=None,
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
        self.label_names = label_names

    @property
    def label_names(self):
        """The name of each class (tuple of str), or None."""
        return self._label_names

    @label_names.setter
    def label_names(self, value):
        self._label_names = _check_label_names(value, self.num_classes)

    def predict(self, x, *args, precision=None, **kwargs):
        """Keras ``predict``, optionally in another ``precision``
        (``trimzoo.models.precision.PRECISIONS``: ``"float32"``,
        ``"bfloat16"``, ``"auto"``, resolved at ``batch_size``): a copy
        computing in it, with this model's current weights, predicts; the
        outputs are float32."""
        check_predict_data(x)
        if precision is None:
            return super().predict(x, *args, **kwargs)
        check_precision(precision)
        resolved, _ = resolve_precision(
            precision, batch_size=kwargs.get("batch_size") or 32)
        model = with_precision(self, resolved)
        if model is self:
            return super().predict(x, *args, **kwargs)
        # One copy per precision, kept in step with this model's weights
        # (it may have trained since the last call).
        copies = _PRECISION_COPIES.setdefault(self, {})
        if resolved in copies:
            model = copies[resolved]
            model.set_weights(self.get_weights())
        else:
            copies[resolved] = model
        return model.predict(x, *args, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "activation": keras.activations.serialize(self.activation),
                "dropout": self.dropout,
                "pooling": self.pooling,
                "label_names": (None if self.label_names is None
                                else list(self.label_names)),
            }
        )
        return config


def _check_label_names(label_names, num_classes):
    if label_names is None:
        return None
    if isinstance(label_names, str):
        raise ValueError(
            f"label_names must be a sequence of str, got the string "
            f"{label_names!r}.")
    names = tuple(str(n) for n in label_names)
    if num_classes == 1 or len(names) != num_classes:
        raise ValueError(
            f"label_names {list(names)} must name each of the "
            f"{num_classes} classes (none for regression, num_classes=1).")
    return names
