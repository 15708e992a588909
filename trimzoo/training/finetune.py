"""Fine-tuning a trimzoo backbone on a classification or regression task.

``finetune(config, workdir)`` is the library behind ``tools/finetune.py``:
it builds (or imports, and optionally layer-drops) the backbone under the
strategy's scope, trains with AdamW + warmup/decay, evaluates after every
epoch with the task's official metrics, keeps the best model, checkpoints
atomically and resumes an interrupted run from ``workdir``.

Workdir layout::

    config.json        the resolved config
    checkpoints/       resumable state (weights + optimizer, epoch record)
    metrics.json       every evaluation, the best one, and test metrics
    tensorboard/       training and evaluation scalars
    labels.json        the label map: class id -> label name
    best/              preset folder of the best model (by validation)
    final/             preset folder of the model at the end of training

``best/`` and ``final/`` hold the classifier with its preprocessor and label
names: ``keras_hub.models.TextClassifier.from_preset(folder)`` predicts on
strings.
"""

import logging
import math
import os
import time

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from trimzoo.data import compute_metrics, encode_dataset, load_task_data
from trimzoo.data.embedded import minilm_path
from trimzoo.data.tokenizers import load_tokenizer
from trimzoo.models import (TrimzooClassifier, create, drop_layers,
                            from_pretrained)
from trimzoo.models.preprocessors import preprocessor_for
from trimzoo.training.checkpointing import TrainingState
from trimzoo.training.optimizers import create_optimizer
from trimzoo.training.progress import progress_callbacks
from trimzoo.training.strategy import get_strategy
from trimzoo.training.tasks import ClassificationTask
from trimzoo.utils.io import atomic_path, read_json, write_json

log = logging.getLogger("trimzoo")

DROP_STRATEGIES = ("top", "bottom", "odd", "even", "symmetric",
                   "contribution", "layers")


def parse_drop_spec(spec):
    """``"top:2"`` -> ``{"strategy": "top", "k": 2}``; ``"layers:9,10"`` ->
    ``{"layers": [9, 10]}``; ``"contribution:0.95"`` -> threshold;
    ``"contribution:k=3"`` -> the 3 most similar layers."""
    if not spec:
        return None
    name, _, value = spec.partition(":")
    if name not in DROP_STRATEGIES or not value:
        raise ValueError(
            f"drop_layers={spec!r} must look like 'STRATEGY:VALUE' with "
            f"STRATEGY one of {list(DROP_STRATEGIES)}, e.g. 'top:2', "
            "'layers:9,10,11', 'contribution:0.95'."
        )
    try:
        if name == "layers":
            return {"layers": [int(v) for v in value.split(",")]}
        if name == "contribution":
            if value.startswith("k="):
                return {"strategy": name, "k": int(value[2:])}
            return {"strategy": name, "threshold": float(value)}
        return {"strategy": name, "k": int(value)}
    except ValueError:
        raise ValueError(f"drop_layers={spec!r}: bad value {value!r}.") from None


def default_tokenizer():
    """The embedded checkpoint's WordPiece tokenizer (bert-base-uncased)."""
    return load_tokenizer(minilm_path())


def build_model(config, spec, train_data=None):
    """Backbone (imported or new, optionally layer-dropped) + head.

    ``train_data`` (examples) is needed by the ``contribution`` drop
    strategy, which measures layer similarities on real inputs.

    Returns ``(classifier, tokenizer, info)``; call under a strategy scope.
    """
    info = {}
    overrides = dict(config.model_overrides)
    if config.init_checkpoint:
        backbone, tokenizer = from_pretrained(config.init_checkpoint)
        if overrides:
            raise ValueError(
                "model_overrides cannot change an imported checkpoint's "
                f"architecture (got {overrides}); drop init_checkpoint or "
                "the overrides."
            )
        info["init_checkpoint"] = config.init_checkpoint
    else:
        tokenizer = default_tokenizer()
        vocab = tokenizer.vocabulary_size()
        if overrides.get("vocabulary_size", vocab) != vocab:
            raise ValueError("vocabulary_size must equal the tokenizer's.")
        overrides["vocabulary_size"] = vocab
        overrides.setdefault("dropout", config.train.dropout)
        backbone = create(config.model, **overrides)
    info["layers_before_drop"] = backbone.num_layers
    drop = parse_drop_spec(config.drop_layers)
    if drop:
        if drop.get("strategy") == "contribution":
            # Layer similarities measured on (up to) 256 training inputs.
            drop["data"] = encode_dataset(
                train_data.take(256), tokenizer, spec,
                max_seq_length=config.max_seq_length,
                batch_size=config.eval.batch_size,
                num_segments=backbone.num_segments)
        backbone = drop_layers(backbone, **drop)
        info["drop_layers"] = config.drop_layers
    info["num_layers"] = backbone.num_layers
    info["params"] = int(backbone.count_params())
    model = TrimzooClassifier(
        backbone, num_classes=spec.num_classes, dropout=config.train.dropout,
        pooling=config.get("pooling", "cls"))
    return model, tokenizer, info


