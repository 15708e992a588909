"""Masked-LM pretraining and Bort distillation on ``tf.distribute``.

``run(config, workdir)`` is the library behind ``tools/pretrain.py``: it
builds the tokenizer, the model, the optimizer and the Objective
(``MaskedLMObjective``, or ``DistillationObjective`` with ``distill.teacher``) and
trains them with the generic loop of ``trimzoo.training.loop``, which
serves every strategy (TPU, mirrored GPUs, multi-worker, one CPU). The
pieces live by concern: ``pretrain_config`` (config resolution),
``pretrain_data`` (the training stream and the held-out set), ``tasks``
(the objectives), ``loop`` (steps, checkpoints, metrics); this module
wires them together and writes the final model.

Checkpoints (``tf.train.CheckpointManager``: atomic, last N kept) hold the
model, the optimizer state, the step and the number of examples consumed;
a run restarts from the latest one automatically and its input pipeline
skips the examples already seen, with the same masks (they are keyed by
position). A non-finite loss or gradient stops the run with
``NonFiniteLossError`` before anything else is saved, so the last
checkpoint stays the last good one.

With ``data.eval_input`` the model is evaluated on a held-out set (fixed
masks) every ``eval_every`` steps and at the end: ``eval_loss``,
``eval_mlm_accuracy``, ... in the same logs.

Outputs in ``workdir``: ``checkpoints/``, ``tensorboard/`` (loss,
mlm_accuracy, learning_rate, tokens_per_sec, ...), ``metrics.jsonl`` (the
same values, one JSON object per logged step), ``summary.json`` (the whole
run, across resumptions) and
``final/``: the trained model as a keras-hub preset (backbone + masked-LM
head + tokenizer) that ``trimzoo.from_pretrained`` and
``TrimzooMaskedLM.from_preset`` read and that can serve as a distillation
teacher.
"""

import logging
import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from trimzoo.checkpoints import from_pretrained, teachers
from trimzoo.models.tokenizers import special_token_ids
from trimzoo.models.backbone import TrimzooBackbone
from trimzoo.models.masked_lm import TrimzooMaskedLM
from trimzoo.training.loop import (  # noqa: F401  (public names, kept here)
    MetricsWriter, NonFiniteLossError, Trainer, dropout_rng_variables,
    read_metrics, use_pre_reduced_gradients, weights_digest, worker_info)
from trimzoo.training.optimizers import WarmupLinearDecay, create_optimizer
from trimzoo.training.pretrain_config import (  # noqa: F401  (public names)
    PRECISIONS, RESUMABLE_CHANGES, check_workdir,
    embedded_vocabulary_folder, load_pretraining_tokenizer, model_kwargs,
    resolve_config, validate_config)
from trimzoo.training.pretrain_data import PretrainingData
from trimzoo.training.objectives import (JIT_COMPILE, DistillationObjective,
                                        MaskedLMObjective)
from trimzoo.utils.io import atomic_path, write_json


