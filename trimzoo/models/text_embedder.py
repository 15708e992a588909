"""Sentence embeddings: a pooled, L2-normalised vector per text."""

import keras
import keras_hub
import numpy as np

from trimzoo.layers.pooling import SequencePooling
from trimzoo.models.backbone import TrimzooBackbone
from trimzoo.models.input_checks import check_predict_data
from trimzoo.models.preprocessors import TrimzooTextClassifierPreprocessor
from trimzoo.models.text_task import TextTaskMixin, check_texts


@keras.saving.register_keras_serializable(package="trimzoo")
class TrimzooTextEmbedder(TextTaskMixin, keras_hub.models.Task):
    """Sentence embeddings from a trimzoo backbone, as sentence encoders
    (all-MiniLM-L6-v2 and the other sentence-transformers models) compute
    them: the mean of the last hidden states over the real tokens (padding
    excluded), divided by its L2 norm. Cosine similarity of two embeddings
    is then their dot product.

    A keras-hub ``Task`` with no weights of its own: ``save_to_preset`` /
    ``from_preset`` round-trip it, and ``from_preset`` also reads a HF
    checkpoint folder such as the embedded all-MiniLM-L6-v2. With a
    preprocessor, ``predict`` takes strings; :meth:`encode` runs a list of
    any length in batches, with a progress bar for long ones.

    Args:
        backbone: ``TrimzooBackbone``.
        preprocessor: optional ``TrimzooTextClassifierPreprocessor``.
            Defaults to None (inputs are token-id dicts).
        pooling: str. ``"mean"``, ``"max"`` or ``"cls"`` (first token).
            Defaults to ``"mean"``.
        normalize: bool. Divide each embedding by its L2 norm. Defaults to
            ``True``.

    Examples:
    >>> import numpy as np
    >>> from trimzoo.utils.embedded import minilm_path
    >>> embedder = TrimzooTextEmbedder.from_preset(minilm_path())
    >>> vectors = embedder.encode(["a great film", "a wonderful movie",
    ...                            "the stock market fell"])
    >>> vectors.shape, np.linalg.norm(vectors, axis=1).round(4).tolist()
    ((3, 384), [1.0, 1.0, 1.0])
    >>> bool(vectors[0] @ vectors[1] > vectors[0] @ vectors[2])
    True
    """

    backbone_cls = TrimzooBackbone
    preprocessor_cls = TrimzooTextClassifierPreprocessor

    def __init__(self, backbone, preprocessor=None, pooling="mean",
                 normalize=True, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        # Pooling and the norm in float32, also under mixed precision.
        self.pooling_layer = SequencePooling(pooling, dtype="float32",
                                             name="pooling")
        self.normalization = None
        if normalize:
            # x / max(||x||, 1e-12), the reference's formula and epsilon.
            self.normalization = keras.layers.UnitNormalization(
                axis=-1, dtype="float32", name="l2_normalize")

        # === Functional model ===
        inputs = backbone.input
        sequence = backbone(inputs)["sequence_output"]
        outputs = self.pooling_layer(sequence, inputs["padding_mask"])
        if self.normalization is not None:
            outputs = self.normalization(outputs)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.pooling = pooling
        self.normalize = bool(normalize)

    def predict(self, x, *args, **kwargs):
        check_predict_data(x)
        return super().predict(x, *args, **kwargs)

    def encode(self, texts, batch_size=32, progress=None):
        """Embeddings of ``texts``, ``batch_size`` texts at a time.

        Args:
            texts: str or list of str.
            batch_size: int. Defaults to ``32``.
            progress: bool or None. Show a progress bar; None: when there
                are 20 batches or more. Defaults to None.

        Returns:
            float32 NumPy array ``[len(texts), hidden_dim]``.
        """
        texts = check_texts(texts)
        return np.concatenate(
            [out for _, out in self._batches(texts, batch_size, progress)]
        ).astype("float32")

    def get_config(self):
        config = super().get_config()
        config.update({"pooling": self.pooling, "normalize": self.normalize})
        return config
