"""Tokenizers of checkpoint folders: ``load_tokenizer`` and the HF readers."""

import json
import logging
import os

import keras_hub

from trimzoo.models.tokenizers.bpe import RobertaBPETokenizer
from trimzoo.models.tokenizers.wordpiece import BertWordPieceTokenizer
from trimzoo.utils.embedded import resolve_checkpoint
from trimzoo.utils.io import check_links_inside

logger = logging.getLogger(__name__)


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None


def read_vocabulary_file(path):
    """The tokens of a ``vocab.txt``, one per line.

    Raises:
        ValueError: naming the file and line, for a line that is not UTF-8
            or a token that appears twice (its id would be ambiguous).

    Examples:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> _ = open(path, "w").write("[PAD]\\nthe\\ncat\\nthe\\n")
    >>> read_vocabulary_file(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: .../vocab.txt, line 4: token 'the' already on line 2; tokens must be unique.
    """
    tokens, seen = [], {}
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                token = raw.decode("utf-8").rstrip("\n").rstrip("\r")
            except UnicodeDecodeError as err:
                raise ValueError(
                    f"{path}, line {number}: not UTF-8 text ({err.reason} at "
                    f"byte {err.start}: {raw[err.start:err.start + 4]!r})."
                ) from None
            if token in seen:
                raise ValueError(
                    f"{path}, line {number}: token {token!r} already on line "
                    f"{seen[token]}; tokens must be unique.")
            seen[token] = number
            tokens.append(token)
    return tokens


def _tokenizer_config(folder):
    path = os.path.join(folder, "tokenizer_config.json")
    return _read_json(path) if os.path.exists(path) else {}


def _special_name(value, default):
    """A special token from tokenizer_config.json (str or AddedToken dict)."""
    if isinstance(value, dict):
        value = value.get("content")
    return value or default


def _check_bert_specials(config, source):
    roles = {"cls_token": "[CLS]", "sep_token": "[SEP]",
             "pad_token": "[PAD]", "mask_token": "[MASK]",
             "unk_token": "[UNK]"}
    odd = {k: _special_name(config.get(k), v) for k, v in roles.items()
           if _special_name(config.get(k), v) != v}
    if odd:
        raise ValueError(
            f"{source} names BERT special tokens differently ({odd}); "
            f"trimzoo's WordPiece tokenizer needs {list(roles.values())}."
        )


def wordpiece_from_hf(folder, vocabulary=None, config=None, **kwargs):
    """``BertWordPieceTokenizer`` of a HF BERT folder.

    Reads ``vocab.txt`` (unless ``vocabulary`` is given) and the reference
    options from ``tokenizer_config.json``: ``do_lower_case`` (default True,
    as in the reference), ``strip_accents``, ``tokenize_chinese_chars``.

    Examples:
    >>> import json, os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "vocab.txt"), "w") as f:
    ...     _ = f.write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]",
    ...                         "[MASK]", "Café", "cafe"]))
    >>> with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
    ...     json.dump({"do_lower_case": False}, f)
    >>> [int(i) for i in wordpiece_from_hf(folder)("Café")]
    [5]
    """
    config = _tokenizer_config(folder) if config is None else config
    source = os.path.join(folder, "tokenizer_config.json")
    _check_bert_specials(config, source)
    if vocabulary is None:
        vocabulary = read_vocabulary_file(os.path.join(folder, "vocab.txt"))
    if config.get("do_basic_tokenize") is False:
        raise ValueError(
            f"{source} sets do_basic_tokenize=false, which trimzoo's "
            "WordPiece tokenizer does not support."
        )
    return BertWordPieceTokenizer(
        vocabulary=vocabulary,
        lowercase=config.get("do_lower_case", True),
        strip_accents=config.get("strip_accents"),
        split_on_cjk=config.get("tokenize_chinese_chars", True),
        **kwargs,
    )


def bpe_from_hf(folder, vocabulary=None, merges=None, add_prefix_space=None,
                **kwargs):
    """keras-hub ``RobertaTokenizer`` (byte-level BPE) of a HF RoBERTa/Bort
    folder: ``vocab.json`` + ``merges.txt`` unless given, and
    ``add_prefix_space`` from ``tokenizer_config.json``.

    Examples:
    >>> import json, os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4,
    ...          "h": 5, "i": 6, "hi": 7}
    >>> with open(os.path.join(folder, "vocab.json"), "w") as f:
    ...     json.dump(vocab, f)
    >>> with open(os.path.join(folder, "merges.txt"), "w") as f:
    ...     _ = f.write("#version: 0.2\\nh i\\n")
    >>> [int(i) for i in bpe_from_hf(folder)("hi")]
    [7]
    """
    if vocabulary is None:
        vocabulary = _read_json(os.path.join(folder, "vocab.json"))
    if merges is None:
        with open(os.path.join(folder, "merges.txt"), encoding="utf-8") as f:
            merges = [line.rstrip("\n") for line in f
                      if line.strip() and not line.startswith("#version")]
    if add_prefix_space is None:
        add_prefix_space = _tokenizer_config(folder).get(
            "add_prefix_space", False)
    missing = [t for t in ("<s>", "</s>", "<pad>", "<mask>")
               if t not in vocabulary]
    if missing:
        raise ValueError(
            f"The BPE vocabulary in {folder} lacks the RoBERTa special "
            f"tokens {missing}."
        )
    return RobertaBPETokenizer(
        vocabulary=dict(vocabulary), merges=list(merges),
        add_prefix_space=bool(add_prefix_space), **kwargs)