class Pretrainer:
    """Builds the model, data, optimizer, Objective and loop of one run.

    Args:
        config: ``ml_collections.ConfigDict`` from ``configs/pretrain.py``
            (resolved or not).
        workdir: str. Output folder; an existing run there is resumed
            (with the same config: see ``check_workdir``); the resolved
            config is written to ``workdir/config.json``.
        strategy: ``tf.distribute.Strategy``. Defaults to the current one.
        texts: optional list of str, the corpus in memory (overrides
            ``data.input`` and the embedded corpus).

    Building seeds Python, NumPy and TensorFlow with ``config.seed``
    (``keras.utils.set_random_seed``), so weights start the same in every
    run and on every worker.
    """

    def __init__(self, config, workdir, strategy=None, texts=None):
        self.strategy = strategy or tf.distribute.get_strategy()
        if "resolved" not in config:
            config = resolve_config(config, self.strategy)
        self.config = config
        self.workdir = os.fspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        check_workdir(config, self.workdir,
                      is_chief=worker_info(self.strategy)[0])
        train = config.train
        keras.utils.set_random_seed(int(config.seed))

        self.tokenizer = load_pretraining_tokenizer(config.data.vocab)
        self.special_ids = special_token_ids(self.tokenizer)
        self.data = PretrainingData(config, self.tokenizer, self.special_ids,
                                    texts=texts)
        kwargs = config.resolved.model_kwargs.to_dict()
        # The optimizer's schedule, for logging the rate of each step.
        self.schedule = WarmupLinearDecay(
            train.learning_rate, train.steps, train.warmup_steps)
        jit_compile = train.get("jit_compile")
        with self.strategy.scope():
            self.model = TrimzooMaskedLM(TrimzooBackbone(**kwargs))
            if config.get("init_checkpoint"):
                load_initial_weights(self.model, config.init_checkpoint)
            optimizer = create_optimizer(
                learning_rate=train.learning_rate,
                total_steps=train.steps,
                warmup_steps=train.warmup_steps,
                optimizer=train.optimizer,
                weight_decay=train.weight_decay,
                clipnorm=train.clipnorm,
                beta_2=train.adam_beta_2,
                epsilon=train.adam_epsilon,
            )
            if kwargs["dtype"] == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            self.optimizer.build(self.model.trainable_variables)
            self.teacher = None
            if config.distill.teacher:
                self.teacher = self._load_teacher()
                self.objective = DistillationObjective(
                    self.model, self.teacher, alpha=config.distill.alpha,
                    beta=config.distill.beta,
                    temperature=config.distill.temperature,
                    hidden_weight=config.distill.get("hidden_weight", 0.0))
            else:
                self.objective = MaskedLMObjective(self.model)
            eval_set = self.data.evaluation()
            self.loop = Trainer(
                self.objective, self.optimizer, self.workdir,
                make_dataset=self.data.training,
                total_steps=train.steps,
                global_batch_size=train.batch_size,
                strategy=self.strategy,
                learning_rate=self.schedule,
                log_every=train.log_every,
                checkpoint_every=train.checkpoint_every,
                keep_checkpoints=train.keep_checkpoints,
                steps_per_execution=train.steps_per_execution,
                eval_dataset=None if eval_set is None else lambda: eval_set,
                eval_every=config.get("eval_every"),
                jit_compile=JIT_COMPILE if jit_compile is None
                else jit_compile,
                rng_variables=dropout_rng_variables(self.model))
        (self.is_chief, self.task_type, self.task_id,
         self.num_workers) = worker_info(self.strategy)
        self.num_replicas = self.strategy.num_replicas_in_sync

    @property
    def task(self):
        """Deprecated name of :attr:`objective`."""
        warnings.warn("Pretrainer.task is deprecated; use "
                      "Pretrainer.objective", DeprecationWarning, stacklevel=2)
        return self.objective

    def _load_teacher(self):
        config = self.config
        folder = config.distill.teacher
        if (config.distill.get("hidden_weight")
                and not teachers.has_masked_lm_head(folder)):
            # A sentence encoder: its hidden states are the target.
            teacher, teacher_tokenizer = from_pretrained(folder)
            teacher.trainable = False
            backbone = teacher
        else:
            teacher, teacher_tokenizer = teachers.load_teacher(folder)
            backbone = teacher.backbone
        teachers.check_same_vocabulary(
            self.tokenizer, teacher_tokenizer, backbone.vocabulary_size)
        teacher_len = backbone.max_sequence_length
        if teacher_len < config.data.max_seq_length:
            raise ValueError(
                f"The teacher handles {teacher_len} positions, fewer than "
                f"data.max_seq_length={config.data.max_seq_length}.")
        return teacher

    # -- the parts of the loop, by their old names --------------------------

    @property
    def step(self):
        return self.loop.step

    @property
    def examples_seen(self):
        return self.loop.examples_seen

    @property
    def checkpoint_dir(self):
        return self.loop.checkpoint_dir

    @property
    def metrics(self):
        return self.loop.metrics

    def make_dataset(self, batch_size, start_example=0, num_input_pipelines=1,
                     input_pipeline_id=0):
        """The input pipeline of one host (see
        ``trimzoo.data.pretraining.make_pretraining_dataset``)."""
        return self.data.training(batch_size, start_example,
                                  num_input_pipelines, input_pipeline_id)

    def restore(self):
        """Restores the latest checkpoint, if any; returns its step."""
        return self.loop.restore()

    def save_checkpoint(self):
        return self.loop.save_checkpoint()

    def evaluate(self):
        """Held-out metrics (``eval_*``) now; ``{}`` without
        ``data.eval_input``."""
        return self.loop.evaluate()

    def benchmark_pipeline(self, num_batches):
        """Examples/s of this host's input pipeline alone."""
        per_host = int(self.config.train.batch_size) // self.num_workers
        return self.data.benchmark(num_batches, per_host)

    def train(self):
        """Runs (or resumes) the training; returns a summary dict."""
        train = self.config.train
        precision = self.precision
        if self.is_chief:
            print(f"Precision: {precision['precision']} "
                  f"({precision['reason']}).", flush=True)
        pipeline = None
        if train.benchmark_pipeline_batches and self.is_chief:
            pipeline = self.benchmark_pipeline(
                int(train.benchmark_pipeline_batches))
            logging.info("Input pipeline alone: %.0f examples/s, %.0f "
                         "tokens/s.", pipeline["examples_per_sec"],
                         pipeline["tokens_per_sec"])
        summary = self.loop.train()
        if pipeline is not None:
            summary["pipeline"] = pipeline
        summary["precision"] = precision
        if self.is_chief:
            summary["final"] = self.save_final()
        self.loop.write_summary(summary)
        return summary

    @property
    def precision(self):
        """``{"precision", "reason", "policy"}``: what the run computes in
        (``train.precision`` resolved) and why."""
        resolved = self.config.resolved
        policy = self.model.backbone.dtype_policy.name
        return {"precision": resolved.get("precision") or {
                    "mixed_bfloat16": "bfloat16",
                    "mixed_float16": "float16"}.get(policy, "float32"),
                "reason": resolved.get("precision_reason") or "recorded",
                "policy": policy}

    def save_final(self):
        """Writes ``workdir/final/`` (float32 masked LM + tokenizer) in one
        rename; returns its path."""
        return save_final(self.model, self.tokenizer, self.workdir, {
            "model": self.config.model,
            "steps": int(self.step.numpy()),
            "examples_seen": int(self.examples_seen.numpy()),
            "max_seq_length": int(self.config.data.max_seq_length),
        })