class EvalCallback(keras.callbacks.Callback):
    """Evaluates on the validation split(s) after each epoch with the task's
    official metrics; logs to TensorBoard and ``metrics.json``; keeps the
    best model as a preset folder."""

    def __init__(self, evaluate, spec, workdir, best_metric, tokenizer,
                 record):
        super().__init__()
        self.evaluate = evaluate
        self.spec = spec
        self.workdir = workdir
        self.best_metric = best_metric
        self.tokenizer = tokenizer
        self.record = record
        self.writer = tf.summary.create_file_writer(
            os.path.join(workdir, "tensorboard", "eval"))

    def on_epoch_end(self, epoch, logs=None):
        results = self.evaluate(self.model)
        entry = {"epoch": epoch + 1,
                 "train_loss": float((logs or {}).get("loss", float("nan"))),
                 **results}
        self.record["evals"].append(entry)
        with self.writer.as_default(step=epoch + 1):
            for split, metrics in results.items():
                for name, value in metrics.items():
                    tf.summary.scalar(f"{split}/{name}", value)
        score = _lookup(results, self.best_metric)
        best = self.record.get("best")
        if best is None or score > best["score"]:
            self.record["best"] = {"epoch": epoch + 1, "score": score,
                                   "metric": self.best_metric}
            save_preset(self.model, self.tokenizer,
                        os.path.join(self.workdir, "best"))
        write_json(os.path.join(self.workdir, "metrics.json"), self.record)
        print(f"epoch {epoch + 1}: " + ", ".join(
            f"{split}/{k}={v:.4f}" for split, m in results.items()
            for k, v in m.items()), flush=True)


class StateCallback(keras.callbacks.Callback):
    """Saves resumable state at the end of every epoch (after evaluation)."""

    def __init__(self, state):
        super().__init__()
        self.state = state

    def on_epoch_end(self, epoch, logs=None):
        self.state.save(self.model, epoch + 1, optimizer_steps=int(
            self.model.optimizer.iterations.numpy()))


def _lookup(results, metric):
    """``"validation/accuracy"`` -> value."""
    split, _, name = metric.partition("/")
    try:
        return float(results[split][name])
    except KeyError:
        raise ValueError(
            f"best_metric {metric!r} is not among the evaluated metrics "
            f"{ {s: sorted(m) for s, m in results.items()} }."
        ) from None


def save_preset(model, tokenizer, path):
    """Classifier + preprocessor (with its tokenizer) as one preset folder,
    written atomically.

    The folder holds weights only, not the optimizer state (which would
    triple its size): a fresh copy of the model is saved, with
    ``tokenizer`` as its preprocessor when it is one, else a
    ``TrimzooTextClassifierPreprocessor`` on it.
    """
    clone = model.__class__.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    if not isinstance(tokenizer, keras_hub.models.Preprocessor):
        tokenizer = preprocessor_for(model.backbone, tokenizer)
    clone.preprocessor = tokenizer
    with atomic_path(path) as tmp:
        clone.save_to_preset(tmp)


def write_label_map(workdir, spec):
    """Writes ``labels.json`` (``{"label_names": [...]}``, null for
    regression) into ``workdir`` and prints the map."""
    names = None if spec.label_names is None else list(spec.label_names)
    write_json(os.path.join(workdir, "labels.json"), {"label_names": names})
    if names is None:
        print(f"Labels: regression ({spec.name}): one score.", flush=True)
    else:
        print("Labels: " + ", ".join(f"{i}={n}" for i, n in enumerate(names)),
              flush=True)


