"""Fine-tuning a trimzoo backbone on a classification or regression task.

``finetune(config, workdir)`` is the library behind ``tools/finetune.py``:
it builds (or imports, and optionally layer-drops) the backbone under the
strategy's scope, trains with AdamW + warmup/decay, evaluates after every
epoch with the task's official metrics, keeps the best model, checkpoints
atomically and resumes an interrupted run from ``workdir``.

Workdir layout::

    config.json        the resolved config
    checkpoints/       resumable state (weights + optimizer, epoch record)
    metrics.json       every evaluation, the best one, test metrics and the
                       precision the run computed in (and why)
    tensorboard/       training and evaluation scalars
    labels.json        the label map: class id -> label name
    best/              preset folder of the best model (by validation)
    final/             preset folder of the model at the end of training

``best/`` and ``final/`` hold the classifier with its preprocessor and label
names: ``keras_hub.models.TextClassifier.from_preset(folder)`` predicts on
strings.
"""

import copy
import logging
import math
import os
import time

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from trimzoo.checkpoints.folders import (from_pretrained, is_classifier_folder,
                                        load_classifier_folder,
                                        save_classifier)
from trimzoo.checkpoints.teachers import load_classifier_teacher
from trimzoo.data import compute_metrics, encode_dataset, load_task_data
from trimzoo.utils.embedded import minilm_path
from trimzoo.models.tokenizers import load_tokenizer
from trimzoo.models import (TrimzooBackbone, TrimzooClassifier, create,
                            drop_layers, extract)
from trimzoo.models.layer_drop import drop_plan, parse_drop_spec
from trimzoo.models.precision import PRECISIONS, dtype_policy, policy_name
from trimzoo.models.preprocessors import preprocessor_for
from trimzoo.training.checkpointing import (TrainingState, changed_fields,
                                            record_config)
from trimzoo.training.config_checks import (DECAY, DROPOUT, NON_NEGATIVE,
                                            POSITIVE, UNIT, at_least,
                                            check_values, one_of)
from trimzoo.training.loop import NonFiniteLossError
from trimzoo.training.optimizers import create_optimizer
from trimzoo.training.progress import progress_callbacks
from trimzoo.training.recipes import resolve_pooling, resolve_recipe
from trimzoo.training.strategy import (get_strategy,
                                      resolve_training_precision)
from trimzoo.training.task_distillation import distillation_model
from trimzoo.training.objectives import ClassificationObjective
from trimzoo.utils.io import (read_json, reading_weights,
                              write_json)

log = logging.getLogger("trimzoo")

def default_tokenizer():
    """The embedded checkpoint's WordPiece tokenizer (bert-base-uncased)."""
    return load_tokenizer(minilm_path())


def build_model(config, spec, train_data=None):
    """Backbone (imported or new, optionally layer-dropped) + head.

    ``init_checkpoint`` is a backbone checkpoint (``from_pretrained``; a new
    head is added) or a classifier folder written by fine-tuning, pruning or
    layer dropping (its head and pooling come along; e.g. a teacher's
    ``best/`` to layer-drop and distil). ``train_data`` (examples) is needed
    by the ``contribution`` drop strategy, which measures layer
    similarities on real inputs.

    Returns ``(classifier, tokenizer, info)``; call under a strategy scope.
    """
    info = {}
    overrides = dict(config.model_overrides)
    classifier = None
    if config.init_checkpoint:
        if overrides:
            raise ValueError(
                "model_overrides cannot change an imported checkpoint's "
                f"architecture (got {overrides}); drop init_checkpoint or "
                "the overrides."
            )
        if is_classifier_folder(config.init_checkpoint):
            classifier = load_classifier_folder(config.init_checkpoint)
            tokenizer = load_tokenizer(config.init_checkpoint)
            if classifier.num_classes != spec.num_classes:
                raise ValueError(
                    f"init_checkpoint {config.init_checkpoint} is a "
                    f"classifier with {classifier.num_classes} classes; the "
                    f"task {config.task!r} has {spec.num_classes}.")
            backbone = classifier.backbone
        else:
            backbone, tokenizer = from_pretrained(config.init_checkpoint)
        info["init_checkpoint"] = config.init_checkpoint
    else:
        log.warning(
            "No init_checkpoint: the %s classifier starts from "
            "RANDOM weights (nothing pretrained), so it learns only from "
            "this task's examples. To fine-tune a pretrained model set "
            "init_checkpoint=FOLDER, or init_checkpoint=minilm for the "
            "embedded all-MiniLM-L6-v2.", config.model)
        info["random_init"] = True
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
        # The plan is the one drop_layers follows; extract keeps a
        # classifier's head with the kept layers.
        plan = drop_plan(backbone, **drop)
        if classifier is not None:
            classifier = extract(classifier, layers=plan["kept"])
            backbone = classifier.backbone
        else:
            backbone = drop_layers(backbone, layers=plan["dropped"])
        info["drop_layers"] = config.drop_layers
        info["dropped_layers"] = plan["dropped"]
    info["num_layers"] = backbone.num_layers
    info["params"] = int(backbone.count_params())
    info["model"] = describe_architecture(
        backbone, preset=None if config.init_checkpoint else config.model,
        init_checkpoint=config.init_checkpoint or None)
    if classifier is not None:
        info["pooling"] = classifier.pooling
        return classifier, tokenizer, info
    info["pooling"], info["pooling_reason"] = resolve_pooling(
        config.get("pooling"), config.init_checkpoint)
    model = TrimzooClassifier(
        backbone, num_classes=spec.num_classes, dropout=config.train.dropout,
        pooling=info["pooling"])
    print(f"Pooling: {info['pooling']} ({info['pooling_reason']}).",
          flush=True)
    return model, tokenizer, info


