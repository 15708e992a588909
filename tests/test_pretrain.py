"""Pretraining: packing, masking, data tools, the masked-LM model, the
distributed training loop (1 vs 2 replicas, multi-worker), checkpoints and
resume, NaN handling, Bort distillation and the configs."""

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from trimzoo.data import pretraining as data_lib
from trimzoo.models.tokenizers import load_tokenizer, special_token_ids
from trimzoo.models import list_models
from trimzoo.models.backbone import TrimzooBackbone
from trimzoo.models import precision as precision_lib
from trimzoo.models.masked_lm import TrimzooMaskedLM
from trimzoo.checkpoints import teachers
from trimzoo.training import losses as losses_lib, pretrain
from trimzoo.utils import hardware

import numpy_losses  # tests/ helper

from helpers import (LETTERS, PYTHON, ROOT, TINY_OVERRIDES,  # noqa: F401
                     WORDS, as_flags, final_weights, get_config, losses,
                     synthetic_lines, tiny_config)


# ---------------------------------------------------------------------------
# Packing and masking.
# ---------------------------------------------------------------------------


def test_packing_python_and_tf_data_agree(tokenizer):
    lines = synthetic_lines(60, seed=3, doc_every=7)
    lines[5] = " ".join(["story"] * 45)  # longer than two sequences
    lines.insert(20, "")  # consecutive blank lines
    special = special_token_ids(tokenizer)
    documents = [data_lib.tokenize_lines(tokenizer, d)
                 for d in data_lib.read_documents(lines)]
    python = [data_lib.with_special_tokens(s, special)
              for s in data_lib.pack_documents(documents, 22)]
    graph = [s.numpy().tolist() for s in data_lib.packed_text_dataset(
        tf.data.Dataset.from_tensor_slices(lines), tokenizer, 24, special)]
    assert python == graph
    assert all(len(s) <= 24 for s in python)
    # Nothing lost, nothing reordered, no sequence across documents.
    flat_docs = [[t for line in doc for t in line] for doc in documents]
    inner = [s[1:-1] for s in python]
    i = 0
    for doc in flat_docs:
        got = []
        while len(got) < len(doc):
            got += inner[i]
            i += 1
        assert got == doc
    assert i == len(inner)


def test_pack_documents_is_greedy():
    docs = [[[1] * 3, [2] * 3, [3] * 5, [4] * 12], [[5] * 2]]
    assert data_lib.pack_documents(docs, 6) == [
        [1] * 3 + [2] * 3, [3] * 5, [4] * 6, [4] * 6, [5] * 2]
    with pytest.raises(ValueError, match="budget"):
        data_lib.pack_documents(docs, 0)


def test_masking_rules_and_rates():
    special = {"cls": 2, "sep": 3, "pad": 0, "mask": 4, "unk": 1}
    rng = np.random.default_rng(0)
    sequences = [[2] + rng.integers(5, 200, rng.integers(10, 60)).tolist()
                 + [3] for _ in range(400)]
    sequences[0][5] = 1  # an [UNK] in the text is never selected
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(sequences), output_signature=tf.TensorSpec([None],
                                                                tf.int32))
    features = list(data_lib.masked_lm_features(
        dataset, special, 200, 64, seed=7))
    counts = {"mask": 0, "random": 0, "same": 0}
    for seq, (x, y, w) in zip(sequences, features):
        n = len(seq)
        selectable = [i for i, t in enumerate(seq) if t not in (0, 1, 2, 3, 4)]
        k = int(w.numpy().sum())
        assert k == math.ceil(0.15 * len(selectable))
        positions = x["mask_positions"].numpy()[:k]
        assert set(positions) <= set(selectable)
        np.testing.assert_array_equal(y.numpy()[:k],
                                      np.array(seq)[positions])
        ids = x["token_ids"].numpy()
        assert (ids[n:] == 0).all() and x["padding_mask"].numpy().sum() == n
        unmasked = np.setdiff1d(np.arange(n), positions)
        np.testing.assert_array_equal(ids[unmasked], np.array(seq)[unmasked])
        for p in positions:
            if ids[p] == 4:
                counts["mask"] += 1
            elif ids[p] == seq[p]:
                counts["same"] += 1
            else:
                counts["random"] += 1
    total = sum(counts.values())
    assert abs(counts["mask"] / total - 0.8) < 0.04
    assert abs(counts["random"] / total - 0.1) < 0.03
    # "same" also holds the random draws that hit the original token.
    assert abs(counts["same"] / total - 0.1) < 0.03


def test_masks_keyed_by_seed_and_position():
    special = {"cls": 2, "sep": 3, "pad": 0, "mask": 4, "unk": 1}
    seq = tf.constant([2] + list(range(10, 50)) + [3], tf.int32)
    dataset = tf.data.Dataset.from_tensors(seq).repeat(6)

    def positions(seed, start=0):
        feats = data_lib.masked_lm_features(dataset, special, 100, 48,
                                            seed=seed, start_index=start)
        return [tuple(x["mask_positions"].numpy()) for x, _, _ in feats]

    a = positions(1)
    assert a == positions(1)              # reproducible
    assert len(set(a)) == len(a)          # a new mask for every position
    assert positions(2) != a              # depends on the seed
    assert positions(1, start=2) == a[2:]  # resuming keeps the masks


