"""Healing a student cut from its teacher in pretraining: init_checkpoint +
distill.teacher, hidden states alone for a teacher without a masked-LM head."""

import os

import keras
import numpy as np
import pytest

from configs.pretrain import get_config
from trimzoo.checkpoints import from_pretrained, save_pretrained
from trimzoo.utils.embedded import minilm_path
from trimzoo.models.tokenizers import load_tokenizer
from trimzoo.models import TrimzooMaskedLM, bert_tiny, extract, to_trimbert
from trimzoo.training import pretrain
from trimzoo.training.losses import layer_map
from trimzoo.training.objectives import DistillationObjective, hidden_states_model

TEXTS = [f"the film number {i} was a good and quiet story about people ."
         for i in range(64)]


def _batch(vocab=30522, n=4, length=12, seed=0):
    rng = np.random.default_rng(seed)
    x = {"token_ids": rng.integers(1000, vocab, (n, length)).astype("int32"),
         "segment_ids": np.zeros((n, length), "int32"),
         "padding_mask": np.ones((n, length), "int32"),
         "mask_positions": np.tile(np.array([[1, 3]], "int32"), (n, 1))}
    labels = rng.integers(1000, vocab, (n, 2)).astype("int32")
    return x, labels, np.ones((n, 2), "float32")


def test_hidden_term_equals_numpy():
    """loss = alpha · MLM + w · mean over real tokens of the squared error of
    student layer i against teacher layer floor(i·L_t/L_s); tol 1e-5."""
    teacher = bert_tiny(vocabulary_size=30522, num_layers=4, hidden_dim=16,
                        num_heads=2, intermediate_dim=32, dropout=0.0)
    student = TrimzooMaskedLM(extract(teacher, layers=[0, 3]))
    task = DistillationObjective(student, teacher, alpha=0.3, hidden_weight=2.0)
    batch = _batch()
    loss, stats = task.step_stats(batch)
    count = stats["count"]
    hidden = float(stats["hidden_loss_sum"] / count)
    mlm = float(stats["mlm_loss_sum"] / count)
    inputs = {k: batch[0][k] for k in ("token_ids", "segment_ids",
                                       "padding_mask")}
    # The layers' outputs: the states after layer 0's input.
    s = [np.asarray(a)
         for a in hidden_states_model(student.backbone)(inputs)[1:]]
    t = [np.asarray(a) for a in hidden_states_model(teacher)(inputs)[1:]]
    expected = sum(np.mean((s[i] - t[j]) ** 2)
                   for i, j in enumerate(layer_map(2, 4)))
    assert layer_map(2, 4) == [0, 2]
    assert hidden == pytest.approx(expected, rel=1e-5)
    assert float(loss) == pytest.approx(0.3 * mlm + 2.0 * hidden, rel=1e-5)
    assert "kd_loss_sum" not in stats


def test_task_refuses_what_it_cannot_match():
    teacher = bert_tiny(vocabulary_size=100, num_layers=2, hidden_dim=16,
                        num_heads=2, intermediate_dim=32)
    student = TrimzooMaskedLM(extract(teacher, layers=[0]))
    with pytest.raises(ValueError, match="no masked-LM head"):
        DistillationObjective(student, teacher)
    narrow = TrimzooMaskedLM(extract(teacher, layers=[0],
                                     hidden_dims=list(range(8))))
    with pytest.raises(ValueError, match="equal widths"):
        DistillationObjective(narrow, teacher, hidden_weight=1.0)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("heal")
    tokenizer = load_tokenizer(minilm_path())
    teacher = bert_tiny(vocabulary_size=30522, num_layers=4, hidden_dim=16,
                        num_heads=2, intermediate_dim=32,
                        max_sequence_length=64)
    save_pretrained(teacher, tokenizer, str(root / "teacher"))
    # A TrimBERT conversion of the teacher's layers 0 and 1 (one FFN, one
    # layernorm per block, sigmoid attention) with other embeddings: far
    # from the teacher's function until healed.
    student = to_trimbert(teacher, ffn_every=2, layers=[0, 1])
    keras.utils.set_random_seed(1)
    student.token_embedding.embeddings.assign(
        np.random.default_rng(1).normal(
            0, 0.5, student.token_embedding.embeddings.shape))
    save_pretrained(student, tokenizer, str(root / "student"))
    return str(root / "teacher"), str(root / "student"), teacher


def _config(student, teacher, steps=8):
    config = get_config("runlocal=True")
    for name in config.model_overrides:
        config.model_overrides[name] = None
    config.init_checkpoint = student
    config.distill.teacher = teacher
    config.distill.hidden_weight = 1.0
    config.distill.alpha = 0.0
    config.data.max_seq_length = 32
    config.train.batch_size = 8
    config.train.steps = steps
    config.train.warmup_steps = 2
    config.train.log_every = 1
    config.train.learning_rate = 3e-3
    config.train.dropout = 0.0
    return config


@pytest.mark.slow
def test_pretraining_heals_a_student_from_a_headless_teacher(folders,
                                                             tmp_path):
    teacher_dir, student_dir, teacher = folders
    config = _config(student_dir, teacher_dir)
    trainer = pretrain.Pretrainer(config, str(tmp_path / "run"), texts=TEXTS)
    # The student starts from the folder's weights, not from a random
    # initialisation.
    source, _ = from_pretrained(student_dir)
    for a, b in zip(source.get_weights(),
                    trainer.model.backbone.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert trainer.objective.loss_names == ("loss", "mlm_loss", "hidden_loss")
    summary = trainer.train()
    rows = [r for r in pretrain.read_metrics(str(tmp_path / "run"))
            if "hidden_loss" in r]
    assert len(rows) >= 8
    assert rows[-1]["hidden_loss"] < 0.95 * rows[0]["hidden_loss"]
    assert os.path.isdir(summary["final"])
    # The healed final/ is a masked LM that loads and continues a run.
    again = _config(summary["final"], teacher_dir, steps=2)
    assert pretrain.Pretrainer(again, str(tmp_path / "again"),
                               texts=TEXTS).model.backbone.num_layers == 2


def test_pretraining_init_checkpoint_errors(folders, tmp_path):
    teacher_dir, student_dir, _ = folders
    config = _config(student_dir, teacher_dir)
    config.model_overrides.num_layers = 3
    with pytest.raises(ValueError, match="fixes the architecture"):
        pretrain.Pretrainer(config, str(tmp_path / "a"), texts=TEXTS)
    config = _config(student_dir, teacher_dir)
    config.distill.hidden_weight = 0.0
    with pytest.raises(ValueError, match="no masked-LM head"):
        pretrain.Pretrainer(config, str(tmp_path / "b"), texts=TEXTS)
    config = _config(str(tmp_path / "missing"), teacher_dir)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        pretrain.Pretrainer(config, str(tmp_path / "c"), texts=TEXTS)
