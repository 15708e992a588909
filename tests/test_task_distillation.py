"""Task distillation in fine-tuning: the objective the loop trains against
NumPy, teacher checks, and the end-to-end run (teacher -> dropped ->
distilled)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from trimzoo.models import TrimzooClassifier, bert_tiny, extract
from trimzoo.models.tokenizers import BertWordPieceTokenizer
from trimzoo.training.finetune import finetune
from trimzoo.checkpoints.folders import load_classifier_folder, save_classifier
from trimzoo.checkpoints.teachers import load_classifier_teacher
from trimzoo.training.loop import Trainer, read_metrics
from trimzoo.training.objectives import ClassifierDistillationObjective

from helpers import small_config

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [
    f"w{i}" for i in range(27)]


def classifier(num_layers=3, hidden_dim=16, num_classes=2, vocab=32, seed=0):
    keras.utils.set_random_seed(seed)
    backbone = bert_tiny(vocabulary_size=vocab, num_layers=num_layers,
                         hidden_dim=hidden_dim, num_heads=2,
                         intermediate_dim=32, max_sequence_length=16,
                         dropout=0.0)
    return TrimzooClassifier(backbone, num_classes=num_classes, dropout=0.0)


def batch(n=6, length=8, seed=1):
    rng = np.random.default_rng(seed)
    mask = np.ones((n, length), "int32")
    mask[:, 5:] = 0
    x = {"token_ids": rng.integers(5, 32, (n, length)).astype("int32") * mask,
         "segment_ids": np.zeros((n, length), "int32"),
         "padding_mask": mask}
    return x, rng.integers(0, 2, n).astype("int32")


def numpy_objective(student, teacher, labels, alpha, temperature):
    """alpha · CE + (1 - alpha) · T² · KL(teacher/T ‖ student/T), batch mean."""
    def log_softmax(z):
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))
    ce = -log_softmax(student)[np.arange(len(labels)), labels].mean()
    p_t = np.exp(log_softmax(teacher / temperature))
    kl = (p_t * (log_softmax(teacher / temperature)
                 - log_softmax(student / temperature))).sum(-1).mean()
    return alpha * ce + (1 - alpha) * temperature ** 2 * kl


@pytest.mark.parametrize("alpha,temperature", [(0.5, 2.0), (0.2, 3.0)])
def test_trained_objective_equals_numpy(alpha, temperature):
    """The loss fine-tuning trains (the loop runs this objective's
    ``train_step``) is the documented objective: T² (not T) and alpha
    weight the terms; tolerance 1e-5."""
    teacher, student = classifier(seed=0), classifier(num_layers=2, seed=1)
    # A confident teacher (head scaled up): its distribution differs from
    # the student's, so the KD term is large and T vs T² is visible.
    kernel = teacher.output_dense.kernel
    kernel.assign(np.random.default_rng(2).normal(
        0.0, 5.0, kernel.shape).astype("float32"))
    x, y = batch()
    objective = ClassifierDistillationObjective(
        student, teacher, 2, alpha=alpha, temperature=temperature)
    loss, stats = objective.step_stats((x, y))
    metrics = objective.metrics(stats)
    expected = numpy_objective(np.asarray(student(x)), np.asarray(teacher(x)),
                               y, alpha, temperature)
    kd = (expected - numpy_objective(np.asarray(student(x)),
                                     np.asarray(teacher(x)), y, 1.0,
                                     temperature) * alpha)
    assert kd > 0.05  # (1-alpha)·T²·KL, far above the tolerance
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert metrics["loss"] == pytest.approx(expected, rel=1e-5)
    assert set(metrics) == {"loss", "ce_loss", "kd_loss", "accuracy"}
    # Only the student is trained.
    assert len(objective.trainable_variables) == len(
        student.trainable_weights)


def test_objective_is_the_same_under_two_replicas(two_cpu_strategy):
    """Each replica's share of the batch, divided by the global count,
    adds up to the one-replica objective (tolerance 1e-5)."""
    teacher, student = classifier(seed=0), classifier(num_layers=2, seed=1)
    x, y = batch(n=8)
    expected = numpy_objective(np.asarray(student(x)), np.asarray(teacher(x)),
                               y, 0.5, 2.0)
    with two_cpu_strategy.scope():
        t, s = classifier(seed=0), classifier(num_layers=2, seed=1)
        objective = ClassifierDistillationObjective(s, t, 2, alpha=0.5,
                                                    temperature=2.0)
    dataset = two_cpu_strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices((x, y)).batch(8))
    losses = two_cpu_strategy.run(
        lambda b: objective.step_stats(b, denominator=8.0)[0],
        args=(next(iter(dataset)),))
    total = two_cpu_strategy.reduce(tf.distribute.ReduceOp.SUM, losses,
                                    axis=None)
    assert float(total) == pytest.approx(expected, abs=1e-5)


def test_hidden_weight_adds_the_hidden_state_term():
    teacher, student = classifier(seed=0), classifier(num_layers=2, seed=1)
    x, y = batch()
    metrics = {}
    for weight in (0.0, 2.0):
        objective = ClassifierDistillationObjective(
            student, teacher, 2, alpha=0.5, temperature=2.0,
            hidden_weight=weight)
        metrics[weight] = objective.metrics(objective.evaluate_step((x, y)))
    hidden = metrics[2.0]["hidden_loss"]
    assert hidden > 0
    assert metrics[2.0]["loss"] == pytest.approx(
        metrics[0.0]["loss"] + 2.0 * hidden, rel=1e-5)


@pytest.mark.slow
def test_training_moves_the_student_towards_the_teacher():
    teacher, student = classifier(seed=0), classifier(num_layers=2, seed=1)
    x, y = batch(n=16)
    objective = ClassifierDistillationObjective(student, teacher, 2,
                                                alpha=0.0, temperature=1.0)
    optimizer = keras.optimizers.Adam(1e-2)
    step = objective.compiled_train_step(optimizer)

    def kd_loss():
        return objective.metrics(objective.evaluate_step((x, y)))["kd_loss"]

    before = kd_loss()
    teacher_weights = [w.copy() for w in teacher.get_weights()]
    for _ in range(30):
        step((x, y))
    assert kd_loss() < 0.5 * before
    for a, b in zip(teacher_weights, teacher.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("teachers")
    tokenizer = BertWordPieceTokenizer(VOCAB)
    paths = {}
    for name, model, tok in [
            ("two", classifier(), tokenizer),
            ("three", classifier(num_classes=3), tokenizer),
            ("wide", classifier(hidden_dim=24), tokenizer),
            ("other_vocab", classifier(vocab=40), BertWordPieceTokenizer(
                VOCAB + [f"v{i}" for i in range(8)]))]:
        paths[name] = str(root / name)
        save_classifier(model, tok, paths[name])
    return paths, tokenizer


def test_teacher_checks(folders, tmp_path):
    paths, tokenizer = folders
    student = extract(classifier(), layers=[0, 1])
    teacher = load_classifier_teacher(paths["two"], 2, student, tokenizer)
    assert teacher.backbone.num_layers == 3
    with pytest.raises(ValueError, match="3 classes but the task has 2"):
        load_classifier_teacher(paths["three"], 2, student, tokenizer)
    with pytest.raises(ValueError, match="vocabulary"):
        load_classifier_teacher(paths["other_vocab"], 2, student, tokenizer)
    with pytest.raises(ValueError, match="equal widths"):
        load_classifier_teacher(paths["wide"], 2, student, tokenizer,
                                hidden_weight=1.0)
    # Logits alone work across widths.
    load_classifier_teacher(paths["wide"], 2, student, tokenizer)
    with pytest.raises(ValueError, match="regression"):
        load_classifier_teacher(paths["two"], 1, student, tokenizer)
    with pytest.raises(FileNotFoundError, match="no task.json"):
        load_classifier_folder(str(tmp_path))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "task.json").write_text(json.dumps(
        {"module": "os", "class_name": "system", "registered_name": "os>x"}))
    with pytest.raises(ValueError, match="never imports a module"):
        load_classifier_folder(str(bad))
    # An allowed task class that is not a classifier (one allow-list).
    (bad / "task.json").write_text(json.dumps(
        {"module": "trimzoo.models.masked_lm", "class_name": "TrimzooMaskedLM",
         "registered_name": "trimzoo>TrimzooMaskedLM"}))
    with pytest.raises(ValueError, match="only TrimzooClassifier folders"):
        load_classifier_folder(str(bad))


def test_checkpoints_hold_only_the_student(tmp_path):
    """The loop's checkpoint of a distillation run holds the student's
    weights (and the optimizer's), never the teacher's."""
    teacher, student = classifier(seed=0), classifier(num_layers=2, seed=1)
    objective = ClassifierDistillationObjective(student, teacher, 2)
    optimizer = keras.optimizers.SGD(0.1)
    x, y = batch(n=4)

    def make_dataset(batch_size, start, *_):
        return tf.data.Dataset.from_tensors((x, y)).repeat()

    Trainer(objective, optimizer, str(tmp_path), make_dataset,
            total_steps=1, global_batch_size=4).train()
    saved = tf.train.list_variables(
        tf.train.latest_checkpoint(str(tmp_path / "checkpoints")))
    # SGD keeps no slots: every tensor saved (not a scalar counter) is a
    # weight, filed under the first object that reaches it.
    sizes = [int(np.prod(shape)) for name, shape in saved
             if shape and name.endswith("VARIABLE_VALUE")]
    assert sum(sizes) == student.count_params() < teacher.count_params()


@pytest.mark.slow
def test_finetune_distils_a_dropped_student_from_its_teacher(
        tmp_path, finetuned_run):
    """Teacher run -> its best/ with the top layer dropped (head kept) ->
    distilled run; the record says so and best/ is the 2-layer student."""
    teacher_dir = finetuned_run["workdir"]
    config = small_config(model="bert_base")
    config.model_overrides = {}
    config.init_checkpoint = os.path.join(teacher_dir, "best")
    config.drop_layers = "top:1"
    config.distill.teacher = os.path.join(teacher_dir, "best")
    record = finetune(config, str(tmp_path / "student"))
    assert record["distilled"] is True
    assert record["teacher"] == config.distill.teacher
    assert record["num_layers"] == 2 and record["dropped_layers"] == [2]
    assert "test" in record
    best = load_classifier_folder(str(tmp_path / "student" / "best"))
    assert best.backbone.num_layers == 2
    # The head came from the teacher's folder, not a fresh initialiser:
    # a run that only evaluates (0 epochs would not save) starts from it.
    teacher = load_classifier_folder(config.distill.teacher)
    assert best.output_dense.kernel.shape == teacher.output_dense.kernel.shape

    # The loop trained the distillation objective: its terms were logged.
    logged = read_metrics(str(tmp_path / "student"))
    assert all("kd_loss" in entry and "ce_loss" in entry
               for entry in logged)

    config.distill.teacher = ""
    plain = finetune(config, str(tmp_path / "plain"))
    assert plain["distilled"] is False
    assert plain["evals"][-1]["train_loss"] != record["evals"][-1][
        "train_loss"]
