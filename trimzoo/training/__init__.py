"""Training: Tasks (objective + model + metrics), one loop that runs any
Objective under any ``tf.distribute`` strategy, strategies, optimisers, and the
pretraining and fine-tuning entry points."""

from trimzoo.training.optimizers import WarmupLinearDecay, create_optimizer
from trimzoo.training.strategy import get_strategy
