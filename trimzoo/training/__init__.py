"""Training: strategies, optimisers, pretraining and fine-tuning loops."""

from trimzoo.training.optimizers import WarmupLinearDecay, create_optimizer
from trimzoo.training.strategy import get_strategy