def test_pipeline_resume_skips_exactly(vocab_dir, tokenizer, text_file,
                                      tmp_path):
    special = special_token_ids(tokenizer)
    records = tmp_path / "records"
    data_lib.create_pretraining_records(
        str(records), vocab_dir,
        max_seq_length=24, files=[text_file], records_per_shard=50,
        progress=False)
    for source in ({"files": [text_file]},
                   {"files": data_lib.list_files(str(records))}):
        def batches(start, n):
            ds = data_lib.make_pretraining_dataset(
                4, tokenizer, special, 24, seed=5, start_batch=start,
                shuffle_buffer=32, **source)
            return [b[0]["token_ids"].numpy() for b in ds.take(n)]

        full = batches(0, 6)
        np.testing.assert_array_equal(np.stack(batches(3, 3)),
                                      np.stack(full[3:]))


# ---------------------------------------------------------------------------
# Data tools.
# ---------------------------------------------------------------------------


def test_create_records_deterministic_and_parallel(vocab_dir, tokenizer,
                                                   tmp_path):
    files = []
    for i in range(3):
        path = tmp_path / f"in{i}.txt"
        path.write_text("\n".join(synthetic_lines(80, seed=10 + i)))
        files.append(str(path))
    one = data_lib.create_pretraining_records(
        str(tmp_path / "one"), vocab_dir, 32, files=files, seed=3,
        records_per_shard=10, progress=False)
    two = data_lib.create_pretraining_records(
        str(tmp_path / "two"), vocab_dir, 32, files=files, seed=3,
        workers=2, records_per_shard=10, progress=False)
    assert one["files"] == two["files"] and len(one["files"]) > 3
    for name in one["files"]:
        assert ((tmp_path / "one" / name).read_bytes()
                == (tmp_path / "two" / name).read_bytes())
    # The records hold exactly the packed sequences of each file.
    special = special_token_ids(tokenizer)
    read = sorted(tuple(data_lib.parse_sequence(r).numpy()) for r in
                  tf.data.TFRecordDataset(
                      [str(tmp_path / "one" / n) for n in one["files"]]))
    expected = []
    for f in files:
        with open(f) as fh:
            docs = [data_lib.tokenize_lines(tokenizer, d)
                    for d in data_lib.read_documents(fh)]
        expected += [tuple(data_lib.with_special_tokens(s, special))
                     for s in data_lib.pack_documents(docs, 30)]
    assert read == sorted(expected)
    assert one["sequences"] == len(expected)
    assert one["vocabulary_size"] == len(tokenizer.get_vocabulary())
    other = data_lib.create_pretraining_records(
        str(tmp_path / "seed4"), vocab_dir, 32, files=files, seed=4,
        records_per_shard=10, progress=False)
    assert ((tmp_path / "seed4" / other["files"][0]).read_bytes()
            != (tmp_path / "one" / one["files"][0]).read_bytes())
    with pytest.raises(FileExistsError, match="overwrite"):
        data_lib.create_pretraining_records(
            str(tmp_path / "one"), vocab_dir, 32, files=files,
            progress=False)


def test_records_with_another_vocabulary_are_refused(vocab_dir, tmp_path):
    records = tmp_path / "records"
    data_lib.create_pretraining_records(
        str(records), pretrain.embedded_vocabulary_folder(), 24,
        texts=synthetic_lines(30), progress=False)
    config = tiny_config(vocab_dir, data__input=str(records))
    with pytest.raises(ValueError, match="another vocabulary"):
        pretrain.Pretrainer(config, str(tmp_path / "run"))


def test_build_vocab_tool(tmp_path):
    texts = synthetic_lines(300, seed=2)
    path = data_lib.build_wordpiece_vocabulary(
        str(tmp_path), 200, texts=texts)
    vocab = open(path).read().split("\n")[:-1]
    assert vocab[:5] == data_lib.BERT_RESERVED_TOKENS
    assert 40 < len(vocab) <= 200 and "movie" in vocab
    tok = load_tokenizer(str(tmp_path))
    assert special_token_ids(tok)["pad"] == 0
    ids = data_lib.tokenize_lines(tok, ["the happy dog"])[0]
    assert 1 not in ids  # no [UNK]
    for size in (-5, 5, 200.0, True):
        with pytest.raises(ValueError, match="above the 5 reserved tokens"):
            data_lib.build_wordpiece_vocabulary(str(tmp_path / "bad"), size,
                                                texts=texts)


# ---------------------------------------------------------------------------
# The model.
# ---------------------------------------------------------------------------


