"""Fine-tuning a trimzoo backbone on a classification or regression task.

``finetune(config, workdir)`` is the library behind ``tools/finetune.py``:
it builds (or imports, and optionally layer-drops) the backbone under the
strategy's scope and trains it with AdamW + warmup/decay through the one
training loop of the package (``trimzoo.training.loop.Trainer``, as
pretraining does): after every epoch the ``EpochEvaluator`` hook evaluates
with the task's official metrics and keeps the best model; the loop
checkpoints atomically, stops on a non-finite loss and resumes an
interrupted run from ``workdir`` exactly.

Workdir layout::

    config.json        the resolved config
    checkpoints/       the training loop's checkpoint of the last epoch
                       (weights, optimizer, step, dropout RNG state)
    metrics.json       every evaluation, the best one, test metrics and the
                       precision the run computed in (and why)
    metrics.jsonl      the loop's logged steps (training and evaluation)
    tensorboard/       the same as scalars
    labels.json        the label map: class id -> label name
    best/              preset folder of the best model (by validation)
    final/             preset folder of the model at the end of training

``best/`` and ``final/`` hold the classifier with its preprocessor and label
names: ``keras_hub.models.TextClassifier.from_preset(folder)`` predicts on
strings.
"""

import copy
import logging
import os
import time

import keras
from trimzoo.checkpoints.folders import (from_pretrained, is_classifier_folder,
                                        load_classifier_folder,
                                        load_text_classifier, save_classifier)
from trimzoo.checkpoints.teachers import load_classifier_teacher
from trimzoo.data import augment
from trimzoo.data.model_data import (PATH_FIELDS, absolute_data_paths,
                                      task_kwargs)
from trimzoo.data import (compute_metrics, encode_dataset, examples_to_dataset,
                          load_task_data)
from trimzoo.utils.embedded import minilm_path
from trimzoo.models.tokenizers import load_tokenizer
from trimzoo.models import (TrimzooBackbone, TrimzooClassifier, create,
                            drop_layers, extract)
from trimzoo.models.layer_drop import drop_plan, parse_drop_spec
from trimzoo.models.precision import PRECISIONS, dtype_policy, policy_name
from trimzoo.models.preprocessors import preprocessor_for
from trimzoo.training.checkpointing import find_checkpoints, record_config
from trimzoo.training.config_checks import (DECAY, DROPOUT, NON_NEGATIVE,
                                            POSITIVE, UNIT, at_least,
                                            check_values, one_of)
from trimzoo.training.evaluation import (EpochEvaluator, predict_labels,
                                         require_finite_weights)
from trimzoo.training.loop import Trainer, dropout_rng_variables
from trimzoo.training.objectives import (ClassificationObjective,
                                         ClassifierDistillationObjective)
from trimzoo.training.optimizers import WarmupLinearDecay, create_optimizer
from trimzoo.training.progress import ProgressPrinter, log_every
from trimzoo.training.recipes import resolve_pooling, resolve_recipe
from trimzoo.training.strategy import (get_strategy,
                                      resolve_training_precision)
from trimzoo.utils.io import read_json, write_json

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
    ("distill.augment", at_least(0)),
)


def validate_config(config):
    """Raises ``ValueError`` naming the first value of ``config`` outside
    :data:`CONFIG_RULES` (a temperature <= 0, an alpha outside [0, 1], no
    epochs, an unknown ``train.precision``, ...); ``finetune`` calls it
    before it reads data or builds a model."""
    check_values(config, CONFIG_RULES)
    if config.distill.get("augment", 0) and not config.distill.teacher:
        raise ValueError(
            "distill.augment needs distill.teacher: the augmented examples "
            "are labelled by the teacher.")


def resolve_run_precision(config, strategy=None):
    """``{"precision", "reason", "policy"}``: what a run computes in
    (``train.precision``, ``"auto"`` resolved on this machine), why, and
    the Keras dtype policy its models are built under."""
    precision, reason = resolve_training_precision(
        config.train.precision, strategy, what="train.precision",
        batch_size=config.train.batch_size)
    return {"precision": precision, "reason": reason,
            "policy": policy_name(precision)}


def finetune(config, workdir, strategy=None, hooks=()):
    """Fine-tunes per ``config`` (see ``configs/finetune.py``) in ``workdir``.

    Re-running with an existing ``workdir`` resumes from the last completed
    epoch, exactly (weights, optimizer, step, dropout masks, the input
    order); ``train.epochs`` may be raised to train longer; any other change
    is refused. Returns the ``metrics.json`` record, whose ``precision``
    says what the run computed in and why.

    Args:
        config: ConfigDict from ``configs/finetune.py``.
        workdir: str. Output folder.
        strategy: ``tf.distribute.Strategy`` or None (the default strategy).
        hooks: extra ``trimzoo.training.loop.Hook`` objects for the loop.
    """
    validate_config(config)  # Before any data is read or model built.
    precision = resolve_run_precision(config, strategy)
    print(f"Precision: {precision['precision']} ({precision['reason']}).",
          flush=True)
    # The models are built under the run's policy; variables stay float32,
    # so the saved presets load in any precision.
    with dtype_policy(precision["policy"]):
        return _finetune(config, workdir, strategy, hooks, precision)


