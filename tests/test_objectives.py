"""Training objectives (``trimzoo.training.losses``) against NumPy, and the
Tasks that train them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from trimzoo.models import TrimzooBackbone, TrimzooClassifier
from trimzoo.training import losses, objectives
from trimzoo.training.optimizers import create_optimizer

import numpy_losses  # tests/ helper

KW = dict(vocabulary_size=30, num_heads=2, hidden_dim=16, intermediate_dim=16,
          max_sequence_length=12, dropout=0.0)


def inputs(batch=4, length=8, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, length), "int32")
    mask[0, -3:] = 0
    return {"token_ids": rng.integers(1, 30, (batch, length)).astype("int32")
            * mask,
            "segment_ids": np.zeros((batch, length), "int32"),
            "padding_mask": mask}


def test_masked_lm_loss_matches_numpy_with_global_denominator():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 7)) * 2
    labels = rng.integers(0, 7, (2, 3))
    weights = np.array([[1, 1, 0], [1, 0, 0]], "float32")
    ce = numpy_losses.cross_entropy(logits, labels)
    want = (ce * weights).sum() / weights.sum()
    got = losses.masked_lm_loss(logits, labels, weights)["loss"]
    assert float(got) == pytest.approx(want, rel=1e-6)
    # Each replica divides by the global count.
    got = losses.masked_lm_loss(logits, labels, weights, denominator=10.0)
    assert float(got["loss"]) == pytest.approx((ce * weights).sum() / 10,
                                               rel=1e-6)


def test_classification_loss_matches_numpy():
    rng = np.random.default_rng(2)
    logits, labels = rng.normal(size=(5, 3)), rng.integers(0, 3, 5)
    got = losses.classification_loss(logits, labels, num_classes=3)["loss"]
    want = numpy_losses.cross_entropy(logits, labels).mean()
    assert float(got) == pytest.approx(want, rel=1e-6)
    targets = rng.normal(size=5)
    got = losses.classification_loss(logits[:, :1], targets, 1)["loss"]
    assert float(got) == pytest.approx(((logits[:, 0] - targets) ** 2).mean(),
                                       rel=1e-6)


@pytest.mark.parametrize("alpha,temp", [(0.5, 2.0), (0.0, 1.0), (0.9, 4.0)])
def test_classifier_distillation_loss_matches_numpy(alpha, temp):
    rng = np.random.default_rng(3)
    s, t = rng.normal(size=(2, 6, 4)) * 3
    labels = rng.integers(0, 4, 6)
    got = losses.classifier_distillation_loss(s, t, labels, alpha=alpha,
                                              temperature=temp)
    loss, ce, kd = numpy_losses.classifier_distillation(s, t, labels, alpha,
                                                         temp)
    assert float(got["loss"]) == pytest.approx(loss, rel=1e-5)
    assert float(got["ce_loss"]) == pytest.approx(ce, rel=1e-5)
    assert float(got["kd_loss"]) == pytest.approx(kd, rel=1e-5, abs=1e-7)
    assert losses.CLASSIFIER_ALPHA == 0.5 and losses.TEMPERATURE == 2.0
    with pytest.raises(ValueError, match="alpha"):
        losses.classifier_distillation_loss(s, t, labels, alpha=1.5)


def test_layer_map_and_hidden_state_loss_match_numpy():
    assert losses.layer_map(4, 12) == [0, 3, 6, 9]
    assert losses.layer_map(3, 4) == [0, 1, 2]
    assert losses.layer_map(2, 2) == [0, 1]
    with pytest.raises(ValueError, match="layer"):
        losses.layer_map(0, 4)
    rng = np.random.default_rng(4)
    student = list(rng.normal(size=(2, 3, 5, 8)))
    teacher = list(rng.normal(size=(5, 3, 5, 8)))
    mask = np.ones((3, 5), "int32")
    mask[1, 3:] = 0
    got = losses.hidden_state_loss(student, teacher, mask)["loss"]
    want = numpy_losses.hidden_state(student, teacher, mask, [0, 2])
    assert float(got) == pytest.approx(want, rel=1e-5)
    got = losses.hidden_state_loss(student, teacher, mask, mapping=[4, 1])
    want = numpy_losses.hidden_state(student, teacher, mask, [4, 1])
    assert float(got["loss"]) == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match="mapping"):
        losses.hidden_state_loss(student, teacher, mask, mapping=[0])


def test_attention_loss_matches_numpy():
    rng = np.random.default_rng(5)
    student = list(rng.uniform(size=(2, 3, 2, 5, 5)))
    teacher = list(rng.uniform(size=(2, 3, 2, 5, 5)))
    mask = np.ones((3, 5), "int32")
    mask[1, 3:] = 0
    got = losses.attention_loss(student, teacher, mask)
    want = numpy_losses.attention(student, teacher, mask)
    assert float(got["loss"]) == pytest.approx(want, rel=1e-5)
    assert float(got["attention_loss"]) == float(got["loss"])
    # Padded keys and queries do not count.
    noisy = [t.copy() for t in teacher]
    noisy[0][1, :, 3:, :] += 9.0
    noisy[0][1, :, :, 3:] += 9.0
    assert float(losses.attention_loss(student, noisy, mask)["loss"]) == (
        pytest.approx(want, rel=1e-5))
    with pytest.raises(ValueError, match="attention maps"):
        losses.attention_loss(student, teacher[:1], mask)


def test_attention_term_matches_each_head_with_its_source_head():
    """A student cut from its teacher (layer 0, heads 1 and 3 of 4) has the
    attention weights of the heads it was cut from: with the right head
    map the attention term is 0; with another map it is not. The step's
    loss is hidden + w · attention (NumPy reference), and training on it
    lowers the attention term."""
    from trimzoo.models import extract

    keras.utils.set_random_seed(3)
    teacher = TrimzooBackbone(num_layers=2, **{**KW, "num_heads": 4})
    # Peaked attention (initial weights give near-uniform maps).
    qkv = teacher.transformer_layers[0].attention.qkv.kernel
    qkv.assign(qkv * 40.0)
    student = extract(teacher, layers=[0], heads=[[1, 3]])
    x = inputs()
    right = objectives.HiddenStateDistillationObjective(
        student, teacher, mapping=[0], attention_weight=2.0, heads=[[1, 3]])
    wrong = objectives.HiddenStateDistillationObjective(
        student, teacher, mapping=[0], attention_weight=2.0, heads=[[0, 2]])
    metrics = right.metrics(right.evaluate_step((x,)))
    assert metrics["attention_loss"] == pytest.approx(0.0, abs=1e-10)
    metrics = wrong.metrics(wrong.evaluate_step((x,)))
    assert metrics["attention_loss"] > 0.05
    # The NumPy reference, from each layer's own attention weights.
    states = [objectives.hidden_states_model(m)(x) for m in (student,
                                                           teacher)]
    maps = [m.transformer_layers[0].attention.attention_weights(
        s[0], x["padding_mask"]) for m, s in zip((student, teacher), states)]
    hidden = numpy_losses.hidden_state(
        [states[0][1]], [states[1][1]], x["padding_mask"], [0])
    attention = numpy_losses.attention(
        [maps[0]], [np.asarray(maps[1])[:, [0, 2]]], x["padding_mask"])
    assert metrics["loss"] == pytest.approx(hidden + 2.0 * attention,
                                            rel=1e-5)
    with pytest.raises(ValueError, match="heads"):
        objectives.HiddenStateDistillationObjective(
            student, teacher, mapping=[0], attention_weight=1.0,
            heads=[[1, 7]])
    optimizer = create_optimizer(1e-2, total_steps=100)
    step = wrong.compiled_train_step(optimizer, jit_compile=False)
    for _ in range(10):
        step((x,))
    after = wrong.metrics(wrong.evaluate_step((x,)))["attention_loss"]
    assert after < 0.75 * metrics["attention_loss"]


def _classifier(num_layers, seed):
    keras.utils.set_random_seed(seed)
    return TrimzooClassifier(TrimzooBackbone(num_layers=num_layers, **KW),
                             num_classes=3, dropout=0.0)


def test_classifier_distillation_task_objective_and_training():
    """The task trains classifier_distillation_loss + w · hidden_state_loss
    (layer map 0->0, 1->2 from a 4-layer teacher): its step loss equals the
    NumPy objective, and training on it moves the student toward the
    teacher, which stays fixed."""
    student, teacher = _classifier(2, 0), _classifier(4, 1)
    # A confident teacher, so that there is a distribution to learn.
    teacher.output_dense.kernel.assign(teacher.output_dense.kernel * 100.0)
    task = objectives.ClassifierDistillationObjective(student, teacher, 3, alpha=0.3,
                                            temperature=2.0,
                                            hidden_weight=0.5)
    x = inputs()
    labels = np.array([0, 1, 2, 1])
    batch = (x, labels)
    s, t = student(x).numpy(), teacher(x).numpy()
    states = [objectives.hidden_states_model(m.backbone)(x)[1:]
              for m in (student, teacher)]
    want = numpy_losses.classifier_distillation(s, t, labels, 0.3, 2.0)[0]
    want += 0.5 * numpy_losses.hidden_state(
        [a.numpy() for a in states[0]], [a.numpy() for a in states[1]],
        x["padding_mask"], [0, 2])
    loss, stats = task.step_stats(batch)
    assert float(loss) == pytest.approx(want, rel=1e-5)
    assert set(stats) == set(task.stat_names())
    # Trained on the teacher alone (alpha = 0), the student approaches it.
    task = objectives.ClassifierDistillationObjective(student, teacher, 3, alpha=0.0,
                                            hidden_weight=0.5)
    before = task.metrics(task.evaluate_step(batch))
    teacher_weights = [w.copy() for w in teacher.get_weights()]
    optimizer = create_optimizer(1e-2, total_steps=100)
    step = task.compiled_train_step(optimizer, jit_compile=False)
    for _ in range(15):
        step(batch)
    after = task.metrics(task.evaluate_step(batch))
    assert after["kd_loss"] < 0.5 * before["kd_loss"], (before, after)
    assert after["hidden_loss"] < before["hidden_loss"]
    for a, b in zip(teacher_weights, teacher.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_hidden_state_distillation_heals_a_dropped_backbone():
    """A 2-layer student learns the outputs of teacher layers 0 and 2 from
    the hidden-state loss alone (no masked-LM head involved)."""
    keras.utils.set_random_seed(0)
    teacher = TrimzooBackbone(num_layers=4, **KW)
    student = TrimzooBackbone(num_layers=2, **KW)
    task = objectives.HiddenStateDistillationObjective(student, teacher)
    assert task.mapping == [0, 2]
    batch = (inputs(),)
    before = float(task.step_stats(batch)[0])
    optimizer = create_optimizer(1e-2, total_steps=100)
    step = task.compiled_train_step(optimizer, jit_compile=True)
    for _ in range(20):
        stats = step(batch)
    assert set(stats) == set(task.stat_names()) | {"grad_norm"}
    after = float(task.step_stats(batch)[0])
    assert after < 0.5 * before, (before, after)


def test_compiled_and_plain_train_steps_agree():
    """jit_compile changes how the step runs, not what it computes."""
    results = []
    for jit in (False, True):
        model = _classifier(1, 5)
        task = objectives.ClassificationObjective(model, num_classes=3)
        optimizer = create_optimizer(1e-3, total_steps=10)
        step = task.compiled_train_step(optimizer, jit_compile=jit)
        batch = (inputs(), np.array([0, 1, 2, 1]))
        stats = [step(batch) for _ in range(3)]
        results.append(([float(s["loss_sum"]) for s in stats],
                        model.get_weights()))
    (loss_a, w_a), (loss_b, w_b) = results
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-5)
    for a, b in zip(w_a, w_b):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_metrics_are_sums_over_counts():
    task = objectives.ClassificationObjective(_classifier(1, 0), num_classes=3)
    x, labels = inputs(), np.array([0, 1, 2, 1])
    stats = task.evaluate_step((x, labels))
    logits = task.model(x).numpy()
    values = task.metrics(stats)
    assert values["accuracy"] == pytest.approx(
        float(np.mean(logits.argmax(-1) == labels)))
    assert values["loss"] == pytest.approx(
        numpy_losses.cross_entropy(logits, labels).mean(), rel=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        objectives.DistillationObjective(task.model, task.model, temperature=0.0)
    assert tf.is_tensor(stats["count"])