def test_masked_lm_head_is_tied_and_saves(tmp_path):
    backbone = TrimzooBackbone(vocabulary_size=50, num_layers=1, num_heads=2,
                               hidden_dim=8, intermediate_dim=16)
    model = TrimzooMaskedLM(backbone)
    extra = {id(w) for w in model.weights} - {id(w) for w in backbone.weights}
    shapes = sorted(tuple(w.shape) for w in model.weights if id(w) in extra)
    assert shapes == [(8,), (8,), (8,), (8, 8), (50,)]  # no [8, 50] kernel
    x = {"token_ids": np.array([[2, 7, 4, 9, 3]], "int32"),
         "segment_ids": np.zeros((1, 5), "int32"),
         "padding_mask": np.ones((1, 5), "int32"),
         "mask_positions": np.array([[2, 0]], "int32")}
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x)[:, :, 11])
    grad = tape.gradient(loss, backbone.token_embedding.embeddings)
    # Row 11 is never an input token: only the tied output projection
    # reaches it.
    assert float(tf.reduce_sum(tf.abs(tf.convert_to_tensor(grad)[11]))) > 0
    model.save_to_preset(str(tmp_path))
    again = TrimzooMaskedLM.from_preset(str(tmp_path))
    np.testing.assert_allclose(again(x), model(x), atol=1e-6)
    mixed = TrimzooMaskedLM(TrimzooBackbone(
        vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, dtype="mixed_bfloat16"))
    assert mixed(x).dtype == tf.float32


# ---------------------------------------------------------------------------
# Distillation.
# ---------------------------------------------------------------------------


def test_distillation_loss_hand_computed():
    # Position 0: teacher uniform, student logits [0, 2 ln 3] -> at T = 2,
    # p_s = [1/4, 3/4]; KL = 0.5 ln(4/3). Label 0: CE = ln 10.
    # Position 1 is padding (weight 0) and must not count.
    student = tf.constant([[[0.0, 2 * math.log(3)], [5.0, -5.0]]])
    teacher = tf.constant([[[0.0, 0.0], [-9.0, 9.0]]])
    out = losses_lib.distillation_loss(student, teacher, tf.constant([[0, 1]]),
                                    tf.constant([[1.0, 0.0]]))
    kl, ce = 0.5 * math.log(4 / 3), math.log(10)
    assert abs(float(out["kd_loss"]) - kl) < 1e-6
    assert abs(float(out["mlm_loss"]) - ce) < 1e-6
    assert abs(float(out["loss"]) - (0.1 * ce + 0.5 * 4 * kl)) < 1e-6
    assert abs(float(out["loss"]) - 0.5179406) < 1e-6


def test_distillation_loss_matches_numpy():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(2, 2, 3, 11)) * 3
    labels = rng.integers(0, 11, (2, 3))
    weights = np.array([[1, 1, 0], [1, 0, 0]], "float32")
    for alpha, beta, temp in ((0.1, 0.5, 2.0), (1.0, 0.0, 1.0),
                              (0.3, 0.7, 4.0)):
        want = numpy_losses.distillation(s, t, labels, weights, alpha, beta,
                                  temp)[0]
        got = losses_lib.distillation_loss(s, t, labels, weights, alpha, beta,
                                        temp)["loss"]
        assert abs(float(got) - want) < 1e-5


@pytest.mark.parametrize("jit_compile", [
    False, pytest.param(True, marks=pytest.mark.slow)])
def test_trained_objective_is_bort_loss(jit_compile, vocab_dir, tokenizer,
                                        tmp_path):
    """The loss the pretraining loop trains and logs at step 1 (dropout
    off, so it is a function of the initial weights and the first batch)
    equals Bort's objective computed in NumPy from the student's and the
    teacher's logits: alpha · CE + beta · T² · KL."""
    make_teacher(str(tmp_path / "teacher"), tokenizer)
    config = tiny_config(vocab_dir, distill__teacher=str(tmp_path / "teacher"),
                         distill__alpha=0.3, distill__beta=0.7,
                         distill__temperature=3.0, train__dropout=0.0,
                         train__steps=1, train__jit_compile=jit_compile)
    workdir = str(tmp_path / "run")
    trainer = pretrain.Pretrainer(config, workdir,
                                  texts=synthetic_lines(100, seed=3))
    x, y, w = next(iter(trainer.make_dataset(8)))
    s = trainer.model(x, training=False).numpy().astype("float64")
    t = trainer.teacher(x, training=False).numpy().astype("float64")
    y, w = y.numpy(), w.numpy().astype("float64")
    loss, ce, kl = numpy_losses.distillation(s, t, y, w, 0.3, 0.7, 3.0)
    accuracy = ((s.argmax(-1) == y) * w).sum() / w.sum()
    trainer.train()
    logged = pretrain.read_metrics(workdir)[0]
    assert logged["step"] == 1
    assert logged["loss"] == pytest.approx(loss, rel=1e-5)
    assert logged["mlm_loss"] == pytest.approx(ce, rel=1e-5)
    assert logged["kd_loss"] == pytest.approx(kl, rel=1e-5)
    assert logged["mlm_accuracy"] == pytest.approx(accuracy, abs=1e-7)


