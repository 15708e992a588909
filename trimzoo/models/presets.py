"""The preset table: every architecture in the zoo is one row of data.

Each row holds ``TrimzooBackbone`` constructor arguments plus a one-line
description. Factory functions in ``trimzoo.models`` carry the same names.
"""

_BERT_COMMON = {
    "vocabulary_size": 30522,
    "max_sequence_length": 512,
    "num_segments": 2,
    "layer_norm_epsilon": 1e-12,
    "activation": "gelu",
    "dropout": 0.1,
}
_BERT_SIZES = {
    "tiny": dict(num_layers=2, hidden_dim=128, num_heads=2, intermediate_dim=512),
    "mini": dict(num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024),
    "base": dict(num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072),
    "large": dict(num_layers=24, hidden_dim=1024, num_heads=16, intermediate_dim=4096),
}
# TrimBERT (Sridhar, Sarah, Sundaresan, 2022): FFN kept in every 3rd layer,
# only the last layernorm of each block, a cheaper score normaliser.
_TRIMBERT = {
    "ffn_layers": "every_3",
    "layer_norm": "one_per_block",
    # Chosen by tools/ablate.py (docs/benchmarks.md): of the replacements for
    # softmax, sigmoid had the lowest held-out MLM loss on trimbert_mini in
    # both runs (400 steps: tied with relu; 1,200 steps: 5.980 vs relu_sum
    # 5.981, relu 5.985, softmax 5.979), at relu's step time and with no
    # row-wise reduction.
    "attention_normalizer": "sigmoid",
}
# Bort (de Wynter & Perry, 2020): the released checkpoint is a RoBERTa-style
# model (BPE vocabulary of 50265, one segment, layernorm eps 1e-5).
_BORT_COMMON = {
    "vocabulary_size": 50265,
    "max_sequence_length": 512,
    "num_segments": 1,
    "layer_norm_epsilon": 1e-5,
    "activation": "gelu",
    "dropout": 0.1,
}

PRESETS = {
    "bert_tiny": {
        "description": "BERT, 2 layers, hidden 128 (Turc et al. 2019 size).",
        "config": {**_BERT_COMMON, **_BERT_SIZES["tiny"]},
    },
    "bert_mini": {
        "description": "BERT, 4 layers, hidden 256 (Turc et al. 2019 size).",
        "config": {**_BERT_COMMON, **_BERT_SIZES["mini"]},
    },
    "bert_base": {
        "description": "BERT-base: 12 layers, hidden 768, 12 heads.",
        "config": {**_BERT_COMMON, **_BERT_SIZES["base"]},
    },
    "bert_large": {
        "description": "BERT-large: 24 layers, hidden 1024, 16 heads.",
        "config": {**_BERT_COMMON, **_BERT_SIZES["large"]},
    },
    "trimbert_mini": {
        "description": "TrimBERT recipe on bert_mini.",
        "config": {**_BERT_COMMON, **_BERT_SIZES["mini"], **_TRIMBERT},
    },
    "trimbert_base": {
        "description": "TrimBERT: BERT-base with FFN in every 3rd layer, "
        "half the layernorms, sigmoid attention normaliser.",
        "config": {**_BERT_COMMON, **_BERT_SIZES["base"], **_TRIMBERT},
    },
    "bort": {
        "description": "Bort: 4 layers, hidden 1024, 8 heads, intermediate "
        "768, RoBERTa BPE vocabulary.",
        "config": {
            **_BORT_COMMON,
            "num_layers": 4,
            "hidden_dim": 1024,
            "num_heads": 8,
            "intermediate_dim": 768,
        },
    },
    "bort_mini": {
        "description": "Bort-shaped mini model for tests and CPU demos.",
        "config": {
            **_BORT_COMMON,
            "num_layers": 2,
            "hidden_dim": 256,
            "num_heads": 4,
            "intermediate_dim": 192,
        },
    },
}
