"""Pretraining configuration: the tokenizer, the backbone arguments and
everything else a run decides from a ``configs/pretrain.py`` config."""

import copy
import json
import logging
import os

from trimzoo.utils.embedded import minilm_path
from trimzoo.checkpoints.folders import backbone_defaults, read_config
from trimzoo.models.tokenizers import load_tokenizer
from trimzoo.models.zoo import preset_config
from trimzoo.training.checkpointing import find_checkpoints, record_config
from trimzoo.models.precision import PRECISIONS, policy_name
from trimzoo.training.config_checks import (DROPOUT, NON_NEGATIVE, POSITIVE,
                                            UNIT, at_least, check_values,
                                            one_of)
from trimzoo.training.loop import default_checkpoint_every
from trimzoo.training.strategy import resolve_training_precision

# Fields of a resolved config that may change when a run resumes: its
# length, how often it logs, evaluates and checkpoints, and how the same
# computation is laid out (strategy, replicas, steps per call, XLA). Any
# other change (learning rate, batch, sequence length, masking, data,
# architecture) is refused by ``check_workdir``.
RESUMABLE_CHANGES = (
    "train.steps", "train.log_every", "train.checkpoint_every",
    "train.keep_checkpoints", "train.benchmark_pipeline_batches",
    "train.steps_per_execution", "train.jit_compile", "eval_every",
    "strategy", "tpu", "resolved.strategy", "resolved.num_replicas",
    "resolved.per_replica_batch_size", "resolved.precision_reason",
)


def embedded_vocabulary_folder():
    """The folder of the embedded checkpoint, whose ``vocab.txt`` is
    bert-base-uncased WordPiece (30522 tokens)."""
    return minilm_path()


def load_pretraining_tokenizer(vocab):
    """The tokenizer of ``vocab``: any folder
    ``trimzoo.models.tokenizers.load_tokenizer`` reads (WordPiece
    ``vocab.txt``, BPE ``vocab.json`` + ``merges.txt``, a keras-hub or
    trimzoo preset), a ``vocab.txt`` file, or ``""`` for the embedded
    bert-base-uncased vocabulary."""
    if not vocab:
        vocab = embedded_vocabulary_folder()
    if os.path.isfile(vocab):
        vocab = os.path.dirname(os.path.abspath(vocab))
    return load_tokenizer(vocab)


def model_kwargs(config, tokenizer, precision=None):
    """``TrimzooBackbone`` arguments: the preset, the config's overrides,
    the tokenizer's vocabulary size, the dropout and the dtype policy of
    ``precision`` (a resolved precision; None: ``train.precision``
    resolved here)."""
    overrides = {k: v for k, v in config.model_overrides.items()
                 if v is not None}
    if config.get("init_checkpoint"):
        # The folder's architecture; unstated arguments take their
        # defaults.
        kwargs = {**backbone_defaults(),
                  **read_config(config.init_checkpoint)[1]}
    else:
        kwargs = preset_config(config.model, **{
            **dict(config.get("runlocal_model") or {}), **overrides})
    vocab_size = int(tokenizer.vocabulary_size())
    if kwargs["vocabulary_size"] != vocab_size:
        logging.info(
            "Setting vocabulary_size of %s from %d to %d: the tokenizer "
            "decides the vocabulary.", config.model,
            kwargs["vocabulary_size"], vocab_size)
        kwargs["vocabulary_size"] = vocab_size
    seq = int(config.data.max_seq_length)
    if kwargs["max_sequence_length"] < seq:
        raise ValueError(
            f"data.max_seq_length={seq} exceeds the model's "
            f"max_sequence_length={kwargs['max_sequence_length']}.")
    if config.train.get("dropout") is not None:
        kwargs["dropout"] = float(config.train.dropout)
    if precision is None:
        precision = resolve_training_precision(
            config.train.precision, what="train.precision")[0]
    kwargs["dtype"] = policy_name(precision)
    return kwargs


def resolve_schedule(config):
    """Fills in ``train.checkpoint_every`` and ``eval_every`` where unset:
    ``min(5000, max(1, steps // 10))`` (a short run checkpoints too) and
    ``checkpoint_every``."""
    train = config.train
    with config.unlocked():
        if not train.get("checkpoint_every"):
            train.checkpoint_every = default_checkpoint_every(train.steps)
        if not config.get("eval_every"):
            config.eval_every = int(train.checkpoint_every)