def predict_labels(model, dataset, spec):
    """Returns ``(labels, predictions)`` over a finite ``(x, y)`` dataset."""
    labels = np.concatenate([y for _, y in dataset.as_numpy_iterator()])
    logits = model.predict(dataset.map(lambda x, y: x), verbose=0)
    if spec.num_classes == 1:
        predictions = logits[:, 0]
    else:
        predictions = np.argmax(logits, axis=-1)
    return labels, predictions


# Config fields that may change when a run is resumed.
RESUMABLE_CHANGES = ("train.epochs",)


def finetune(config, workdir, strategy=None, callbacks=()):
    """Fine-tunes per ``config`` (see ``configs/finetune.py``) in ``workdir``.

    Re-running with an existing ``workdir`` resumes from the last completed
    epoch (``train.epochs`` may be raised to train longer; any other change
    is refused). Returns the ``metrics.json`` record.

    Args:
        config: ConfigDict from ``configs/finetune.py``.
        workdir: str. Output folder.
        strategy: ``tf.distribute.Strategy`` or None (the default strategy).
        callbacks: extra Keras callbacks for ``fit``.
    """
    os.makedirs(workdir, exist_ok=True)
    config_path = os.path.join(workdir, "config.json")
    previous = read_json(config_path)
    if previous is not None:
        changed = _changed_fields(previous, _config_dict(config))
        changed = [f for f in changed if f not in RESUMABLE_CHANGES]
        if changed:
            raise ValueError(
                f"{workdir} holds a run with a different config (fields "
                f"{changed}); resume with the same config, or use a new "
                "--workdir."
            )
    write_json(config_path, _config_dict(config))
    if config.train.mixed_precision:
        keras.mixed_precision.set_global_policy(config.train.mixed_precision)
    keras.utils.set_random_seed(config.seed)
    strategy = strategy or get_strategy()

    data_kwargs = _data_kwargs(config)
    train, spec = load_task_data(config.task, "train", **data_kwargs)
    if not spec.eval_splits:
        raise ValueError(
            f"Task {config.task!r} has no labelled evaluation split; for "
            "task 'files' set --config.data.validation_files.")
    train = _limit(train, config.data.max_train_examples, config.seed)
    evals = {split: _limit(load_task_data(config.task, split,
                                          **data_kwargs)[0],
                           config.data.max_eval_examples, config.seed)
             for split in spec.eval_splits}
    test = None
    if spec.test_split:
        test = load_task_data(config.task, spec.test_split, **data_kwargs)[0]
    best_metric = config.eval.best_metric or (
        f"{spec.eval_splits[0]}/{spec.main_metric}")
    write_label_map(workdir, spec)

    with strategy.scope():
        raw_train = None
        if config.drop_layers.startswith("contribution"):
            raw_train = train
        model, tokenizer, info = build_model(config, spec, raw_train)
        # Saved presets read strings and know the label names.
        model.label_names = spec.label_names
        preprocessor = preprocessor_for(model.backbone, tokenizer,
                                        config.max_seq_length)
        num_segments = model.backbone.num_segments

        def encode(examples, shuffle=False, batch_size=None):
            return encode_dataset(
                examples, tokenizer, spec,
                max_seq_length=config.max_seq_length,
                batch_size=batch_size or config.eval.batch_size,
                shuffle=shuffle, seed=config.seed,
                num_segments=num_segments)

        train_ds = encode(train, shuffle=True,
                          batch_size=config.train.batch_size)
        num_train = len(train)
        steps = math.ceil(num_train / config.train.batch_size)
        if config.train.max_steps_per_epoch:
            steps = min(steps, config.train.max_steps_per_epoch)
        total = steps * config.train.epochs
        optimizer = create_optimizer(
            config.train.learning_rate, total_steps=max(total, 1),
            warmup_steps=int(config.train.warmup_fraction * total),
            optimizer=config.train.optimizer,
            weight_decay=config.train.weight_decay,
            clipnorm=config.train.clipnorm)
        # The objective is ClassificationTask's: the classification loss
        # of trimzoo.training.losses, averaged by Keras over the batch.
        task = ClassificationTask(model, spec.num_classes)
        if spec.num_classes == 1:
            metrics = [keras.metrics.MeanAbsoluteError(name="mae")]
        else:
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        model.compile(optimizer=optimizer, loss=task.keras_loss,
                      metrics=metrics,
                      jit_compile=resolve_jit_compile(config, strategy),
                      steps_per_execution=config.train.steps_per_execution)

        state = TrainingState(os.path.join(workdir, "checkpoints"))
        resumed = state.restore(model)
    initial_epoch = resumed["epoch"] if resumed else 0
    record = read_json(os.path.join(workdir, "metrics.json")) or {}
    record.setdefault("evals", [])
    record["evals"] = record["evals"][:initial_epoch]
    record.update(task=config.task, model=config.model, **info)
    if resumed:
        print(f"Resuming {workdir} after epoch {initial_epoch}.", flush=True)

    eval_sets = {split: encode(examples) for split, examples in evals.items()}

    def evaluate(m):
        results = {}
        for split, ds in eval_sets.items():
            labels, predictions = predict_labels(m, ds, spec)
            results[split] = compute_metrics(spec, labels, predictions)
        return results

    callbacks = [
        EvalCallback(evaluate, spec, workdir, best_metric, preprocessor,
                     record),
        StateCallback(state),
        keras.callbacks.TensorBoard(
            os.path.join(workdir, "tensorboard"), update_freq=50),
        *callbacks,
        *progress_callbacks(config.train.batch_size, _interactive()),
    ]
    start = time.time()
    if initial_epoch < config.train.epochs:
        try:
            model.fit(train_ds.repeat(), epochs=config.train.epochs,
                      steps_per_epoch=steps, initial_epoch=initial_epoch,
                      callbacks=callbacks, shuffle=False,
                      verbose=1 if _interactive() else 2)
        except BaseException:
            # Keras skips on_train_end when fit is interrupted; the
            # TensorBoard callback would leave its writer and record_if
            # condition installed for every later summary in the process.
            callbacks[2].on_train_end()
            raise
    record["train_seconds"] = time.time() - start
    save_preset(model, preprocessor, os.path.join(workdir, "final"))
    if test is not None and os.path.isdir(os.path.join(workdir, "best")):
        best = keras_hub.models.TextClassifier.from_preset(
            os.path.join(workdir, "best"))
        labels, predictions = predict_labels(best, encode(test), spec)
        record["test"] = compute_metrics(spec, labels, predictions)
        print("test: " + ", ".join(f"{k}={v:.4f}"
                                   for k, v in record["test"].items()))
    write_json(os.path.join(workdir, "metrics.json"), record)
    return record


