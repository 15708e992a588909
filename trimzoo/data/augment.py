"""Word-replacement augmentation for task distillation.

TinyBERT (Jiao et al., 2020) enlarges the task data of its second
distillation stage: each word of a training sentence is replaced, with
probability ``p = 0.4``, by one of its ``K = 15`` nearest words, and the
teacher labels the new sentences. TinyBERT draws the neighbours from a
masked-LM's predictions and GloVe vectors; here they come from the
teacher's own input word embeddings (cosine similarity between whole-word
wordpieces), which travel with every checkpoint and need nothing
downloaded. The labels are not the original ones: a replaced word can flip
the meaning ("good" -> "bad"), so the caller labels every augmented text
with the teacher's prediction (``trimzoo.training.finetune`` with
``distill.augment``).

Only lower-case alphabetic words that are one token of the vocabulary (a
WordPiece without ``##``, or a byte-level BPE token with the ``Ġ``
word-start mark) are replaced (by such words); punctuation, numbers, spacing and words the
tokenizer splits stay as written. No library does this with a model's own
embedding table (nlpaug's word-embedding augmenter loads word2vec / GloVe
files), hence the few lines here.
"""

import re

import numpy as np

#: TinyBERT's replacement probability and number of neighbours.
PROBABILITY = 0.4
NEIGHBOURS = 15

_WORD = re.compile(r"[a-z]{2,}")
_PIECES = re.compile(r"[A-Za-z]+|[^A-Za-z]+")


def _whole_words(vocabulary):
    """``{word: row}`` of the vocabulary's whole lower-case words: plain
    tokens of a WordPiece vocabulary, ``Ġ``-marked ones of a byte-level
    BPE vocabulary (RoBERTa, Bort)."""
    mark = "\u0120" if any(t.startswith("\u0120") for t in vocabulary) else ""
    return {t[len(mark):]: i for i, t in enumerate(vocabulary)
            if t.startswith(mark) and _WORD.fullmatch(t[len(mark):])}


def word_neighbours(embeddings, vocabulary, words, k=NEIGHBOURS,
                    chunk=2048):
    """The ``k`` nearest whole words of each of ``words`` by cosine
    similarity of their rows of ``embeddings``.

    Args:
        embeddings: array ``[vocabulary size, dim]``, the input word
            embeddings (row i is ``vocabulary[i]``).
        vocabulary: list of str, the tokens (WordPiece or byte-level
            BPE).
        words: iterable of str. The words to find neighbours for; those
            that are not one lower-case alphabetic wordpiece are left out.
        k: int. Neighbours per word. Defaults to ``NEIGHBOURS``.
        chunk: int. Words compared at once (memory).

    Returns:
        dict ``word -> list of k words``, nearest first (the word itself
        excluded).

    Examples:
    >>> vocab = ["[PAD]", "good", "great", "bad", "##ly", "film"]
    >>> table = np.array([[0, 0], [1, 0.1], [1, 0.2], [-1, 0], [0, 1],
    ...                   [0.1, 1]], dtype="float32")
    >>> word_neighbours(table, vocab, ["good", "film", "films"], k=2)
    {'film': ['great', 'good'], 'good': ['great', 'film']}
    >>> bpe = ["<s>", "\u0120good", "\u0120great", "bad", "\u0120film", "ly"]
    >>> word_neighbours(table[:6], bpe, ["good"], k=1)
    {'good': ['great']}
    """
    if len(vocabulary) != len(embeddings):
        raise ValueError(f"{len(vocabulary)} wordpieces but "
                         f"{len(embeddings)} embedding rows.")
    index = _whole_words(vocabulary)
    names = list(index)
    queries = sorted({w for w in words if w in index})
    if not queries or len(names) < 2:
        return {}
    k = min(int(k), len(names) - 1)
    table = np.asarray(embeddings, dtype="float32")[[index[w] for w in names]]
    table /= np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-12)
    position = {w: j for j, w in enumerate(names)}
    out = {}
    for start in range(0, len(queries), chunk):
        batch = queries[start:start + chunk]
        rows = np.array([position[w] for w in batch])
        scores = table[rows] @ table.T
        scores[np.arange(len(batch)), rows] = -np.inf  # not itself
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        for word, row, idx in zip(batch, scores, top):
            order = idx[np.argsort(-row[idx], kind="stable")]
            out[word] = [names[j] for j in order]
    return out


def words_of(texts):
    """The set of lower-case alphabetic words in ``texts``."""
    return {w for t in texts for w in _WORD.findall(t.lower())}


def augment_text(text, neighbours, rng, probability=PROBABILITY):
    """``text`` with each word that has neighbours replaced, with
    ``probability``, by one of them drawn uniformly (``rng``: a
    ``numpy.random.Generator``). Words are matched lower-cased; the rest of
    the text is kept as written.

    >>> rng = np.random.default_rng(0)
    >>> augment_text("A good film, truly.", {"good": ["great"]}, rng, 1.0)
    'A great film, truly.'
    """
    out = []
    for piece in _PIECES.findall(text):
        options = neighbours.get(piece.lower())
        if options and rng.random() < probability:
            out.append(options[rng.integers(len(options))])
        else:
            out.append(piece)
    return "".join(out)


def augment_examples(examples, neighbours, copies, seed=0,
                     probability=PROBABILITY):
    """``copies`` augmented versions of every example (each text of a pair
    augmented on its own), in order: example 0's copies first. The labels
    are kept as given: the caller replaces them with the teacher's.

    Args:
        examples: list of tuples ``(*texts, label)``.
        neighbours: dict from :func:`word_neighbours`.
        copies: int >= 1.
        seed: int. The same seed gives the same texts.
        probability: float in (0, 1].

    >>> augment_examples([("good film", 1)], {"good": ["great"]}, 2,
    ...                  probability=1.0)
    [('great film', 1), ('great film', 1)]
    """
    if int(copies) < 1:
        raise ValueError(f"copies must be >= 1, got {copies}.")
    if not 0 < probability <= 1:
        raise ValueError(f"probability must be in (0, 1], got "
                         f"{probability}.")
    rng = np.random.default_rng(seed)
    out = []
    for example in examples:
        *texts, label = example
        for _ in range(int(copies)):
            out.append(tuple(augment_text(t, neighbours, rng, probability)
                             for t in texts) + (label,))
    return out