# Values no pretraining run can use (trimzoo.training.config_checks).
CONFIG_RULES = (
    ("train.batch_size", at_least(1)),
    ("train.learning_rate", POSITIVE),
    ("train.warmup_steps", at_least(0)),
    ("train.weight_decay", NON_NEGATIVE),
    ("train.clipnorm", NON_NEGATIVE),
    ("train.dropout", DROPOUT),
    ("train.precision", one_of(PRECISIONS)),
    ("data.max_seq_length", at_least(3)),
    ("data.mask_rate", UNIT),
    ("distill.alpha", NON_NEGATIVE),
    ("distill.beta", NON_NEGATIVE),
    ("distill.temperature", POSITIVE),
    ("distill.hidden_weight", NON_NEGATIVE),
)


def validate_config(config, num_replicas):
    """Clear errors for inconsistent settings."""
    train = config.train
    resolve_schedule(config)
    if train.batch_size % num_replicas:
        raise ValueError(
            f"train.batch_size={train.batch_size} (the global batch) must "
            f"be divisible by the number of replicas ({num_replicas}).")
    for name in ("steps", "log_every", "checkpoint_every",
                 "steps_per_execution", "keep_checkpoints"):
        if int(train[name]) < 1:
            raise ValueError(f"train.{name} must be >= 1, got {train[name]}.")
    if int(config.eval_every) < 1:
        raise ValueError(f"eval_every must be >= 1, got {config.eval_every}.")
    if config.data.get("eval_input") and int(config.data.eval_batches) < 1:
        raise ValueError("data.eval_batches must be >= 1, got "
                         f"{config.data.eval_batches}.")
    if train.warmup_steps > train.steps:
        raise ValueError(
            f"train.warmup_steps={train.warmup_steps} exceeds "
            f"train.steps={train.steps}.")
    check_values(config, CONFIG_RULES)


def check_init_checkpoint(config):
    """An ``init_checkpoint`` decides the architecture: refuses model
    overrides beside it."""
    overrides = {k: v for k, v in config.model_overrides.items()
                 if v is not None}
    if overrides:
        raise ValueError(
            f"init_checkpoint={config.init_checkpoint} fixes the "
            f"architecture; model_overrides {overrides} cannot change it.")
    if not os.path.isdir(config.init_checkpoint):
        raise FileNotFoundError(
            f"init_checkpoint {config.init_checkpoint!r} is not a folder.")


def resolve_config(config, strategy):
    """A copy of ``config`` with everything the run decides filled in
    (under ``resolved``): the tokenizer folder, vocabulary size, backbone
    arguments, replicas, per-replica batch, the precision (``train.precision``
    resolved, with its reason) and its dtype policy. The tool writes
    it to ``workdir/config.json``."""
    check_values(config, CONFIG_RULES)  # Before anything is read.
    config = copy.deepcopy(config)
    init = config.get("init_checkpoint")
    if init:
        check_init_checkpoint(config)
        with config.unlocked():
            config.data.vocab = config.data.vocab or init
    tokenizer = load_pretraining_tokenizer(config.data.vocab)
    num_replicas = strategy.num_replicas_in_sync
    validate_config(config, num_replicas)
    precision, reason = resolve_training_precision(
        config.train.precision, strategy, what="train.precision")
    kwargs = model_kwargs(config, tokenizer, precision)
    with config.unlocked():
        config.resolved = {
            "vocab": config.data.vocab or embedded_vocabulary_folder(),
            "vocabulary_size": int(tokenizer.vocabulary_size()),
            "model_kwargs": json.loads(json.dumps(kwargs, default=list)),
            "num_replicas": int(num_replicas),
            "per_replica_batch_size":
                int(config.train.batch_size // num_replicas),
            "strategy": type(strategy).__name__,
            "input": config.data.input or "embedded corpus",
            "eval_input": config.data.get("eval_input") or "",
            "precision": precision,
            "precision_reason": reason,
        }
    return config


def check_workdir(config, workdir, is_chief=True):
    """Refuses to resume a trained run in ``workdir`` with a config that
    differs outside ``RESUMABLE_CHANGES`` (naming the fields), before
    anything is built or written; then writes ``workdir/config.json`` (on
    the chief). A workdir without a checkpoint or a ``final/`` model
    (a run that failed before training) takes the new config.

    Raises:
        trimzoo.training.checkpointing.ConfigChangedError
    """
    trained = bool(find_checkpoints(os.path.join(workdir, "checkpoints"))
                   or os.path.isdir(os.path.join(workdir, "final")))
    record_config(workdir, json.loads(config.to_json()), RESUMABLE_CHANGES,
                  trained=trained, write=is_chief)