def make_teacher(folder, tokenizer, seed=0):
    """A fixed tiny teacher with a peaked output distribution."""
    keras.utils.set_random_seed(seed)
    vocab = tokenizer.vocabulary_size()
    teacher = TrimzooMaskedLM(TrimzooBackbone(
        vocabulary_size=vocab, num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=64))
    bias = np.random.default_rng(seed).normal(0, 3, vocab).astype("float32")
    teacher.masked_lm_head._bias.assign(bias)
    teacher.save_to_preset(folder)
    tokenizer.save_to_preset(folder)
    return teacher


@pytest.mark.slow
def test_distillation_moves_student_toward_teacher(vocab_dir, tokenizer,
                                                   tmp_path):
    make_teacher(str(tmp_path / "teacher"), tokenizer)
    texts = synthetic_lines(200, seed=4)
    config = tiny_config(vocab_dir, distill__teacher=str(tmp_path / "teacher"),
                         train__steps=30, train__log_every=5,
                         train__learning_rate=3e-3)
    trainer = pretrain.Pretrainer(config, str(tmp_path / "run"), texts=texts)
    batch = next(iter(trainer.make_dataset(16)))
    x, y, w = batch

    def kl_to_teacher():
        t = trainer.teacher(x, training=False)
        s = trainer.model(x, training=False)
        return float(losses_lib.distillation_loss(s, t, y, w)["kd_loss"])

    before = kl_to_teacher()
    summary = trainer.train()
    after = kl_to_teacher()
    assert after < 0.7 * before, (before, after)
    logged = pretrain.read_metrics(str(tmp_path / "run"))
    assert logged[-1]["kd_loss"] < logged[0]["kd_loss"]
    assert {"loss", "mlm_loss", "kd_loss"} <= set(logged[0])
    # The teacher was not trained.
    fixed = TrimzooMaskedLM.from_preset(str(tmp_path / "teacher"))
    for a, b in zip(fixed.get_weights(), trainer.teacher.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert summary["last_logged"]["step"] == 30


def test_teacher_with_another_vocabulary_is_refused(vocab_dir, tokenizer,
                                                    tmp_path):
    make_teacher(str(tmp_path / "teacher"), tokenizer)
    config = tiny_config(pretrain.embedded_vocabulary_folder(),
                         distill__teacher=str(tmp_path / "teacher"))
    with pytest.raises(ValueError, match="vocabulary"):
        pretrain.Pretrainer(config, str(tmp_path / "run"), texts=["a b"])
    # Same size, one token different.
    vocab = tokenizer.get_vocabulary()
    other = tmp_path / "other"
    other.mkdir()
    (other / "vocab.txt").write_text("\n".join(vocab[:-1] + ["zebra"]) + "\n")
    with pytest.raises(ValueError, match="token .* is"):
        teachers.check_same_vocabulary(load_tokenizer(str(other)), tokenizer,
                                      len(vocab))


def test_teacher_without_a_head_is_refused():
    # The embedded checkpoint is a sentence-embedding model: encoder only.
    with pytest.raises(ValueError, match="no masked-LM head"):
        teachers.load_teacher(pretrain.embedded_vocabulary_folder())


@pytest.mark.parametrize("kind,prefix", [("bert", "cls.predictions."),
                                         ("roberta", "lm_head.")])
def test_hf_masked_lm_teacher_matches_reference_head(kind, prefix, tmp_path):
    """A HF *ForMaskedLM folder: the head weights are read from the
    safetensors and the teacher computes HF's head, dense -> exact gelu ->
    layernorm -> tied projection + bias."""
    import shutil

    from safetensors.numpy import load_file, save_file
    from scipy.special import erf

    folder = tmp_path / kind
    shutil.copytree(os.path.join(ROOT, "tests", "fixtures", f"hf_tiny_{kind}"),
                    folder)
    config = json.loads((folder / "config.json").read_text())
    hidden, vocab = config["hidden_size"], config["vocab_size"]
    eps = config["layer_norm_eps"]
    rng = np.random.default_rng(0)
    head = {"dense.weight": rng.normal(0, 0.2, (hidden, hidden)),
            "dense.bias": rng.normal(0, 0.2, hidden),
            "norm.weight": 1 + rng.normal(0, 0.1, hidden),
            "norm.bias": rng.normal(0, 0.1, hidden),
            "bias": rng.normal(0, 1, vocab)}
    head = {k: v.astype("float32") for k, v in head.items()}
    names = {"bert": {"dense.weight": "transform.dense.weight",
                      "dense.bias": "transform.dense.bias",
                      "norm.weight": "transform.LayerNorm.weight",
                      "norm.bias": "transform.LayerNorm.bias",
                      "bias": "bias"},
             "roberta": {"dense.weight": "dense.weight",
                         "dense.bias": "dense.bias",
                         "norm.weight": "layer_norm.weight",
                         "norm.bias": "layer_norm.bias", "bias": "bias"}}
    tensors = load_file(str(folder / "model.safetensors"))
    tensors.update({prefix + names[kind][k]: v for k, v in head.items()})
    save_file(tensors, str(folder / "model.safetensors"))

    teacher, tokenizer = teachers.load_teacher(str(folder))
    assert not teacher.trainable
    assert tokenizer.vocabulary_size() == vocab
    ids = rng.integers(5, vocab, (2, 9)).astype("int32")
    x = {"token_ids": ids, "segment_ids": np.zeros_like(ids),
         "padding_mask": np.ones_like(ids),
         "mask_positions": np.array([[1, 4], [0, 8]], "int32")}
    h = teacher.backbone({k: x[k] for k in ("token_ids", "segment_ids",
                                            "padding_mask")})
    h = np.take_along_axis(np.asarray(h["sequence_output"]),
                           x["mask_positions"][..., None], axis=1)
    y = h @ head["dense.weight"].T + head["dense.bias"]
    y = 0.5 * y * (1 + erf(y / np.sqrt(2)))
    y = (y - y.mean(-1, keepdims=True)) / np.sqrt(y.var(-1, keepdims=True)
                                                  + eps)
    y = y * head["norm.weight"] + head["norm.bias"]
    embeddings = np.asarray(teacher.backbone.token_embedding.embeddings)
    want = y @ embeddings.T + head["bias"]
    np.testing.assert_allclose(np.asarray(teacher(x)), want, atol=1e-4)


# ---------------------------------------------------------------------------
# The training loop.
# ---------------------------------------------------------------------------


def test_one_vs_two_replicas_same_losses(vocab_dir, tmp_path,
                                        two_cpu_strategy):
    """Same global batch on 1 replica and on a 2-replica MirroredStrategy
    over two logical CPUs: the same losses step by step (dropout off, so
    both see the same function; clipping is active). Both XLA-compile the
    step: all of it on one replica, the forward and backward passes on
    two."""
    texts = synthetic_lines(200, seed=5)
    results = {}
    for name, strategy in (
            ("one", tf.distribute.OneDeviceStrategy("/cpu:0")),
            ("two", two_cpu_strategy)):
        assert strategy.num_replicas_in_sync == (1 if name == "one" else 2)
        config = tiny_config(vocab_dir, train__dropout=0.0,
                             train__clipnorm=0.5, train__jit_compile=True)
        summary = pretrain.run(config, str(tmp_path / name),
                               strategy=strategy, texts=texts)
        results[name] = losses(str(tmp_path / name))
        assert summary["last_logged"]["grad_norm"] > 0.5  # clipping was on
    one, two = results["one"], results["two"]
    assert sorted(one) == sorted(two) == list(range(1, 7))
    diffs = [abs(one[s] - two[s]) for s in one]
    assert max(diffs) <= 1e-3, diffs
    for a, b in zip(final_weights(str(tmp_path / "one")),
                    final_weights(str(tmp_path / "two"))):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_steps_per_execution_is_the_same_training(vocab_dir, tmp_path):
    texts = synthetic_lines(100, seed=6)
    for name, spe in (("a", 1), ("b", 3)):
        config = tiny_config(vocab_dir, train__steps_per_execution=spe,
                             train__log_every=3)
        pretrain.run(config, str(tmp_path / name), texts=texts)
    a, b = losses(str(tmp_path / "a")), losses(str(tmp_path / "b"))
    assert sorted(a) == sorted(b) == [1, 3, 6]
    for step in a:
        assert abs(a[step] - b[step]) < 1e-5
    for x, y in zip(final_weights(str(tmp_path / "a")),
                    final_weights(str(tmp_path / "b"))):
        np.testing.assert_allclose(x, y, atol=1e-6)


def test_outputs_metrics_tensorboard_and_final(vocab_dir, tokenizer,
                                               tmp_path):
    config = tiny_config(vocab_dir, train__log_every=2,
                         train__checkpoint_every=2,
                         train__keep_checkpoints=2)
    workdir = str(tmp_path / "run")
    trainer = pretrain.Pretrainer(config, workdir,
                                  texts=synthetic_lines(100, seed=7))
    summary = trainer.train()
    logged = pretrain.read_metrics(workdir)
    assert [m["step"] for m in logged] == [1, 2, 4, 6]
    for m in logged:
        assert {"step", "loss", "mlm_accuracy", "learning_rate",
                "tokens_per_sec"} <= set(m)
        assert m["tokens_per_sec"] > 0
    # Warmup 1 step, then linear decay to 0 at step 6.
    assert logged[-1]["learning_rate"] == pytest.approx(1e-3 / 5, rel=1e-5)
    events = tf.io.gfile.glob(os.path.join(workdir, "tensorboard", "*"))
    assert events
    tags = set()
    for event in tf.compat.v1.train.summary_iterator(events[0]):
        tags |= {v.tag for v in event.summary.value}
    assert {"loss", "mlm_accuracy", "learning_rate",
            "tokens_per_sec"} <= tags
    ckpts = tf.train.get_checkpoint_state(
        os.path.join(workdir, "checkpoints")).all_model_checkpoint_paths
    assert [p.rsplit("-", 1)[1] for p in ckpts] == ["4", "6"]  # keep 2
    final = os.path.join(workdir, "final")
    model = TrimzooMaskedLM.from_preset(final)
    for a, b in zip(model.get_weights(), trainer.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    backbone = keras.saving.get_registered_object(
        "trimzoo>TrimzooBackbone").from_preset(final)
    assert backbone.vocabulary_size == tokenizer.vocabulary_size()
    import keras_hub

    saved_tok = keras_hub.tokenizers.Tokenizer.from_preset(final)
    assert saved_tok.get_vocabulary() == tokenizer.get_vocabulary()
    from trimzoo.checkpoints import from_pretrained

    loaded, tok = from_pretrained(final)
    assert loaded.count_params() == backbone.count_params()
    assert tok.get_vocabulary() == tokenizer.get_vocabulary()
    assert summary["final"] == final


@pytest.mark.slow
def test_held_out_evaluation_with_fixed_masks(vocab_dir, text_file,
                                              tmp_path):
    """data.eval_input: evaluated every eval_every steps and at the end,
    on the same positions every time; the logged values equal a
    recomputation from the saved model."""
    eval_file = tmp_path / "held_out.txt"
    eval_file.write_text("\n".join(synthetic_lines(60, seed=11)) + "\n")
    config = tiny_config(vocab_dir, data__eval_input=str(eval_file),
                         data__eval_batches=3, eval_every=4, train__steps=6,
                         train__log_every=5)
    workdir = str(tmp_path / "run")
    trainer = pretrain.Pretrainer(config, workdir, texts=synthetic_lines(80))
    first = trainer.evaluate()
    assert first == trainer.evaluate()  # fixed batches and masks
    assert first["eval_count"] == sum(
        int(w.numpy().sum()) for _, _, w in trainer.data.evaluation())
    summary = trainer.train()
    logged = pretrain.read_metrics(workdir)
    assert [m["step"] for m in logged] == [1, 4, 5, 6]
    evaluated = [m["step"] for m in logged if "eval_loss" in m]
    assert evaluated == [4, 6]
    assert logged[1]["eval_loss"] != logged[3]["eval_loss"]  # it trained
    # The last evaluation, recomputed with NumPy from the final model.
    model = TrimzooMaskedLM.from_preset(os.path.join(workdir, "final"))
    ce_sum = correct = count = 0.0
    for x, y, w in trainer.data.evaluation():
        logits = model(x, training=False).numpy()
        y, w = y.numpy(), w.numpy()
        ce_sum += (numpy_losses.cross_entropy(logits, y) * w).sum()
        correct += ((logits.argmax(-1) == y) * w).sum()
        count += w.sum()
    last = logged[-1]
    assert last["eval_mlm_loss"] == pytest.approx(ce_sum / count, rel=1e-5)
    assert last["eval_loss"] == last["eval_mlm_loss"]
    assert last["eval_mlm_accuracy"] == pytest.approx(correct / count)
    assert summary["last_eval"]["step"] == 6
    events = tf.io.gfile.glob(os.path.join(workdir, "tensorboard", "*"))
    tags = {v.tag for e in events
            for event in tf.compat.v1.train.summary_iterator(e)
            for v in event.summary.value}
    assert {"eval_loss", "eval_mlm_accuracy"} <= tags


def test_checkpoint_and_eval_intervals_default_to_the_run_length(vocab_dir):
    strategy = tf.distribute.get_strategy()
    for steps, every in ((40, 4), (5, 1), (10**6, 5000)):
        config = tiny_config(vocab_dir, train__steps=steps,
                             train__checkpoint_every=None)
        resolved = pretrain.resolve_config(config, strategy)
        assert resolved.train.checkpoint_every == every
        assert resolved.eval_every == every
    config = tiny_config(vocab_dir, eval_every=3)
    assert pretrain.resolve_config(config, strategy).eval_every == 3
    assert get_config("runlocal=True").train.checkpoint_every == 20


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(vocab_dir,
                                                              tmp_path):
    texts = synthetic_lines(100, seed=8)
    workdir = str(tmp_path / "run")
    config = tiny_config(vocab_dir, train__steps=4,
                         train__checkpoint_every=2)
    pretrain.run(config, workdir, texts=texts)
    final = os.path.join(workdir, "final")
    os.rename(final, final + "_first")
    config = tiny_config(vocab_dir, train__steps=8,
                         train__checkpoint_every=2)
    trainer = pretrain.Pretrainer(config, workdir, texts=texts)
    assert trainer.restore() == 4
    embeddings = trainer.model.backbone.token_embedding.embeddings
    poisoned = embeddings.numpy()
    poisoned[7, 3] = np.nan  # a diverged weight
    embeddings.assign(poisoned)
    with pytest.raises(pretrain.NonFiniteLossError,
                       match=r"steps 5\.\.5.*ckpt-4 and was kept"):
        trainer.train()
    assert tf.train.latest_checkpoint(
        os.path.join(workdir, "checkpoints")).endswith("ckpt-4")
    assert max(losses(workdir)) == 4
    assert not os.path.exists(final)
    # The kept checkpoint is the good one: a fresh run resumes from it.
    fresh = pretrain.Pretrainer(config, workdir, texts=texts)
    assert fresh.restore() == 4
    assert all(np.isfinite(w).all() for w in fresh.model.get_weights())


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run(vocab_dir, text_file,
                                                     tmp_path):
    """A command-line run killed (SIGKILL) after a checkpoint and then
    resumed ends with the weights and the loss curve of an uninterrupted
    run: model, optimizer, step, dropout RNG and data position restored."""
    overrides = dict(data__input=text_file, train__steps=100,
                     train__checkpoint_every=10, train__log_every=5,
                     train__jit_compile=True)
    killed = str(tmp_path / "killed")
    cmd = [PYTHON, os.path.join(ROOT, "tools", "pretrain.py"),
           "--config=" + os.path.join(ROOT, "configs", "pretrain.py")
           + ":model=bert_tiny", f"--workdir={killed}", "--strategy=cpu",
           *as_flags(vocab_dir, **overrides)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    index = os.path.join(killed, "checkpoints", "checkpoint")
    deadline = time.time() + 240
    while not os.path.exists(index) and proc.poll() is None:
        assert time.time() < deadline, "no checkpoint within the time limit"
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not os.path.exists(os.path.join(killed, "final"))
    stopped_at = tf.train.latest_checkpoint(os.path.dirname(index))
    assert int(stopped_at.rsplit("-", 1)[1]) < 100

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    resumed = pretrain.run(tiny_config(vocab_dir, **overrides), killed,
                           strategy=strategy)
    assert 10 <= resumed["start_step"] < 100
    # The summary covers the whole run, not only the resumed segment.
    assert resumed["first_logged"]["step"] == 1
    saved = json.load(open(os.path.join(killed, "summary.json")))
    assert saved["first_logged"]["step"] == 1
    assert saved["last_logged"]["step"] == 100
    straight = str(tmp_path / "straight")
    pretrain.run(tiny_config(vocab_dir, **overrides), straight,
                 strategy=strategy)
    a, b = losses(killed), losses(straight)
    assert sorted(a) == sorted(b) == [1, *range(5, 101, 5)]
    assert max(abs(a[s] - b[s]) for s in a) <= 1e-5
    for x, y in zip(final_weights(killed), final_weights(straight)):
        np.testing.assert_allclose(x, y, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_low_precision_trains(precision, vocab_dir, tmp_path):
    policy = f"mixed_{precision}"
    config = tiny_config(vocab_dir, train__precision=precision,
                         train__steps=4, train__jit_compile=True)
    trainer = pretrain.Pretrainer(config, str(tmp_path / "run"),
                                  texts=synthetic_lines(60))
    assert trainer.model.backbone.dtype_policy.name == policy
    # float16 needs loss scaling; bfloat16 has float32's range.
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer
                      ) == (policy == "mixed_float16")
    summary = trainer.train()
    assert math.isfinite(summary["last_logged"]["loss"])
    assert summary["precision"] == {"precision": precision,
                                    "reason": "asked for", "policy": policy}
    saved = TrimzooMaskedLM.from_preset(os.path.join(tmp_path, "run",
                                                     "final"))
    assert saved.backbone.dtype_policy.name == "float32"


def test_config_errors_are_clear(vocab_dir, tmp_path, two_cpu_strategy):
    config = tiny_config(vocab_dir, train__batch_size=7)
    strategy = two_cpu_strategy
    with pytest.raises(ValueError, match="divisible by the number of "
                                         "replicas"):
        pretrain.resolve_config(config, strategy)
    config = tiny_config(vocab_dir, train__precision="fp8")
    with pytest.raises(ValueError, match=r"train.precision must be one of "
                       r"\['auto', 'float32', 'bfloat16', 'float16'\]"):
        pretrain.resolve_config(config, tf.distribute.get_strategy())
    with pytest.raises(ValueError, match="modle"):
        get_config("modle=bert_base")


# ---------------------------------------------------------------------------
# Configs.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list_models())
def test_every_model_config_builds_with_runlocal(name):
    strategy = tf.distribute.get_strategy()
    config = pretrain.resolve_config(
        get_config(f"model={name},runlocal=True"), strategy)
    kwargs = config.resolved.model_kwargs.to_dict()
    # The embedded vocabulary decides the size, whatever the preset says.
    assert kwargs["vocabulary_size"] == 30522
    assert kwargs["hidden_dim"] == 128 and kwargs["num_layers"] == 3
    model = TrimzooMaskedLM(TrimzooBackbone(**kwargs))
    assert model.count_params() > 0
    assert config.train.steps <= 100 and config.data.max_seq_length <= 64


def test_precision_is_resolved_into_the_model_arguments(vocab_dir,
                                                        monkeypatch):
    strategy = tf.distribute.get_strategy()
    config = pretrain.resolve_config(
        tiny_config(vocab_dir, train__precision="bfloat16"), strategy)
    assert config.resolved.model_kwargs.dtype == "mixed_bfloat16"
    assert (config.resolved.precision, config.resolved.precision_reason) == (
        "bfloat16", "asked for")
    assert config.train.precision == "bfloat16"
    # auto on a CPU without bfloat16 units (flags injected): float32,
    # nothing measured; the asked value stays in train.precision.
    real = hardware.cpu_features
    monkeypatch.setattr(hardware, "cpu_features", lambda cpuinfo=None: real(
        "model name : EPYC 7B13\nflags : fpu avx2 fma"))
    monkeypatch.setattr(precision_lib, "measure_bf16_speedup", None)
    config = pretrain.resolve_config(
        tiny_config(vocab_dir, train__precision="auto"), strategy)
    assert config.resolved.model_kwargs.dtype == "float32"
    assert (config.resolved.precision, config.resolved.precision_reason) == (
        "float32", "auto: this CPU has no bfloat16 units")
    assert config.train.precision == "auto"
    assert "resolved.precision_reason" in pretrain.RESUMABLE_CHANGES


def test_tpu_and_full_configs():
    tpu = get_config("model=trimbert_base,tpu=True")
    assert tpu.strategy == "tpu"
    assert tpu.train.precision == "bfloat16"
    assert tpu.train.steps_per_execution > 1
    full = get_config("model=trimbert_base")
    assert (full.train.batch_size, full.train.steps,
            full.data.max_seq_length) == (256, 1_000_000, 128)
    assert (full.distill.alpha, full.distill.beta,
            full.distill.temperature) == (0.1, 0.5, 2.0)


@pytest.mark.parametrize("arg", ["model=trimbert_base", "model=bort,tpu=True",
                                 "model=bert_tiny,runlocal=True"])
def test_every_config_masks_bert_rates(arg):
    """Every real run masks BERT's 15% (80% [MASK], 10% random), the
    masking function's default: a changed config value is caught here."""
    data = get_config(arg).data
    assert (data.mask_rate, data.mask_token_rate,
            data.random_token_rate) == (0.15, 0.8, 0.1)
    assert data_lib.default_max_predictions(128) == 20  # ceil(0.15 * 128)


# ---------------------------------------------------------------------------
# Heavier: real multi-worker training, real text.
# ---------------------------------------------------------------------------


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_two_worker_multi_worker_mirrored(vocab_dir, text_file, tmp_path):
    """Two local processes with their own TF_CONFIG train together
    (MultiWorkerMirroredStrategy over gRPC on 127.0.0.1) and end with
    identical weights."""
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    workdir = str(tmp_path / "run")
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({
            "cluster": {"worker": workers},
            "task": {"type": "worker", "index": index}}))
        cmd = [PYTHON, os.path.join(ROOT, "tools", "pretrain.py"),
               "--config=" + os.path.join(ROOT, "configs", "pretrain.py")
               + ":model=bert_tiny",
               f"--workdir={workdir}", "--strategy=multi_worker",
               *as_flags(vocab_dir, data__input=text_file,
                         train__checkpoint_every=3)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT))
    try:
        outputs = [p.communicate(timeout=300)[0].decode() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    chief = json.load(open(os.path.join(workdir, "summary.json")))
    other = json.load(open(os.path.join(workdir, "workers",
                                        "worker_1.json")))
    assert chief["weights_sha256"] == other["weights_sha256"]
    assert chief["last_logged"]["step"] == 6
    assert os.path.exists(os.path.join(workdir, "final", "task.json"))
    config = json.load(open(os.path.join(workdir, "config.json")))
    assert config["resolved"]["num_replicas"] == 2


@pytest.mark.slow
def test_trimbert_mini_learns_real_text(tmp_path):
    """trimbert_mini from scratch on the embedded corpus with a vocabulary
    built by the tool: the MLM loss falls well below ln(vocab)."""
    texts = data_lib.load_corpus_texts("train")
    vocab = str(tmp_path / "vocab")
    subprocess.run([PYTHON, os.path.join(ROOT, "tools", "build_vocab.py"),
                    f"--output={vocab}", "--vocab_size=4000"], check=True,
                   capture_output=True)
    size = len(open(os.path.join(vocab, "vocab.txt")).read().split())
    config = get_config("model=trimbert_mini")
    config.data.vocab = vocab
    config.data.max_seq_length = 64
    config.data.shuffle_buffer = 2000
    config.train.batch_size = 32
    config.train.steps = 300
    config.train.warmup_steps = 30
    config.train.learning_rate = 1e-3
    config.train.log_every = 25
    config.train.checkpoint_every = 250
    summary = pretrain.run(config, str(tmp_path / "run"), texts=texts)
    curve = losses(str(tmp_path / "run"))
    assert abs(curve[1] - math.log(size)) < 0.3, curve
    assert summary["last_logged"]["loss"] < math.log(size) - 1.5, curve
