"""What the benchmark runs: masked-LM batches of real text
(``trimzoo.data.text_inputs`` packs the inputs), the
keras-hub peer of a backbone, and the timed calls (inference, MLM
training step, a matrix-product probe).

Examples:

>>> call, flops = matmul_probe(4, 8, 16)
>>> call().shape, flops
((4, 16), 1024.0)
"""


import keras_hub
import numpy as np
import tensorflow as tf

from trimzoo.checkpoints import set_state
from trimzoo.checkpoints.keras_hub_bert import state_from_keras_hub_bert
from trimzoo.data.text_inputs import corpus_token_stream, text_inputs
from trimzoo.models.masked_lm import TrimzooMaskedLM
from trimzoo.models.precision import QUANTIZATIONS, quantized, with_precision
from trimzoo.models.preprocessors import MASK_RATE
from trimzoo.training.optimizers import create_optimizer
from trimzoo.training.objectives import JIT_COMPILE, MaskedLMObjective

def mlm_batch(batch_size, seq_len, vocabulary_size, mask_rate=MASK_RATE,
              seed=0):
    """A masked-LM training batch from real text: ``(inputs, labels,
    weights)`` with ``round(mask_rate * seq_len)`` masked positions per
    sequence (BERT's 15%), replaced by ``[MASK]``."""
    inputs = text_inputs(batch_size, seq_len, vocabulary_size,
                         offset=seq_len)
    _, special = corpus_token_stream()
    predictions = max(1, int(round(mask_rate * seq_len)))
    rng = np.random.default_rng(seed)
    positions = np.sort(np.stack([
        rng.choice(np.arange(1, seq_len), predictions, replace=False)
        for _ in range(batch_size)]), axis=-1).astype("int32")
    rows = np.arange(batch_size)[:, None]
    labels = inputs["token_ids"][rows, positions].copy()
    mask_id = special["mask"] if special["mask"] < vocabulary_size else 1
    inputs["token_ids"][rows, positions] = mask_id
    inputs["mask_positions"] = positions
    weights = np.ones(positions.shape, dtype="float32")
    return inputs, labels, weights


# --- The keras-hub peer -------------------------------------------------------

def peer_unavailable_reason(backbone):
    """None if keras-hub's ``BertBackbone`` has the architecture of
    ``backbone``, else a sentence saying what it lacks."""
    options = backbone.layer_options
    num = len(options)
    ffn = sum(o["use_ffn"] for o in options)
    if ffn != num:
        return (f"FFN in {ffn} of {num} layers; keras-hub's BertBackbone "
                "has one in every layer")
    norms = sum(o["attention_norm"] + o["ffn_norm"] for o in options)
    if norms != 2 * num:
        return (f"{norms} of {2 * num} block layernorms; keras-hub's "
                "BertBackbone has all")
    names = sorted({o["attention_normalizer"] for o in options})
    if names != ["softmax"]:
        return (f"attention normaliser {'/'.join(names)}; keras-hub's "
                "BertBackbone has softmax only")
    return None


def keras_hub_peer(backbone):
    """keras-hub's ``BertBackbone`` at the architecture of ``backbone``,
    holding the same weights (copied into ``backbone`` from the peer's
    initialisation), or None when keras-hub has no such model.

    The peer differs only where keras-hub fixes a choice: tanh-approximate
    gelu and layernorm epsilon 1e-12.
    """
    if peer_unavailable_reason(backbone) is not None:
        return None
    peer = keras_hub.models.BertBackbone(
        vocabulary_size=backbone.vocabulary_size,
        num_layers=backbone.num_layers,
        num_heads=backbone.num_heads,
        hidden_dim=backbone.hidden_dim,
        intermediate_dim=backbone.intermediate_dim,
        dropout=backbone.dropout,
        max_sequence_length=backbone.max_sequence_length,
        num_segments=backbone.num_segments,
        dtype=backbone.dtype_policy.name,
    )
    set_state(backbone, state_from_keras_hub_bert(peer))
    return peer


