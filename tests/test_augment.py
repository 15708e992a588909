"""Teacher-labelled word-replacement augmentation (``trimzoo.data.augment``)
and its use in task distillation (``distill.augment``)."""

import contextlib
import io
import itertools
import string

import keras_hub
import numpy as np
import pytest

from helpers import small_config
from trimzoo.checkpoints.folders import load_classifier_folder
from trimzoo.data import augment, load_task_data
from trimzoo.models.tokenizers import load_tokenizer
from trimzoo.training.finetune import (augmented_training_set, finetune,
                                       validate_config)


def test_neighbours_are_the_nearest_words_by_cosine():
    rng = np.random.default_rng(0)
    words = ["".join(p) for p in itertools.product(string.ascii_lowercase,
                                                    repeat=2)][:120]
    vocab = ["[PAD]", "[UNK]", "##ab", "7", "A"] + words
    table = rng.normal(size=(len(vocab), 8)).astype("float32")
    queries = words[:10] + ["zz-not-a-piece", "##ab"]
    got = augment.word_neighbours(table, vocab, queries, k=5, chunk=3)
    # NumPy reference: cosine against every whole lower-case word.
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    for word in words[:10]:
        i = vocab.index(word)
        scores = {w: float(unit[i] @ unit[vocab.index(w)])
                  for w in words if w != word}
        assert got[word] == sorted(scores, key=scores.get,
                                   reverse=True)[:5]
    assert set(got) == set(words[:10])  # pieces and non-words left out
    with pytest.raises(ValueError, match="embedding rows"):
        augment.word_neighbours(table[:-1], vocab, queries)


def test_augmentation_is_seeded_and_replaces_only_words_with_neighbours():
    neighbours = {"good": ["great", "fine"], "film": ["movie", "picture"]}
    examples = [("A good film, 10/10!", 1), ("good", "a film", 0)]
    one = augment.augment_examples(examples, neighbours, 3, seed=1)
    assert one == augment.augment_examples(examples, neighbours, 3, seed=1)
    assert one != augment.augment_examples(examples, neighbours, 3, seed=2)
    assert len(one) == 6 and [e[-1] for e in one] == [1, 1, 1, 0, 0, 0]
    assert all(len(e) == 3 for e in one[3:])  # pairs stay pairs
    for text, _ in one[:3]:
        a, good, film = text.split(" ", 2)
        assert a == "A" and good in ("good", "great", "fine")
        assert film.rstrip(", 10/!") in ("film", "movie", "picture")
        assert text.endswith(", 10/10!")
    everything = augment.augment_examples(examples, neighbours, 1,
                                          probability=1.0)
    assert everything[0][0].split(",")[0] in {
        f"A {g} {f}" for g in ("great", "fine") for f in ("movie", "picture")}
    with pytest.raises(ValueError, match="copies"):
        augment.augment_examples(examples, neighbours, 0)


def test_augmented_copies_are_labelled_by_the_teacher(finetuned_run):
    best = finetuned_run["best"]
    teacher = load_classifier_folder(best)
    tokenizer = load_tokenizer(best)
    train, spec = load_task_data("rotten_tomatoes", "train")
    train = train.take(24)
    config = small_config(model="bert_base")
    config.distill.teacher = best
    config.distill.augment = 2
    with contextlib.redirect_stdout(io.StringIO()):
        out = list(augmented_training_set(train, teacher, tokenizer, spec,
                                          config, 2).as_numpy_iterator())
    assert len(out) == 24 * 3
    originals = list(train.as_numpy_iterator())
    assert [tuple(e) for e in out[:24]] == [tuple(e) for e in originals]
    new = out[24:]
    texts = [e[0].decode() for e in new]
    assert sum(t != o[0].decode() for t, o in zip(
        texts, (o for o in originals for _ in range(2)))) > 24
    # The labels are the teacher's predictions, computed here through the
    # saved preprocessor (padding to 32 tokens): a near-tie of the tiny
    # teacher may flip, the original labels would agree about half the time.
    with contextlib.redirect_stdout(io.StringIO()):
        served = keras_hub.models.TextClassifier.from_preset(best)
        predicted = np.argmax(served.predict(texts, verbose=0), -1)
    agreement = np.mean(predicted == np.array([e[-1] for e in new]))
    assert agreement >= 0.95


def test_finetune_trains_on_the_augmented_set(finetuned_run, tmp_path):
    config = small_config(model="bert_base")
    config.train.max_steps_per_epoch = 1
    config.distill.teacher = finetuned_run["best"]
    config.distill.augment = 1
    with contextlib.redirect_stdout(io.StringIO()) as out:
        record = finetune(config, str(tmp_path / "run"))
    assert record["augmented_examples"] == 2 * config.data.max_train_examples
    assert "Augmented: 96 examples" in out.getvalue()
    config.distill.teacher = ""
    with pytest.raises(ValueError, match="needs distill.teacher"):
        validate_config(config)