def _finetune(config, workdir, strategy, hooks, precision):
    os.makedirs(workdir, exist_ok=True)
    config = _set_model_overrides(config)
    # Data paths are recorded absolute: tools that read the run's task
    # (compress, export, prune) find the same files from any folder.
    with config.unlocked():
        config.data.update(absolute_data_paths(config.data))
    # Only a run that has trained locks its workdir to its config.
    record_config(workdir, _config_dict(config), RESUMABLE_CHANGES,
                  trained=_has_trained(workdir), equivalent=_same_path)
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

        def encode(examples):  # Evaluation: in order, plain batches.
            return encode_dataset(
                examples, tokenizer, spec,
                max_seq_length=config.max_seq_length,
                batch_size=config.eval.batch_size,
                num_segments=num_segments)

        objective, distill_info = training_objective(config, spec, model,
                                                     tokenizer)
        info.update(distill_info)
        if config.distill.get("augment", 0):
            train = augmented_training_set(
                train, objective.teacher, tokenizer, spec, config,
                num_segments)
            info["augmented_examples"] = len(train)
        # Epochs and learning rate left unset: chosen from the data and
        # the model (trimzoo.training.recipes), said and recorded.
        recipe = resolve_recipe(
            len(train), config.train.batch_size, model.backbone.hidden_dim,
            epochs=config.train.epochs,
            learning_rate=config.train.learning_rate,
            max_steps_per_epoch=config.train.max_steps_per_epoch)
        for reason in recipe["reasons"]:
            print(f"Recipe (auto): {reason}.", flush=True)
        steps, total = recipe["steps_per_epoch"], recipe["steps"]
        warmup = int(config.train.warmup_fraction * total)
        optimizer = create_optimizer(
            recipe["learning_rate"], total_steps=max(total, 1),
            warmup_steps=warmup,
            optimizer=config.train.optimizer,
            weight_decay=config.train.weight_decay,
            clipnorm=config.train.clipnorm,
            layer_decay=config.train.layer_decay,
            num_layers=model.backbone.num_layers)
        if precision["policy"] == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(objective.trainable_variables)
        record = read_json(os.path.join(workdir, "metrics.json")) or {}
        record.setdefault("evals", [])
        evaluator = EpochEvaluator(
            model, {split: encode(examples)
                    for split, examples in evals.items()},
            spec, workdir, best_metric, preprocessor, record, steps)
        trainer = Trainer(
            objective, optimizer, workdir,
            make_dataset=training_batches(
                train, tokenizer, spec, config, num_segments),
            total_steps=total, global_batch_size=config.train.batch_size,
            strategy=strategy,
            learning_rate=WarmupLinearDecay(recipe["learning_rate"],
                                            max(total, 1), warmup),
            log_every=log_every(total), checkpoint_every=steps,
            keep_checkpoints=1, eval_every=steps,
            steps_per_execution=config.train.steps_per_execution,
            jit_compile=config.train.jit_compile,
            rng_variables=dropout_rng_variables(model),
            hooks=[evaluator, ProgressPrinter(total, steps), *hooks],
            log_lines=False)
        start_step = trainer.restore()
    initial_epoch = start_step // steps
    record["evals"] = record["evals"][:initial_epoch]
    # info["model"]: the real architecture and where it came from.
    record.update(task=config.task, **info, precision=precision,
                  recipe=recipe)
    if start_step:
        print(f"Resuming {workdir} after epoch {initial_epoch} (step "
              f"{start_step}).", flush=True)

    start = time.time()
    summary = trainer.train()
    record["train_seconds"] = time.time() - start
    record["steps"] = summary["total_steps"]
    require_finite_weights(model, "final/")
    save_classifier(model, preprocessor, os.path.join(workdir, "final"),
                    overwrite=True)
    if test is not None and os.path.isdir(os.path.join(workdir, "best")):
        best = load_text_classifier(os.path.join(workdir, "best"))
        labels, predictions = predict_labels(best, encode(test), spec)
        record["test"] = compute_metrics(spec, labels, predictions)
        print("test: " + ", ".join(f"{k}={v:.4f}"
                                   for k, v in record["test"].items()))
    write_json(os.path.join(workdir, "metrics.json"), record)
    return record


