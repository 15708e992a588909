"""One training loop for every Objective under every ``tf.distribute`` strategy.

``Trainer`` runs ``Objective.train_step`` through ``strategy.run`` inside a
``tf.function`` that runs ``steps_per_execution`` steps per call (TPU,
mirrored GPUs, multi-worker, one CPU alike), with the step optionally
XLA-compiled (``jit_compile``).

Checkpoints (``tf.train.CheckpointManager``: atomic, last N kept) hold the
model, the optimizer state, the step, the number of examples consumed and
the dropout RNG state; a run restarts from the newest one that reads back
completely (found from the files, see ``checkpointing.restore_newest``)
and its input pipeline skips the examples already seen. A non-finite loss
or gradient stops the run with ``NonFiniteLossError`` before anything else
is saved, so the last checkpoint stays the last good one.

Metrics (the Objective's, plus ``learning_rate``, ``tokens_per_sec``,
``examples_per_sec``, ``grad_norm``, and ``eval_*`` from a held-out set)
go to ``metrics.jsonl`` (one JSON object per logged step) and TensorBoard.

``Hook`` objects see the run at its boundaries (every logged interval, every
evaluation, every checkpoint): fine-tuning evaluates with the task's
official metrics and keeps its best model through one, progress lines are
printed by another (``trimzoo.training.progress``).
"""

import hashlib
import json
import logging
import math
import os
import shutil
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from trimzoo.training.checkpointing import restore_newest, save_checkpoint
from trimzoo.training.objectives import JIT_COMPILE
from trimzoo.utils.io import write_json, write_text


class NonFiniteLossError(FloatingPointError):
    """The training loss or gradient became NaN/Inf; the run was stopped."""


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


class Hook:
    """Called by ``Trainer.train`` at its boundaries; a subclass overrides
    what it needs. A hook that raises stops the run there (the last
    checkpoint is kept).

    At a boundary the order is: ``on_log`` (training metrics of the
    interval), ``on_evaluate`` (at evaluation steps; its values are logged
    with the others), the metrics line, then the checkpoint and
    ``on_checkpoint``.
    """

    def on_log(self, trainer, step, values):
        """After every logged interval; ``values`` are its training metrics
        (``loss``, ``examples_per_sec``, ...)."""

    def on_evaluate(self, trainer, step):
        """At every evaluation step (``eval_every`` and the last step),
        before the checkpoint; returns a dict of values to log, or None."""

    def on_checkpoint(self, trainer, step):
        """After the checkpoint of ``step`` is written."""


def _overrides(hook, method):
    return getattr(type(hook), method) is not getattr(Hook, method)


def dropout_rng_variables(model):
    """The state variables of ``model``'s dropout seed generators.

    Keras does not count them as weights and ``tf.train`` does not track
    them; a checkpoint that holds them (``Trainer(rng_variables=...)``)
    makes a resumed run draw the same dropout masks.
    """
    weights = {id(w) for w in model.weights}
    return [v.value for v in model.variables
            if id(v) not in weights and "seed_generator_state" in v.path]


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
        kept = []
        with open(self.path) as f:
            for line in f:
                try:
                    if json.loads(line)["step"] <= step:
                        kept.append(line)
                except ValueError:  # A line torn by a kill while writing.
                    logging.warning("Dropping an unreadable line of %s: %r",
                                    self.path, line[:80])
        write_text(self.path, "".join(kept))

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
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def weights_digest(model):
    """SHA-256 of all weights (float32 bytes, in order): equal on replicas
    and workers that hold the same model.

    Examples:

    >>> import keras
    >>> a = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> weights_digest(a) == weights_digest(a), len(weights_digest(a))
    (True, 64)
    """
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w, dtype=np.float32).tobytes())
    return digest.hexdigest()