def _from_fast_tokenizer_json(folder, spec, **kwargs):
    """Tokenizer from a HF fast-tokenizer ``tokenizer.json`` alone."""
    source = os.path.join(folder, "tokenizer.json")
    model = spec.get("model") or {}
    kind = model.get("type")
    vocab = dict(model.get("vocab") or {})
    for added in spec.get("added_tokens") or []:
        vocab.setdefault(added["content"], added["id"])
    if kind == "WordPiece":
        normalizer = spec.get("normalizer") or {}
        if normalizer.get("type") != "BertNormalizer":
            raise ValueError(
                f"{source}: WordPiece with normalizer "
                f"{normalizer.get('type')!r} is not supported (expected "
                "BertNormalizer)."
            )
        ids = sorted(vocab.values())
        if ids != list(range(len(ids))):
            raise ValueError(f"{source}: WordPiece ids are not 0..N-1.")
        by_id = sorted(vocab, key=vocab.get)
        config = {
            **_tokenizer_config(folder),
            "do_lower_case": normalizer.get("lowercase", True),
            "strip_accents": normalizer.get("strip_accents"),
            "tokenize_chinese_chars": normalizer.get(
                "handle_chinese_chars", True),
        }
        return wordpiece_from_hf(folder, vocabulary=by_id, config=config,
                                 **kwargs)
    if kind == "BPE":
        pre = spec.get("pre_tokenizer") or {}
        if pre.get("type") != "ByteLevel":
            raise ValueError(
                f"{source}: BPE with pre_tokenizer {pre.get('type')!r} is "
                "not supported (expected ByteLevel, as RoBERTa)."
            )
        merges = [m if isinstance(m, str) else " ".join(m)
                  for m in model.get("merges") or []]
        return bpe_from_hf(folder, vocabulary=vocab, merges=merges,
                           add_prefix_space=pre.get("add_prefix_space",
                                                    False), **kwargs)
    raise ValueError(
        f"{source}: tokenizer model {kind!r} is not supported (WordPiece or "
        "byte-level BPE)."
    )


def _is_keras_preset(folder):
    path = os.path.join(folder, "config.json")
    return os.path.exists(path) and "registered_name" in _read_json(path)


def _from_keras_preset(folder, **kwargs):
    # keras-hub picks the tokenizer class of a preset by its backbone class;
    # trimzoo.models declares these tokenizers as TrimzooBackbone's.
    try:
        tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(folder,
                                                               **kwargs)
    except (UnicodeDecodeError, RuntimeError) as err:
        # keras-hub's messages name no file (duplicate tokens, bad bytes).
        raise ValueError(
            f"Cannot read the tokenizer of the preset {folder!r}: {err}"
        ) from err
    if type(tokenizer) is keras_hub.tokenizers.BertTokenizer:
        # keras-hub's BERT presets store the vocabulary and `lowercase` of
        # the reference tokenizer; rebuild it with the reference
        # normalisation (accent stripping when lower-casing).
        logger.info("Rebuilding the BertTokenizer of %s with the reference "
                    "WordPiece normalisation.", folder)
        tokenizer = BertWordPieceTokenizer(
            vocabulary=tokenizer.vocabulary, lowercase=tokenizer.lowercase,
            sequence_length=tokenizer.sequence_length)
    return tokenizer


def load_tokenizer(folder, **kwargs):
    """The tokenizer of a checkpoint folder (see the module docstring).

    Args:
        folder: str. A HF BERT/RoBERTa folder, a keras-hub preset folder or
            a trimzoo saved folder.
        **kwargs: passed to the tokenizer's constructor, e.g.
            ``sequence_length``.

    Returns:
        A keras-hub tokenizer: callable on strings (also inside
        ``tf.data``), with ``get_vocabulary`` and ``token_to_id``.

    Raises:
        FileNotFoundError: if the folder holds no tokenizer files.
        ValueError: if they describe an unsupported tokenizer.

    Examples:
    >>> from trimzoo.utils.embedded import minilm_path
    >>> tokenizer = load_tokenizer(minilm_path(), sequence_length=6)
    >>> type(tokenizer).__name__
    'BertWordPieceTokenizer'
    >>> [tokenizer.id_to_token(int(i)) for i in tokenizer("A naïve café!")]
    ['a', 'naive', 'cafe', '!', '[PAD]', '[PAD]']
    """
    # A checkpoint name ("minilm") resolves where checkpoints are read.

    folder = os.fspath(resolve_checkpoint(folder))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"No such checkpoint folder: {folder!r}.")
    check_links_inside(folder)  # A vocab.txt is read from the folder only.

    def has(name):
        return os.path.exists(os.path.join(folder, name))

    if _is_keras_preset(folder):
        if not has("tokenizer.json"):
            raise FileNotFoundError(
                f"The preset folder {folder!r} has no tokenizer.json (it was "
                "saved without a tokenizer)."
            )
        return _from_keras_preset(folder, **kwargs)
    if has("vocab.txt"):
        return wordpiece_from_hf(folder, **kwargs)
    if has("vocab.json") or has("merges.txt"):
        for name in ("vocab.json", "merges.txt"):
            if not has(name):
                raise FileNotFoundError(
                    f"{folder!r} has a byte-level BPE tokenizer without "
                    f"{name}."
                )
        return bpe_from_hf(folder, **kwargs)
    if has("tokenizer.json"):
        return _from_fast_tokenizer_json(
            folder, _read_json(os.path.join(folder, "tokenizer.json")),
            **kwargs)
    raise FileNotFoundError(
        f"No tokenizer in {folder!r}: looked for vocab.txt (WordPiece), "
        "vocab.json + merges.txt (byte-level BPE), tokenizer.json (HF fast "
        "tokenizer or keras-hub preset)."
    )