def describe_architecture(backbone, preset=None, init_checkpoint=None):
    """What a model is, for ``metrics.json``: where it came from (the preset
    it was built from, or the ``init_checkpoint`` it was read from) and the
    backbone's real sizes.

    Examples:
    >>> import trimzoo
    >>> backbone = trimzoo.models.bert_tiny(vocabulary_size=50, num_layers=1)
    >>> describe_architecture(backbone, preset="bert_tiny")
    ... # doctest: +NORMALIZE_WHITESPACE
    {'preset': 'bert_tiny', 'init_checkpoint': None, 'num_layers': 1,
     'hidden_dim': 128, 'num_heads': 2, 'intermediate_dim': 512,
     'vocabulary_size': 50}
    """
    def sizes(value):  # One int, or one per layer (pruned models).
        if isinstance(value, (list, tuple)):
            value = [int(v) for v in value]
            return value[0] if len(set(value)) == 1 else value
        return int(value)

    return {"preset": preset, "init_checkpoint": init_checkpoint,
            "num_layers": int(backbone.num_layers),
            "hidden_dim": int(backbone.hidden_dim),
            "num_heads": sizes(backbone.num_heads),
            "intermediate_dim": sizes(backbone.intermediate_dim),
            "vocabulary_size": int(backbone.vocabulary_size)}