def use_pre_reduced_gradients(optimizer):
    """The train step all-reduces gradients itself (before clipping); the
    optimizer must not sum them a second time."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if not hasattr(inner, "_all_reduce_sum_gradients"):
        raise RuntimeError(
            "This Keras version's optimizer has no _all_reduce_sum_gradients;"
            " the train step cannot control gradient reduction.")
    inner._all_reduce_sum_gradients = lambda grads_and_vars: list(
        grads_and_vars)


def default_checkpoint_every(steps):
    """``min(5000, max(1, steps // 10))``: ten checkpoints in a short run.

    >>> default_checkpoint_every(40), default_checkpoint_every(10**6)
    (4, 5000)
    """
    return min(5000, max(1, int(steps) // 10))


class Trainer:
    """Trains an Objective for a number of steps in ``workdir``, resumably.

    Build it under ``strategy.scope()`` (its counters are variables).

    Args:
        objective: ``trimzoo.training.objectives.Objective``: the model,
            its loss and its metrics. (``task=`` is its deprecated name.)
        optimizer: built on the objective's trainable variables.
        workdir: str. Output folder (``checkpoints/``, ``tensorboard/``,
            ``metrics.jsonl``); an existing run there is resumed.
        make_dataset: function ``(batch_size, start_example,
            num_input_pipelines, input_pipeline_id) -> tf.data.Dataset`` of
            one input pipeline's batches, endless and deterministic, that
            skips ``start_example`` examples.
        total_steps: int.
        global_batch_size: int. Split over replicas.
        strategy: ``tf.distribute.Strategy``. Defaults to the current one.
        learning_rate: schedule (a function of the step) or None, logged.
        log_every: int. Defaults to 100.
        checkpoint_every: int or None. Defaults to
            ``default_checkpoint_every(total_steps)``.
        keep_checkpoints: int. Defaults to 5.
        steps_per_execution: int. Steps per ``tf.function`` call.
            Defaults to 1.
        eval_dataset: function ``() -> tf.data.Dataset`` of global batches
            (finite, the same batches every time), or None.
        eval_every: int. Evaluate every this many steps and at the end.
            Defaults to ``checkpoint_every``.
        jit_compile: bool. XLA-compile the train step. Defaults to
            ``objectives.JIT_COMPILE``.
        rng_variables: list of variables saved with the checkpoints so a
            resumed run draws the same random numbers (dropout; see
            ``dropout_rng_variables``).
        hooks: list of ``Hook``. A hook that defines ``on_evaluate`` makes
            every ``eval_every`` steps (and the last) an evaluation step,
            with or without ``eval_dataset``.
        log_lines: bool. Log a line per logged interval
            (``logging.info``). A driver that prints its own progress
            (``trimzoo.training.progress.ProgressPrinter``) turns it off.
            Defaults to True.
    """

    def __init__(self, objective=None, optimizer=None, workdir=None,
                 make_dataset=None, total_steps=None, global_batch_size=None,
                 strategy=None, learning_rate=None,
                 log_every=100, checkpoint_every=None, keep_checkpoints=5,
                 steps_per_execution=1, eval_dataset=None, eval_every=None,
                 jit_compile=JIT_COMPILE, rng_variables=(), hooks=(),
                 log_lines=True, task=None):
        if task is not None:
            if objective is not None:
                raise TypeError("Pass the objective once: `objective=` "
                                "(`task=` is its deprecated name).")
            warnings.warn("Trainer(task=...) is deprecated; pass "
                          "objective=...", DeprecationWarning, stacklevel=2)
            objective = task
        if objective is None:
            raise TypeError("Trainer() needs an objective.")
        self.objective = objective
        self.optimizer = optimizer
        self.workdir = os.fspath(workdir)
        self.make_dataset = make_dataset
        self.total_steps = int(total_steps)
        self.global_batch_size = int(global_batch_size)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.learning_rate = learning_rate
        self.log_every = int(log_every)
        self.checkpoint_every = int(
            checkpoint_every or default_checkpoint_every(total_steps))
        self.steps_per_execution = int(steps_per_execution)
        self.eval_dataset = eval_dataset
        self.eval_every = int(eval_every or self.checkpoint_every)
        self.jit_compile = bool(jit_compile)
        self.hooks = list(hooks)
        self.log_lines = bool(log_lines)
        self.evaluates = eval_dataset is not None or any(
            _overrides(hook, "on_evaluate") for hook in self.hooks)
        (self.is_chief, self.task_type, self.task_id,
         self.num_workers) = worker_info(self.strategy)
        self.num_replicas = self.strategy.num_replicas_in_sync
        use_pre_reduced_gradients(optimizer)

        self.step = tf.Variable(
            0, dtype=tf.int64, trainable=False, name="step",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.examples_seen = tf.Variable(
            0, dtype=tf.int64, trainable=False, name="examples_seen",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.stat_names = objective.stat_names() + ("grad_norm",)
        self.stats = {
            name: tf.Variable(
                0.0, trainable=False, name=name,
                synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=tf.VariableAggregation.SUM)
            for name in self.stat_names}
        self.checkpoint = tf.train.Checkpoint(
            model=objective.model, optimizer=optimizer, step=self.step,
            examples_seen=self.examples_seen, dropout_rng=list(rng_variables))
        self.checkpoint_dir = os.path.join(self.workdir, "checkpoints")
        if self.is_chief:
            write_dir = self.checkpoint_dir
        else:  # Non-chief workers write to a scratch folder they delete.
            write_dir = os.path.join(
                self.workdir, "tmp", f"{self.task_type}_{self.task_id}")
        self.keep_checkpoints = int(keep_checkpoints)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, write_dir, max_to_keep=self.keep_checkpoints)
        self.metrics = MetricsWriter(self.workdir, self.is_chief)
        self._train_fn = None
        self._eval_fn = None
        self._restored = False

    @property
    def task(self):
        """Deprecated name of :attr:`objective`."""
        warnings.warn("Trainer.task is deprecated; use Trainer.objective",
                      DeprecationWarning, stacklevel=2)
        return self.objective

    # -- the compiled step -------------------------------------------------

    def _build_train_fn(self):
        strategy = self.strategy
        step_fn = self.objective.compiled_train_step(
            self.optimizer, num_replicas=self.num_replicas,
            jit_compile=self.jit_compile)
        names = self.stat_names

        def replica_step(batch):
            stats = step_fn(batch)
            if set(stats) != set(names):
                raise ValueError(
                    f"{type(self.objective).__name__}.train_step returned "
                    f"{sorted(stats)}; its stat_names() promise "
                    f"{sorted(names)}.")
            for name in names:
                self.stats[name].assign_add(stats[name])

        @tf.function
        def train(iterator, num_steps):
            for _ in tf.range(num_steps):
                strategy.run(replica_step, args=(next(iterator),))
                self.step.assign_add(1)
                self.examples_seen.assign_add(self.global_batch_size)
            return {name: var.read_value() for name, var in self.stats.items()}

        return train

    def _reset_stats(self):
        for var in self.stats.values():
            var.assign(tf.zeros_like(var))

    def _distributed_iterator(self):
        examples_seen = int(self.examples_seen.numpy())
        global_batch = self.global_batch_size

        def dataset_fn(context):
            per_replica = context.get_per_replica_batch_size(global_batch)
            start = examples_seen // context.num_input_pipelines
            return self.make_dataset(
                per_replica, start, context.num_input_pipelines,
                context.input_pipeline_id)

        dataset = self.strategy.distribute_datasets_from_function(dataset_fn)
        return iter(dataset)

    # -- evaluation ----------------------------------------------------------

    def evaluate(self):
        """The objective's metrics on ``eval_dataset`` (no dropout, no update),
        named ``eval_<metric>``; ``{}`` without an evaluation set."""
        if self.eval_dataset is None:
            return {}
        if self._eval_fn is None:
            objective = self.objective
            self._eval_fn = tf.function(
                lambda batch: self.strategy.run(objective.evaluate_step,
                                                args=(batch,)))
        sums = {}
        dataset = self.strategy.experimental_distribute_dataset(
            self.eval_dataset())
        for batch in dataset:
            out = self._eval_fn(batch)
            for name, value in out.items():
                value = self.strategy.reduce(tf.distribute.ReduceOp.SUM,
                                             value, axis=None)
                sums[name] = sums.get(name, 0.0) + float(value)
        if not sums:
            raise ValueError("The evaluation dataset is empty.")
        values = self.objective.metrics(sums)
        values["count"] = int(sums["count"])
        return {f"eval_{name}": value for name, value in values.items()}

    # -- the loop ------------------------------------------------------------

    def restore(self):
        """Restores the latest checkpoint, if any; returns its step.

        ``train`` calls it unless it was called already.
        """
        self._restored = True
        restored = restore_newest(self.checkpoint, self.checkpoint_dir,
                                  clean_up=self.is_chief)
        if restored is None:  # Rows of a run killed before its first save.
            self.metrics.truncate_after(0)
            return 0
        if self.is_chief:  # Rotation continues from the restored state.
            self.manager = tf.train.CheckpointManager(
                self.checkpoint, self.checkpoint_dir,
                max_to_keep=self.keep_checkpoints)
        step = int(self.step.numpy())
        logging.info("Resumed from %s (step %d, %d examples seen).",
                     restored[1], step, int(self.examples_seen.numpy()))
        self.metrics.truncate_after(step)
        return step

    def save_checkpoint(self):
        path = save_checkpoint(self.manager, int(self.step.numpy()))
        if not self.is_chief:
            shutil.rmtree(self.manager.directory, ignore_errors=True)
        return path

    def train(self):
        """Runs (or resumes) the training; returns a summary of the whole
        run (every segment, read back from ``metrics.jsonl``)."""
        total = self.total_steps
        if not self._restored:
            self.restore()
        start_step = int(self.step.numpy())
        if self._train_fn is None:
            self._train_fn = self._build_train_fn()
        iterator = self._distributed_iterator()
        self._reset_stats()
        step = start_step
        every = (self.log_every, self.checkpoint_every)
        if self.evaluates:
            every += (self.eval_every,)
        interval_start = time.perf_counter()
        interval_first_step = step
        history = []
        while step < total:
            boundary = min((step // n + 1) * n for n in every)
            if step == 0:  # The loss at the start, for the curve.
                boundary = 1
            n = min(self.steps_per_execution, boundary - step, total - step)
            stats = self._train_fn(iterator, tf.constant(n, tf.int64))
            stats = {k: float(v) for k, v in stats.items()}
            previous, step = step, step + n
            self._check_finite(stats, previous, step)
            evaluate = self.evaluates and (
                step % self.eval_every == 0 or step == total)
            if step % self.log_every == 0 or step in (1, total) or evaluate:
                elapsed = time.perf_counter() - interval_start
                values = self._metric_values(stats, step, elapsed,
                                             step - interval_first_step)
                for hook in self.hooks:
                    hook.on_log(self, step, dict(values))
                if evaluate:
                    values.update(self.evaluate())
                    for hook in self.hooks:
                        values.update(hook.on_evaluate(self, step) or {})
                self.metrics.write(step, values)
                history.append({"step": step, **values})
                if self.log_lines:
                    logging.info("step %d/%d %s", step, total, " ".join(
                        f"{k} {v:.4g}" for k, v in values.items()))
                self._reset_stats()
                interval_start = time.perf_counter()
                interval_first_step = step
            if step % self.checkpoint_every == 0 or step == total:
                self.save_checkpoint()
                for hook in self.hooks:
                    hook.on_checkpoint(self, step)
        if self.is_chief:
            history = read_metrics(self.workdir)
        summary = {"start_step": start_step, "total_steps": total,
                   **summarize(history)}
        summary["weights_sha256"] = weights_digest(self.objective.model)
        return summary

    def write_summary(self, summary):
        """``summary.json`` on the chief, ``workers/<task>.json`` on the
        other workers."""
        if self.is_chief:
            write_json(os.path.join(self.workdir, "summary.json"), summary)
            return
        try:  # The scratch parent, once every worker emptied it.
            os.rmdir(os.path.join(self.workdir, "tmp"))
        except OSError:
            pass
        workers = os.path.join(self.workdir, "workers")
        os.makedirs(workers, exist_ok=True)
        write_json(os.path.join(workers,
                                f"{self.task_type}_{self.task_id}.json"),
                   summary)

    def _check_finite(self, stats, previous, step):
        values = [v for k, v in stats.items() if k != "grad_norm"]
        if not isinstance(self.optimizer,
                          keras.optimizers.LossScaleOptimizer):  # Loss scaling skips inf steps itself.
            values.append(stats["grad_norm"])
        if all(math.isfinite(v) for v in values):
            return
        latest = tf.train.latest_checkpoint(self.checkpoint_dir)
        kept = (f"The last good checkpoint is {latest} and was kept."
                if latest else "No checkpoint had been written yet.")
        message = (
            f"Non-finite training loss or gradient (loss sum "
            f"{stats['loss_sum']}, gradient norm sum {stats['grad_norm']}) "
            f"in steps {previous + 1}..{step}; training stopped. {kept} "
            "Lower train.learning_rate, keep train.clipnorm > 0, or check "
            "the input data.")
        logging.error(message)
        raise NonFiniteLossError(message)

    def _metric_values(self, stats, step, elapsed, steps):
        values = self.objective.metrics(stats)
        if self.learning_rate is not None:
            values["learning_rate"] = float(
                self.learning_rate(max(step - 1, 0)))
        values["tokens_per_sec"] = stats["tokens"] / max(elapsed, 1e-9)
        values["examples_per_sec"] = stats["examples"] / max(elapsed, 1e-9)
        values["grad_norm"] = stats["grad_norm"] / max(steps, 1)
        return values


def summarize(history):
    """First and last logged entries, median throughput (the first logged
    interval, which includes tracing, left out), and the last evaluation.

    >>> summarize([{"step": 1, "tokens_per_sec": 1.0},
    ...            {"step": 5, "tokens_per_sec": 9.0}])["tokens_per_sec"]
    9.0
    """
    if not history:
        return {}
    steady = history[1:] or history
    summary = {
        "first_logged": history[0],
        "last_logged": history[-1],
        "tokens_per_sec": float(np.median(
            [h["tokens_per_sec"] for h in steady])),
        "examples_per_sec": float(np.median(
            [h["examples_per_sec"] for h in steady if "examples_per_sec" in h]
            or [0.0])),
    }
    evals = [h for h in history if any(k.startswith("eval_") for k in h)]
    if evals:
        summary["last_eval"] = {k: v for k, v in evals[-1].items()
                                if k == "step" or k.startswith("eval_")}
    return summary
