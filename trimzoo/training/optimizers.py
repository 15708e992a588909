"""Optimisers and learning-rate schedules for pretraining and fine-tuning."""

import re

import keras

OPTIMIZERS = ("adamw", "lamb")
# Variables whose path contains one of these get no weight decay
# (layernorm gamma/beta and every bias), as in BERT.
NO_DECAY = ["bias", "gamma", "beta"]


@keras.saving.register_keras_serializable(package="trimzoo")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to ``peak`` over ``warmup_steps``, then linear
    decay to ``end`` at ``total_steps`` (BERT's schedule).

    Args:
        peak: float. Learning rate at the end of warmup.
        total_steps: int. Step at which the rate reaches ``end``.
        warmup_steps: int. Defaults to 0.
        end: float. Final rate. Defaults to 0.0.
    """

    def __init__(self, peak, total_steps, warmup_steps=0, end=0.0):
        if total_steps < 1 or warmup_steps < 0 or warmup_steps > total_steps:
            raise ValueError(
                "Need 0 <= warmup_steps <= total_steps and total_steps >= 1; "
                f"got warmup_steps={warmup_steps}, total_steps={total_steps}."
            )
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.end = float(end)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = self.peak * step / max(self.warmup_steps, 1)
        frac = (step - self.warmup_steps) / max(
            self.total_steps - self.warmup_steps, 1)
        frac = keras.ops.clip(frac, 0.0, 1.0)
        decay = self.peak + (self.end - self.peak) * frac
        return keras.ops.where(step < self.warmup_steps, warm, decay)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "end": self.end}


# Variables of a TrimzooBackbone below its first transformer layer.
_EMBEDDINGS = re.compile(r"(^|/)(token_embedding|position_embedding|"
                         r"segment_embedding|embeddings_layer_norm)/")
_LAYER = re.compile(r"(^|/)transformer_layer_(\d+)/")


def layer_decay_multiplier(path, num_layers, decay):
    """The learning-rate factor of the variable at ``path`` under layer-wise
    decay (ELECTRA, Clark et al. 2020): ``decay ** (num_layers - i)`` for
    transformer layer ``i``, ``decay ** (num_layers + 1)`` for the
    embeddings, 1 for everything above the layers (pooler, task head).

    Examples:

    >>> layer_decay_multiplier("transformer_layer_5/attention/qkv/kernel",
    ...                        6, 0.5)
    0.5
    >>> layer_decay_multiplier("token_embedding/embeddings", 6, 0.5)
    0.0078125
    >>> layer_decay_multiplier("logits/kernel", 6, 0.5)
    1.0
    """
    match = _LAYER.search(path)
    if match:
        return float(decay) ** (num_layers - int(match.group(2)))
    if _EMBEDDINGS.search(path):
        return float(decay) ** (num_layers + 1)
    return 1.0


@keras.saving.register_keras_serializable(package="trimzoo")
class LayerDecayAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate is scaled per variable by
    :func:`layer_decay_multiplier` (lower layers learn more slowly).

    Keras has no per-variable learning rate, and scaling gradients instead
    would be undone by Adam's normalisation, so the rate is scaled where the
    update is made. Weight decay stays decoupled (the unscaled rate).

    Args:
        num_layers: int. Transformer layers of the backbone.
        layer_decay: float in (0, 1]. 1 = plain AdamW.
        **kwargs: ``keras.optimizers.AdamW`` arguments.
    """

    def __init__(self, num_layers, layer_decay, **kwargs):
        if not 0 < layer_decay <= 1:
            raise ValueError(
                f"layer_decay must be in (0, 1], got {layer_decay!r}.")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers!r}.")
        super().__init__(**kwargs)
        self.num_layers = int(num_layers)
        self.layer_decay = float(layer_decay)

    def build(self, var_list):
        super().build(var_list)
        self._multipliers = [layer_decay_multiplier(
            v.path, self.num_layers, self.layer_decay) for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        scale = self._multipliers[self._get_variable_index(variable)]
        if scale != 1.0:
            learning_rate = keras.ops.multiply(
                keras.ops.cast(learning_rate, variable.dtype), scale)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "num_layers": self.num_layers,
                "layer_decay": self.layer_decay}


def create_optimizer(
    learning_rate,
    total_steps,
    warmup_steps=0,
    optimizer="adamw",
    weight_decay=0.01,
    clipnorm=1.0,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-6,
    layer_decay=1.0,
    num_layers=None,
):
    """AdamW or LAMB with warmup + linear decay and global-norm clipping.

    Layernorm parameters and biases are excluded from weight decay. With
    ``layer_decay`` < 1 (AdamW only; ``num_layers`` required), transformer
    layer ``i`` of ``num_layers`` learns at ``layer_decay ** (num_layers -
    i)`` times the rate, the embeddings at ``layer_decay ** (num_layers +
    1)`` (:class:`LayerDecayAdamW`).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(
            f"Unknown optimizer {optimizer!r}. Valid values: {list(OPTIMIZERS)}."
        )
    schedule = WarmupLinearDecay(learning_rate, total_steps, warmup_steps)
    common = dict(learning_rate=schedule, weight_decay=weight_decay,
                  beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                  global_clipnorm=clipnorm or None)
    if layer_decay != 1.0:
        if optimizer != "adamw":
            raise ValueError(f"layer_decay={layer_decay} needs optimizer "
                             f"'adamw', not {optimizer!r}.")
        if not num_layers:
            raise ValueError("layer_decay < 1 needs the model's num_layers.")
        opt = LayerDecayAdamW(num_layers, layer_decay, **common)
    elif optimizer == "adamw":
        opt = keras.optimizers.AdamW(**common)
    else:
        opt = keras.optimizers.Lamb(**common)
    opt.exclude_from_weight_decay(var_names=NO_DECAY)
    return opt
