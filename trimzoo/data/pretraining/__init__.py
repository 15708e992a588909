"""Masked-LM pretraining data: packing, TFRecords, dynamic masking and the
input pipeline.

Modules: ``packing`` (text -> packed sequences, in Python and in
``tf.data``), ``records`` (the TFRecord format and a multiprocess writer),
``masking`` (stateless dynamic masking), ``pipeline`` (the full input
pipeline and a measurement of its throughput) and ``vocabulary`` (learning a
WordPiece vocabulary). Every name is also available from this package.
"""

from trimzoo.data.pretraining.masking import (
    StatelessMaskedLMMaskGenerator,
    default_max_predictions,
    masked_lm_features,
)
from trimzoo.data.pretraining.packing import (
    pack_documents,
    packed_text_dataset,
    read_documents,
    sequence_stats,
    split_pieces,
    tokenize_lines,
    with_special_tokens,
)
from trimzoo.data.pretraining.pipeline import (
    benchmark_dataset,
    detect_format,
    list_files,
    load_corpus_texts,
    make_pretraining_dataset,
    resolve_sources,
)
from trimzoo.data.pretraining.records import (
    FEATURE,
    METADATA_FILE,
    create_pretraining_records,
    parse_sequence,
    read_metadata,
    serialize_sequence,
    vocabulary_sha256,
)
from trimzoo.data.pretraining.vocabulary import (
    BERT_RESERVED_TOKENS,
    build_wordpiece_vocabulary,
)

__all__ = [
    "BERT_RESERVED_TOKENS",
    "FEATURE",
    "METADATA_FILE",
    "StatelessMaskedLMMaskGenerator",
    "benchmark_dataset",
    "build_wordpiece_vocabulary",
    "create_pretraining_records",
    "default_max_predictions",
    "detect_format",
    "list_files",
    "load_corpus_texts",
    "make_pretraining_dataset",
    "masked_lm_features",
    "pack_documents",
    "packed_text_dataset",
    "parse_sequence",
    "read_documents",
    "read_metadata",
    "resolve_sources",
    "sequence_stats",
    "serialize_sequence",
    "split_pieces",
    "tokenize_lines",
    "vocabulary_sha256",
    "with_special_tokens",
]
