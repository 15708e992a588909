"""Pretraining config: ``--config=configs/pretrain.py:model=...``.

Arguments (all optional): ``model`` (a preset name, default
``trimbert_base``), ``tpu`` (Cloud TPU settings: TPUStrategy, bfloat16,
1000 steps per execution), ``runlocal`` (shrink everything for a laptop
run). Every field can be overridden on the command line, e.g.
``--config.train.steps=1000 --config.data.input=/data/records``.

With no data flags the run reads the embedded corpus (the Rotten Tomatoes
review snippets, training split) with the embedded bert-base-uncased
WordPiece vocabulary, so a from-scratch run works out of the box. The
tokenizer decides the vocabulary: the preset's ``vocabulary_size`` is set
from it.

The defaults are BERT's pretraining recipe (Devlin et al. 2019): global
batch 256 sequences of 128 tokens, 1M steps, AdamW with peak learning rate
1e-4, 10k warmup steps then linear decay, weight decay 0.01, dropout 0.1,
15% masking with 80/10/10. Distillation (``--config.distill.teacher=DIR``)
uses Bort's weights alpha = 0.1, beta = 0.5, T = 2.
"""

import ml_collections
from ml_collections import config_dict

from configs.common import parse_arg
from trimzoo.models.preprocessors import MASK_RATE
from trimzoo.training.losses import ALPHA, BETA, TEMPERATURE
from trimzoo.training.objectives import JIT_COMPILE

# Architecture arguments a command line can override (per-layer tuples such
# as attention_norm are set in Python configs).
_OVERRIDABLE = {
    "num_layers": int, "num_heads": int, "hidden_dim": int,
    "intermediate_dim": int, "max_sequence_length": int,
    "num_segments": int, "attention_normalizer": str, "ffn_layers": str,
    "layer_norm": str, "activation": str, "layer_norm_epsilon": float,
}


def get_config(arg=None):
    args = parse_arg(arg, model="trimbert_base", tpu=False, runlocal=False)
    config = ml_collections.ConfigDict()
    config.model = args["model"]
    # TrimzooBackbone arguments that replace the preset's (None = keep the
    # preset's), e.g. --config.model_overrides.num_layers=6.
    config.model_overrides = ml_collections.ConfigDict(
        {name: config_dict.placeholder(kind)
         for name, kind in _OVERRIDABLE.items()})
    # Continue from a checkpoint instead of random weights (a folder that
    # trimzoo.from_pretrained reads, e.g. a dropped, pruned or
    # TrimBERT-converted student); its architecture and tokenizer replace
    # model / model_overrides / data.vocab. "" = random initialisation.
    config.init_checkpoint = ""
    # runlocal's smaller architecture, for a run from random weights:
    # ignored beside init_checkpoint; model_overrides win.
    config.runlocal_model = ml_collections.ConfigDict()
    config.seed = 0
    # "auto" | "tpu" | "mirrored" | "multi_worker" | "cpu"; --tpu=NAME.
    config.strategy = "auto"
    config.tpu = ""

    config.data = ml_collections.ConfigDict()
    # Comma-separated globs or folders: TFRecords from
    # tools/create_pretraining_data.py, or text files (one sentence per
    # line, blank lines between documents) packed on the fly.
    # "" = the embedded corpus.
    config.data.input = ""
    config.data.format = "auto"        # "auto" | "tfrecord" | "text"
    # Tokenizer folder (vocab.txt, or vocab.json + merges.txt, or a
    # keras-hub preset) or a vocab.txt file; "" = embedded bert-base-uncased.
    config.data.vocab = ""
    config.data.max_seq_length = 128
    config.data.max_predictions_per_seq = 0   # 0 = ceil(mask_rate · length)
    config.data.mask_rate = MASK_RATE
    config.data.mask_token_rate = 0.8
    config.data.random_token_rate = 0.1
    config.data.shuffle_buffer = 10_000
    config.data.cycle_length = 8       # files read in parallel
    # Held-out set, same formats as data.input ("" = no evaluation):
    # data.eval_batches global batches with fixed masks, evaluated every
    # eval_every steps and at the end (eval_* metrics).
    config.data.eval_input = ""
    config.data.eval_batches = 20
    config.eval_every = config_dict.placeholder(int)  # None = checkpoint_every

    config.train = ml_collections.ConfigDict()
    config.train.batch_size = 256      # global, split over replicas
    config.train.steps = 1_000_000
    config.train.learning_rate = 1e-4
    config.train.warmup_steps = 10_000
    config.train.optimizer = "adamw"   # "adamw" | "lamb"
    config.train.weight_decay = 0.01
    config.train.clipnorm = 1.0        # global-norm clipping; 0 = off
    config.train.adam_beta_2 = 0.999
    config.train.adam_epsilon = 1e-6
    # trimzoo.models.precision.PRECISIONS: "float32", "bfloat16" (float32
    # variables, bfloat16 arithmetic; the TPU default), "float16" (GPUs,
    # with loss scaling) or "auto" (bfloat16 on a TPU, or on a CPU with
    # bfloat16 units where it measures faster; else float32).
    config.train.precision = "float32"
    config.train.dropout = config_dict.placeholder(float)  # None = preset
    config.train.steps_per_execution = 1
    # XLA-compile the train step (off by default: slower on a Zen 3 EPYC
    # without AVX-512, 2026-11-30; see
    # trimzoo.training.objectives.JIT_COMPILE).
    config.train.jit_compile = JIT_COMPILE
    config.train.log_every = 100
    # None = min(5000, max(1, steps // 10)).
    config.train.checkpoint_every = config_dict.placeholder(int)
    config.train.keep_checkpoints = 5
    # Time the input pipeline alone for this many batches before training.
    config.train.benchmark_pipeline_batches = 0

    config.distill = ml_collections.ConfigDict()
    # A folder with a masked-LM head; or, with hidden_weight > 0, any
    # checkpoint (a sentence encoder's hidden states alone).
    config.distill.teacher = ""
    config.distill.alpha = ALPHA       # Bort's weights
    config.distill.beta = BETA
    config.distill.temperature = TEMPERATURE
    # Hidden-state MSE (student layer i <-> teacher floor(i·L_t/L_s)); heals
    # a student cut from its teacher (init_checkpoint). 0 = off.
    config.distill.hidden_weight = 0.0

    if args["tpu"]:
        config.strategy = "tpu"
        config.train.precision = "bfloat16"
        config.train.steps_per_execution = 1000
        config.train.log_every = 1000
        config.train.checkpoint_every = 10_000
        config.data.cycle_length = 64
        config.data.shuffle_buffer = 100_000

    if args["runlocal"]:
        config.runlocal_model = ml_collections.ConfigDict(dict(
            num_layers=3, hidden_dim=128, num_heads=2, intermediate_dim=256))
        config.data.max_seq_length = 64
        config.data.shuffle_buffer = 1_000
        config.train.batch_size = 16
        config.train.steps = 40
        config.train.warmup_steps = 4
        config.train.learning_rate = 5e-4
        config.train.log_every = 5
        config.train.checkpoint_every = 20
        config.train.steps_per_execution = 5
        config.train.benchmark_pipeline_batches = 20
    return config