def resolve_jit_compile(config, strategy):
    """``train.jit_compile``, except under several replicas: Keras cannot
    XLA-compile ``fit``'s step with its cross-replica updates."""
    jit_compile = bool(config.train.jit_compile)
    if jit_compile and strategy.num_replicas_in_sync > 1:
        log.info("jit_compile is off: %d replicas.",
                 strategy.num_replicas_in_sync)
        return False
    return jit_compile


def _data_kwargs(config):
    """``load_task_data`` arguments from ``config.data``."""
    data = config.data
    if config.task == "files":
        files = {split: data[f"{split}_files"]
                 for split in ("train", "validation", "test")
                 if data[f"{split}_files"]}
        columns = [data.text_column] + (
            [data.text_pair_column] if data.text_pair_column else [])
        return dict(files=files, text_columns=columns,
                    label_column=data.label_column)
    if config.task.startswith("glue/"):
        return dict(source=data.source, data_dir=data.data_dir)
    return {}


def _limit(examples, count, seed):
    """A seeded random subset of ``count`` examples (0 = all)."""
    if not count or count >= len(examples):
        return examples
    return examples.shuffle(len(examples), seed=seed,
                            reshuffle_each_iteration=False).take(count)


def _interactive():
    return os.isatty(1)


def _changed_fields(old, new, prefix=""):
    keys = set(old) | set(new)
    changed = []
    for key in sorted(keys):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += _changed_fields(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key}")
    return changed


def _config_dict(config):
    return config.to_dict() if hasattr(config, "to_dict") else dict(config)
