"""Optimisers and learning-rate schedules for pretraining and fine-tuning."""

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
):
    """AdamW or LAMB with warmup + linear decay and global-norm clipping.

    Layernorm parameters and biases are excluded from weight decay.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(
            f"Unknown optimizer {optimizer!r}. Valid values: {list(OPTIMIZERS)}."
        )
    schedule = WarmupLinearDecay(learning_rate, total_steps, warmup_steps)
    common = dict(learning_rate=schedule, weight_decay=weight_decay,
                  beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                  global_clipnorm=clipnorm or None)
    if optimizer == "adamw":
        opt = keras.optimizers.AdamW(**common)
    else:
        opt = keras.optimizers.Lamb(**common)
    opt.exclude_from_weight_decay(var_names=NO_DECAY)
    return opt