def in_precision(model, precision):
    """``model`` computing in ``precision`` (see
    ``trimzoo.bench.config.PRECISIONS``) with its weights: a Keras dtype
    policy (``with_precision``; float32: ``model`` itself) or a Keras
    quantization mode (``quantized``: a quantized copy)."""
    if precision in QUANTIZATIONS:
        return quantized(model, precision)
    return with_precision(model, precision)


def masked_lm(backbone):
    """The masked-LM task model of a trimzoo backbone or of its keras-hub
    peer (``BertMaskedLM``); both use keras-hub's ``MaskedLMHead`` tied to
    the token embedding."""
    if isinstance(backbone, keras_hub.models.BertBackbone):
        return keras_hub.models.BertMaskedLM(backbone)
    return TrimzooMaskedLM(backbone)


# --- Timed calls ----------------------------------------------------------------

def inference_call(model, inputs, jit_compile=False):
    """A no-argument call running ``model`` on ``inputs`` (traced once here)
    that returns when the outputs are computed."""
    tensors = {k: tf.constant(v) for k, v in inputs.items()}
    fn = tf.function(lambda x: model(x, training=False),
                     jit_compile=jit_compile)

    def call():
        outputs = fn(tensors)
        if isinstance(outputs, dict):  # a backbone's
            outputs = outputs["sequence_output"]
        return outputs.numpy()

    call()
    return call


class TrainStep:
    """One masked-LM training step of a masked-LM model, as a no-argument
    callable: ``MaskedLMObjective.train_step``, the step pretraining runs
    (forward with dropout, weighted cross-entropy on the masked positions,
    backward, global-norm clipping, AdamW update), compiled the way the
    model's library trains it by default.

    The same step runs trimzoo and keras-hub models, so their ratio
    measures the models, not two training loops.

    Args:
        model: a keras-hub ``MaskedLM`` (trimzoo's or keras-hub's).
        batch: ``(inputs, labels, weights)`` from ``mlm_batch``.
        learning_rate: float. Defaults to 1e-4.
        jit_compile: bool or None. XLA-compile the step. None: the
            default of the model's trainer, trimzoo's
            (``objectives.JIT_COMPILE``) for trimzoo models and Keras'
            ``fit`` default (``jit_compile="auto"``) for others.
    """

    def __init__(self, model, batch, learning_rate=1e-4, jit_compile=None):
        import tensorflow as tf

        self.model = model
        if jit_compile is None:
            jit_compile = default_jit_compile(model)
        self.jit_compile = bool(jit_compile)
        inputs, labels, weights = batch
        self._batch = ({k: tf.constant(v) for k, v in inputs.items()},
                       tf.constant(labels), tf.constant(weights))
        self.optimizer = create_optimizer(learning_rate, total_steps=10**9)
        self.optimizer.build(model.trainable_variables)
        self._step = MaskedLMObjective(model).compiled_train_step(
            self.optimizer, jit_compile=self.jit_compile)
        self.tokens = int(np.prod(labels.shape[:1])) * int(
            inputs["token_ids"].shape[1])
        self.last_loss = self()

    def __call__(self):
        stats = self._step(self._batch)
        return float(stats["loss_sum"]) / max(float(stats["count"]), 1.0)


def default_jit_compile(model):
    """Whether ``model``'s own trainer compiles its step with XLA by
    default: trimzoo's pretraining for trimzoo models, Keras' ``fit``
    (``jit_compile="auto"``: off on CPU-only machines) for the others."""
    if isinstance(model, TrimzooMaskedLM):
        return JIT_COMPILE
    return bool(model.jit_compile)


def matmul_probe(rows, inner=1024, cols=4096, seed=0):
    """A float32 ``[rows, inner] x [inner, cols]`` product as a no-argument
    call, and its FLOPs: a matrix-product rate timed next to the models
    (see ``trimzoo.bench.roofline``)."""
    rng = np.random.default_rng(seed)
    a = tf.constant(rng.standard_normal((rows, inner), dtype="float32"))
    b = tf.constant(rng.standard_normal((inner, cols), dtype="float32"))
    fn = tf.function(lambda: tf.matmul(a, b))

    def call():
        return fn().numpy()

    call()
    return call, 2.0 * rows * inner * cols