def training_batches(train, tokenizer, spec, config, num_segments):
    """The loop's ``make_dataset``: the training examples shuffled with
    ``config.seed`` (anew each pass), repeated, encoded and batched
    (bucketed by length with ``data.bucket_width``), the first
    ``start_example`` examples skipped; with several input pipelines each
    reads its shard of the examples."""
    buckets = length_buckets(config.data.bucket_width, config.max_seq_length)

    def make_dataset(batch_size, start_example=0, num_input_pipelines=1,
                     input_pipeline_id=0):
        examples = train
        if num_input_pipelines > 1:
            examples = examples_to_dataset(train).shard(
                num_input_pipelines, input_pipeline_id)
        dataset = encode_dataset(
            examples, tokenizer, spec, max_seq_length=config.max_seq_length,
            batch_size=batch_size, shuffle=True, seed=config.seed,
            repeat=True, num_segments=num_segments,
            bucket_boundaries=buckets)
        return dataset.skip(start_example // batch_size)

    return make_dataset


def augmented_training_set(train, teacher, tokenizer, spec, config,
                           num_segments):
    """``train`` and ``distill.augment`` word-replaced copies of each of
    its examples (``trimzoo.data.augment``: neighbours from the teacher's
    word embeddings), every copy labelled with the teacher's prediction;
    deterministic for a seed, so a resumed run trains on the same set."""
    copies = int(config.distill.augment)
    examples = [tuple(v.decode("utf-8") if isinstance(v, bytes) else v
                      for v in example)
                for example in examples_to_dataset(train).as_numpy_iterator()]
    texts = [t for example in examples for t in example[:-1]]
    neighbours = augment.word_neighbours(
        keras.ops.convert_to_numpy(teacher.backbone.token_embedding.embeddings),
        tokenizer.get_vocabulary(), augment.words_of(texts))
    new = augment.augment_examples(examples, neighbours, copies,
                                   seed=config.seed)
    _, labels = predict_labels(teacher, encode_dataset(
        new, tokenizer, spec, max_seq_length=config.max_seq_length,
        batch_size=config.eval.batch_size, num_segments=num_segments), spec)
    changed = sum(a[:-1] != b[:-1] for a, b in zip(
        (e for e in examples for _ in range(copies)), new))
    flipped = sum(int(label) != e[-1] for label, e in zip(labels, new))
    print(f"Augmented: {len(new)} examples ({copies} per training example; "
          f"{changed} differ from their original, {len(neighbours)} words "
          f"with neighbours), labelled by the teacher ({flipped} labels "
          "differ from the original's).", flush=True)
    new = [e[:-1] + (int(label),) for e, label in zip(new, labels)]
    return examples_to_dataset(examples + new)


def training_objective(config, spec, model, tokenizer):
    """``(Objective, info)``: what ``model`` trains on — the classification
    loss, or with ``distill.teacher`` set, task distillation from that
    fine-tuned classifier (``ClassifierDistillationObjective``, loaded and
    checked by ``trimzoo.checkpoints.teachers``); call under the strategy
    scope, which the teacher's weights join."""
    distill = config.distill
    if not distill.teacher:
        return (ClassificationObjective(model, spec.num_classes),
                {"distilled": False})
    teacher = load_classifier_teacher(
        distill.teacher, spec.num_classes, model, tokenizer,
        hidden_weight=distill.hidden_weight)
    objective = ClassifierDistillationObjective(
        model, teacher, spec.num_classes, alpha=distill.alpha,
        temperature=distill.temperature, hidden_weight=distill.hidden_weight)
    print(f"Distilling from {distill.teacher} ({teacher.backbone.num_layers} "
          f"layers): alpha {distill.alpha}, temperature "
          f"{distill.temperature}, hidden_weight {distill.hidden_weight}.",
          flush=True)
    return objective, {"distilled": True, "teacher": distill.teacher}


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
    return task_kwargs(config.task, config.data)


def _limit(examples, count, seed):
    """A seeded random subset of ``count`` examples (0 = all)."""
    if not count or count >= len(examples):
        return examples
    return examples.shuffle(len(examples), seed=seed,
                            reshuffle_each_iteration=False).take(count)


def _has_trained(workdir):
    """A checkpoint or a saved model is in ``workdir``."""
    return bool(find_checkpoints(os.path.join(workdir, "checkpoints"))) or (
        any(os.path.exists(os.path.join(workdir, name))
            for name in ("best", "final")))


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


def _same_path(field, old, new):
    """A data path an older run recorded relative, resumed from the folder
    it was started in, is the path now recorded absolute."""
    return (field.startswith("data.")
            and field.split(".", 1)[1] in PATH_FIELDS
            and isinstance(old, str) and isinstance(new, str) and bool(old)
            and os.path.abspath(old) == new)


def _config_dict(config):
    return config.to_dict() if hasattr(config, "to_dict") else dict(config)
