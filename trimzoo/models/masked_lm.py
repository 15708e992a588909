"""Masked language model on a trimzoo backbone (pretraining and teachers)."""

import keras
import keras_hub
import numpy as np

from trimzoo.layers._utils import default_initializer
from trimzoo.models.backbone import TrimzooBackbone
from trimzoo.models.input_checks import check_predict_data
from trimzoo.models.preprocessors import TrimzooMaskedLMPreprocessor
from trimzoo.models.text_task import TextTaskMixin, check_texts


@keras.saving.register_keras_serializable(package="trimzoo")
class TrimzooMaskedLM(TextTaskMixin, keras_hub.models.MaskedLM):
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

    With a ``TrimzooMaskedLMPreprocessor`` (saved with the preset),
    ``fit`` takes strings and masks them at random, and ``predict`` takes
    strings with mask tokens ("the [MASK] was great", ``<mask>`` for BPE)
    and returns the logits at those positions (padded to the
    preprocessor's ``mask_selection_length``); :meth:`fill_mask` gives the
    most likely tokens.

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
    preprocessor_cls = TrimzooMaskedLMPreprocessor

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
        # predict() traces preprocess_samples while building its dataset:
        # strings are marked at their own mask tokens, not masked at random.
        self._filling_masks = True
        try:
            return super().predict(x, *args, **kwargs)
        finally:
            self._filling_masks = False

    def preprocess_samples(self, x, y=None, sample_weight=None):
        if (getattr(self, "_filling_masks", False) and self.preprocessor
                is not None and not isinstance(x, dict)):
            return self.preprocessor.fill_mask_inputs(x)
        return super().preprocess_samples(x, y=y, sample_weight=sample_weight)

    def fill_mask(self, texts, top_k=1, batch_size=32, progress=None):
        """The ``top_k`` most likely tokens at each mask token of each text.

        Args:
            texts: str or list of str, with mask tokens (``[MASK]``,
                ``<mask>``).
            top_k: int. Candidates per mask. Defaults to ``1``.
            batch_size: int. Defaults to ``32``.
            progress: bool or None. Show a progress bar; None: for long
                lists. Defaults to None.

        Returns:
            One list per text, one entry per mask token (left to right):
            the token (``top_k=1``) or a list of ``top_k`` tokens, most
            likely first.

        Raises:
            ValueError: a text without a mask token, or with more than the
                preprocessor's ``mask_selection_length``.
        """
        texts = check_texts(texts)
        fill = getattr(self.preprocessor, "fill_mask_inputs", None)
        if fill is None:
            raise ValueError("fill_mask needs a TrimzooMaskedLMPreprocessor.")
        tokenizer = self.preprocessor.tokenizer
        mask_id = self.preprocessor.special_ids["mask"]
        results = []
        for x, logits in self._batches(texts, batch_size, progress, fill):
            counts = np.sum(x["token_ids"] == mask_id, axis=-1)
            for count, row in zip(counts, logits):
                i = len(results)
                if not 1 <= count <= row.shape[0]:
                    raise ValueError(
                        f"Text {i} {texts[i]!r:.80} has {count} mask tokens; "
                        f"give 1 to {row.shape[0]} (mask_selection_length).")
                best = np.argsort(-row[:count], axis=-1)[:, :top_k]
                tokens = [[tokenizer.id_to_token(int(t)) for t in b]
                          for b in best]
                results.append([t[0] for t in tokens] if top_k == 1
                               else tokens)
        return results


def _head_dtype(policy):
    """The head runs in float32 under a mixed policy: its vocabulary
    projection already produces float32 logits (keras' reversible
    embedding), and the output bias must match them."""
    if policy.compute_dtype != policy.variable_dtype:
        return "float32"
    return policy