def load_initial_weights(model, folder):
    """Sets the masked LM ``model`` to the weights of the checkpoint
    ``folder`` (built with its architecture): the backbone always, the
    masked-LM head too when the folder has one (a ``final/`` folder);
    otherwise the head starts from its initialisation."""
    backbone, _ = from_pretrained(folder)
    model.backbone.set_weights(backbone.get_weights())
    if teachers.has_masked_lm_head(folder):
        source, _ = teachers.load_teacher(folder)
        model.set_weights(source.get_weights())
        logging.info("Initialised the masked LM from %s.", folder)
    else:
        logging.info("Initialised the backbone from %s; the masked-LM head "
                     "starts from its initialisation.", folder)


def save_final(model, tokenizer, workdir, record):
    """``workdir/final/``: ``model`` in float32 as a keras-hub preset with
    ``tokenizer`` and ``pretraining.json`` (``record``), replaced in one
    rename; returns its path."""
    final = os.path.join(workdir, "final")
    backbone_config = model.backbone.get_config()
    backbone_config["dtype"] = "float32"
    clone = TrimzooMaskedLM(TrimzooBackbone.from_config(backbone_config))
    clone.set_weights([np.asarray(w) for w in model.get_weights()])
    with atomic_path(final) as tmp:
        os.makedirs(tmp)
        clone.save_to_preset(tmp)
        tokenizer.save_to_preset(tmp)
        write_json(os.path.join(tmp, "pretraining.json"), record)
    return final


# Kept importable under its former private name.
_use_pre_reduced_gradients = use_pre_reduced_gradients


def run(config, workdir, strategy=None, texts=None):
    """Builds a ``Pretrainer`` and trains; returns the summary dict.

    Args:
        config: ``ConfigDict`` from ``configs/pretrain.py``.
        workdir: str. Output folder (resumed if it holds checkpoints).
        strategy: ``tf.distribute.Strategy`` or None (the current one).
        texts: optional list of str to pretrain on instead of the data
            sources of the config.
    """
    return Pretrainer(config, workdir, strategy=strategy, texts=texts).train()