class EvalCallback(keras.callbacks.Callback):
    """Evaluates on the validation split(s) after each epoch with the task's
    official metrics; logs to TensorBoard and ``metrics.json``; keeps the
    best model as a preset folder."""

    def __init__(self, evaluate, spec, workdir, best_metric, tokenizer,
                 record, model=None):
        super().__init__()
        # The classifier to evaluate and save (under distillation, the
        # student inside the trained ObjectiveModel); None: the trained model.
        self.classifier = model
        self.evaluate = evaluate
        self.spec = spec
        self.workdir = workdir
        self.best_metric = best_metric
        self.tokenizer = tokenizer
        self.record = record
        self.writer = tf.summary.create_file_writer(
            os.path.join(workdir, "tensorboard", "eval"))

    def on_epoch_end(self, epoch, logs=None):
        classifier = self.classifier or self.model
        results = self.evaluate(classifier)
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
            _require_finite_weights(classifier, "best/")
            save_preset(classifier, self.tokenizer,
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
        _require_finite_weights(self.model, "the training state")
        self.state.save(self.model, epoch + 1, optimizer_steps=int(
            self.model.optimizer.iterations.numpy()))


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training with ``NonFiniteLossError`` when the loss becomes NaN
    or infinite. (``keras.callbacks.TerminateOnNaN`` stops quietly: the run
    would exit 0 and save the diverged model.) The last good training
    state (the previous epoch) is kept.

    Args:
        state: ``TrainingState`` of the run, named in the message.
    """

    def __init__(self, state):
        super().__init__()
        self.state = state
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, f"epoch {self.epoch + 1}, batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, f"epoch {epoch + 1}")

    def _check(self, logs, where):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        record = self.state.load_record()
        kept = (f"The last good state (epoch {record['epoch']}) in "
                f"{self.state.directory} was kept." if record else
                "No epoch had completed; nothing was saved.")
        message = (f"Non-finite training loss ({float(loss)}) at {where}; "
                   f"training stopped. {kept} Lower train.learning_rate, "
                   "keep train.clipnorm > 0, or check the input data.")
        log.error(message)
        raise NonFiniteLossError(message)


def _require_finite_weights(model, what):
    """Refuses to save ``what`` from a model with NaN or infinite weights."""
    bad = [w.path for w in model.weights
           if not np.isfinite(np.asarray(w.numpy(), "float32")).all()]
    if bad:
        raise NonFiniteLossError(
            f"The model has non-finite weights ({len(bad)} tensors, e.g. "
            f"{bad[:3]}); {what} was not saved.")


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
    if not isinstance(tokenizer, keras_hub.models.Preprocessor):
        tokenizer = preprocessor_for(model.backbone, tokenizer)
    save_classifier(model, tokenizer, path, overwrite=True)


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

# The values a fine-tuning run can use (trimzoo.training.config_checks).
CONFIG_RULES = (
    ("max_seq_length", at_least(3)),
    ("train.batch_size", at_least(1)),
    ("train.epochs", at_least(1)),
    ("train.learning_rate", POSITIVE),
    ("train.warmup_fraction", UNIT),
    ("train.weight_decay", NON_NEGATIVE),
    ("train.clipnorm", NON_NEGATIVE),
    ("train.layer_decay", DECAY),
    ("train.dropout", DROPOUT),
    ("train.precision", one_of(PRECISIONS)),
    ("train.steps_per_execution", at_least(1)),
    ("train.max_steps_per_epoch", at_least(0)),
    ("data.max_train_examples", at_least(0)),
    ("data.max_eval_examples", at_least(0)),
    ("data.max_test_examples", at_least(0)),
    ("data.bucket_width", at_least(0)),
    ("eval.batch_size", at_least(1)),
    ("distill.alpha", UNIT),
    ("distill.temperature", POSITIVE),
    ("distill.hidden_weight", NON_NEGATIVE),
)


def validate_config(config):
    """Raises ``ValueError`` naming the first value of ``config`` outside
    :data:`CONFIG_RULES` (a temperature <= 0, an alpha outside [0, 1], no
    epochs, an unknown ``train.precision``, ...); ``finetune`` calls it
    before it reads data or builds a model."""
    check_values(config, CONFIG_RULES)


def resolve_run_precision(config, strategy=None):
    """``{"precision", "reason", "policy"}``: what a run computes in
    (``train.precision``, ``"auto"`` resolved on this machine), why, and
    the Keras dtype policy its models are built under."""
    precision, reason = resolve_training_precision(
        config.train.precision, strategy, what="train.precision",
        batch_size=config.train.batch_size)
    return {"precision": precision, "reason": reason,
            "policy": policy_name(precision)}


def finetune(config, workdir, strategy=None, callbacks=()):
    """Fine-tunes per ``config`` (see ``configs/finetune.py``) in ``workdir``.

    Re-running with an existing ``workdir`` resumes from the last completed
    epoch (``train.epochs`` may be raised to train longer; any other change
    is refused). Returns the ``metrics.json`` record, whose ``precision``
    says what the run computed in and why.

    Args:
        config: ConfigDict from ``configs/finetune.py``.
        workdir: str. Output folder.
        strategy: ``tf.distribute.Strategy`` or None (the default strategy).
        callbacks: extra Keras callbacks for ``fit``.
    """
    validate_config(config)  # Before any data is read or model built.
    precision = resolve_run_precision(config, strategy)
    print(f"Precision: {precision['precision']} ({precision['reason']}).",
          flush=True)
    # The models are built under the run's policy; variables stay float32,
    # so the saved presets load in any precision.
    with dtype_policy(precision["policy"]):
        return _finetune(config, workdir, strategy, callbacks, precision)


def _finetune(config, workdir, strategy, callbacks, precision):
    os.makedirs(workdir, exist_ok=True)
    config = _set_model_overrides(config)
    # Only a run that has trained locks its workdir to its config.
    record_config(workdir, _config_dict(config), RESUMABLE_CHANGES,
                  trained=_has_trained(workdir))
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
        test = _limit(load_task_data(config.task, spec.test_split,
                                     **data_kwargs)[0],
                      config.data.get("max_test_examples", 0), config.seed)
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

        def encode(examples, shuffle=False, batch_size=None,
                   bucket_boundaries=None):
            return encode_dataset(
                examples, tokenizer, spec,
                max_seq_length=config.max_seq_length,
                batch_size=batch_size or config.eval.batch_size,
                shuffle=shuffle, seed=config.seed,
                num_segments=num_segments,
                bucket_boundaries=bucket_boundaries)

        train_ds = encode(train, shuffle=True,
                          batch_size=config.train.batch_size,
                          bucket_boundaries=length_buckets(
                              config.data.bucket_width,
                              config.max_seq_length))
        # Epochs and learning rate left unset: chosen from the data and
        # the model (trimzoo.training.recipes), said and recorded.
        recipe = resolve_recipe(
            len(train), config.train.batch_size, model.backbone.hidden_dim,
            epochs=config.train.epochs,
            learning_rate=config.train.learning_rate,
            max_steps_per_epoch=config.train.max_steps_per_epoch)
        for reason in recipe["reasons"]:
            print(f"Recipe (auto): {reason}.", flush=True)
        epochs, steps = recipe["epochs"], recipe["steps_per_epoch"]
        total = recipe["steps"]
        optimizer = create_optimizer(
            recipe["learning_rate"], total_steps=max(total, 1),
            warmup_steps=int(config.train.warmup_fraction * total),
            optimizer=config.train.optimizer,
            weight_decay=config.train.weight_decay,
            clipnorm=config.train.clipnorm,
            layer_decay=config.train.layer_decay,
            num_layers=model.backbone.num_layers)
        # The objective is ClassificationObjective's: the classification loss
        # of trimzoo.training.losses, averaged by Keras over the batch.
        compile_args = dict(
            optimizer=optimizer,
            jit_compile=resolve_jit_compile(config, strategy),
            steps_per_execution=config.train.steps_per_execution)
        fit_model, distill_info = distillation_setup(config, spec, model,
                                                     tokenizer)
        info.update(distill_info)
        if fit_model is None:
            # The objective is ClassificationObjective's: the classification
            # loss of trimzoo.training.losses, averaged by Keras over the
            # batch.
            task = ClassificationObjective(model, spec.num_classes)
            if spec.num_classes == 1:
                metrics = [keras.metrics.MeanAbsoluteError(name="mae")]
            else:
                metrics = [keras.metrics.SparseCategoricalAccuracy(
                    name="accuracy")]
            model.compile(loss=task.keras_loss, metrics=metrics,
                          **compile_args)
            fit_model = model
        else:
            fit_model.compile(**compile_args)

        state = TrainingState(os.path.join(workdir, "checkpoints"))
        resumed = state.restore(fit_model)
    initial_epoch = resumed["epoch"] if resumed else 0
    record = read_json(os.path.join(workdir, "metrics.json")) or {}
    record.setdefault("evals", [])
    record["evals"] = record["evals"][:initial_epoch]
    # info["model"]: the real architecture and where it came from.
    record.update(task=config.task, **info, precision=precision,
                  recipe=recipe)
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
        StopOnNonFiniteLoss(state),  # First: nothing of a bad epoch is saved.
        EvalCallback(evaluate, spec, workdir, best_metric, preprocessor,
                     record, model=model),
        StateCallback(state),
        keras.callbacks.TensorBoard(
            os.path.join(workdir, "tensorboard"), update_freq=50),
        *callbacks,
        *progress_callbacks(config.train.batch_size, _interactive()),
    ]
    start = time.time()
    if initial_epoch < epochs:
        try:
            fit_model.fit(train_ds.repeat(), epochs=epochs,
                      steps_per_epoch=steps, initial_epoch=initial_epoch,
                      callbacks=callbacks, shuffle=False,
                      verbose=1 if _interactive() else 2)
        except BaseException:
            # Keras skips on_train_end when fit is interrupted; the
            # TensorBoard callback would leave its writer and record_if
            # condition installed for every later summary in the process.
            callbacks[3].on_train_end()
            raise
    record["train_seconds"] = time.time() - start
    _require_finite_weights(model, "final/")
    save_preset(model, preprocessor, os.path.join(workdir, "final"))
    if test is not None and os.path.isdir(os.path.join(workdir, "best")):
        with reading_weights(os.path.join(workdir, "best")):
            best = keras_hub.models.TextClassifier.from_preset(
                os.path.join(workdir, "best"))
        labels, predictions = predict_labels(best, encode(test), spec)
        record["test"] = compute_metrics(spec, labels, predictions)
        print("test: " + ", ".join(f"{k}={v:.4f}"
                                   for k, v in record["test"].items()))
    write_json(os.path.join(workdir, "metrics.json"), record)
    return record


def distillation_setup(config, spec, model, tokenizer):
    """``(ObjectiveModel or None, info)``: with ``distill.teacher`` set, the
    student ``model`` trained by task distillation from that fine-tuned
    classifier (see ``trimzoo.training.task_distillation``); call under the
    strategy scope, which the teacher's weights join."""
    distill = config.distill
    if not distill.teacher:
        return None, {"distilled": False}
    teacher = load_classifier_teacher(
        distill.teacher, spec.num_classes, model, tokenizer,
        hidden_weight=distill.hidden_weight)
    fit_model = distillation_model(
        model, teacher, spec.num_classes, alpha=distill.alpha,
        temperature=distill.temperature, hidden_weight=distill.hidden_weight)
    print(f"Distilling from {distill.teacher} ({teacher.backbone.num_layers} "
          f"layers): alpha {distill.alpha}, temperature "
          f"{distill.temperature}, hidden_weight {distill.hidden_weight}.",
          flush=True)
    return fit_model, {"distilled": True, "teacher": distill.teacher}


def resolve_jit_compile(config, strategy):
    """``train.jit_compile``, except under several replicas: Keras cannot
    XLA-compile ``fit``'s step with its cross-replica updates."""
    jit_compile = bool(config.train.jit_compile)
    if jit_compile and strategy.num_replicas_in_sync > 1:
        log.info("jit_compile is off: %d replicas.",
                 strategy.num_replicas_in_sync)
        return False
    return jit_compile


def length_buckets(width, max_seq_length):
    """Bucket boundaries ``width`` tokens apart below ``max_seq_length``
    (``encode_dataset``'s ``bucket_boundaries``); None when ``width`` is 0.

    Examples:

    >>> length_buckets(16, 64)
    [17, 33, 49]
    >>> length_buckets(0, 64) is None
    True
    """
    if width < 0 or width != int(width):
        raise ValueError(f"data.bucket_width must be an integer >= 0, got "
                         f"{width!r}.")
    if not width:
        return None
    boundaries = list(range(width + 1, max_seq_length + 1, width))
    if not boundaries:
        raise ValueError(f"data.bucket_width {width} is not below "
                         f"max_seq_length {max_seq_length}: one bucket; use "
                         "0 for plain batches.")
    return boundaries


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


_changed_fields = changed_fields  # Kept under its former name.


def _has_trained(workdir):
    """A completed epoch or a saved model is in ``workdir``."""
    return any(os.path.exists(os.path.join(workdir, name)) for name in (
        os.path.join("checkpoints", "state.json"), "best", "final"))


def _set_model_overrides(config):
    """A copy of ``config`` whose ``model_overrides`` holds only the values
    that are set, each a ``TrimzooBackbone`` argument (a misspelt name
    raises ``TypeError`` suggesting the closest one), over ``runlocal``'s
    smaller architecture when the run builds a new model."""
    overrides = {k: v for k, v in dict(config.model_overrides).items()
                 if v is not None}
    if not config.init_checkpoint:
        overrides = {**dict(config.get("runlocal_model") or {}), **overrides}
    TrimzooBackbone.check_argument_names(overrides, owner="model_overrides")
    config = copy.deepcopy(config)
    with config.unlocked():
        config.model_overrides = overrides
    return config


def _config_dict(config):
    return config.to_dict() if hasattr(config, "to_dict") else dict(config)
