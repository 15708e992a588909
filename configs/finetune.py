"""Fine-tuning config: ``--config=configs/finetune.py:model=...,task=...``.

Arguments (all optional): ``model`` (a preset name), ``task`` (e.g.
``glue/sst2``, ``rotten_tomatoes``), ``init_checkpoint`` (a folder that
``trimzoo.from_pretrained`` reads), ``drop_layers`` (e.g. ``top:2``),
``runlocal`` (shrink everything for a laptop run). ``init_checkpoint`` may
also be a classifier folder (``RUN/best``; its head comes along), and
``--config.distill.teacher=RUN/best`` distils from a fine-tuned teacher. Every field can then be
overridden on the command line, e.g. ``--config.train.learning_rate=3e-5``.
"""

import ml_collections
from ml_collections import config_dict

from configs.common import backbone_arguments, parse_arg
from trimzoo.training.losses import CLASSIFIER_ALPHA, TEMPERATURE
from trimzoo.training.objectives import JIT_COMPILE


def get_config(arg=None):
    args = parse_arg(arg, model="bert_base", task="rotten_tomatoes",
                     init_checkpoint="", drop_layers="", runlocal=False)
    config = ml_collections.ConfigDict()
    config.model = args["model"]
    # Preset overrides: any TrimzooBackbone argument (None = the preset's),
    # e.g. --config.model_overrides.num_layers=6 or
    # --config.model_overrides.attention_normalizer=relu_sum.
    config.model_overrides = ml_collections.ConfigDict(
        {name: config_dict.placeholder(object)
         for name in backbone_arguments()})
    config.init_checkpoint = args["init_checkpoint"]
    # runlocal's smaller architecture, for a run that builds a new model:
    # ignored beside init_checkpoint (which fixes the architecture);
    # model_overrides win.
    config.runlocal_model = ml_collections.ConfigDict()
    # Poor Man's BERT, applied to the pretrained model before fine-tuning:
    # "top:2", "bottom:2", "odd:4", "even:4", "symmetric:4",
    # "contribution:0.95" (threshold) or "layers:9,10,11" (0-based).
    config.drop_layers = args["drop_layers"]
    config.task = args["task"]
    # What the classifier head reads: "cls" (BERT's pooler on [CLS]),
    # "mean" or "max" over the real tokens. None = auto: the pooling the
    # checkpoint was trained with where its folder says (sentence
    # encoders such as init_checkpoint=minilm: "mean"), else "cls".
    config.pooling = config_dict.placeholder(str)
    config.max_seq_length = 128
    config.seed = 0

    config.data = ml_collections.ConfigDict()
    config.data.data_dir = ""        # tfds data_dir, or the GLUE TSV folder
    config.data.source = "tfds"      # GLUE: "tfds" or "tsv"
    config.data.train_files = ""     # task "files": CSV/TSV/JSONL paths
    config.data.validation_files = ""
    config.data.test_files = ""
    config.data.text_column = "sentence"
    config.data.text_pair_column = ""
    config.data.label_column = "label"
    # Task "files": True reads every label as a class name as written (a
    # JSON true, 1.5, integers among names); unset (False) refuses them,
    # naming the file and line (trimzoo.data.files.label_name).
    config.data.labels_as_text = config_dict.placeholder(bool)
    config.data.max_train_examples = 0   # 0 = all
    config.data.max_eval_examples = 0
    config.data.max_test_examples = 0    # 0 = the whole test split
    # Batch training examples of similar length together, in buckets this
    # many tokens wide (less padding: faster epochs on short texts); 0 =
    # plain shuffled batches, padded to their longest example.
    config.data.bucket_width = 0

    config.train = ml_collections.ConfigDict()
    config.train.batch_size = 32          # global batch size
    # None = auto (trimzoo.training.recipes, recorded in metrics.json):
    # epochs enough for 100 optimizer steps, 3 to 10 (a few hundred rows
    # get 10, a large task 3); learning rate 2e-5 at width 768 and above,
    # higher for narrower models (1e-4 at width 384), up to 3x that for
    # runs of fewer than 900 steps (300 rows at width 384: 3e-4).
    config.train.epochs = config_dict.placeholder(int)
    config.train.learning_rate = config_dict.placeholder(float)
    config.train.warmup_fraction = 0.1
    config.train.weight_decay = 0.01
    config.train.clipnorm = 1.0
    config.train.optimizer = "adamw"
    # Layer-wise learning-rate decay (AdamW): layer i of L learns at
    # layer_decay**(L-i) times the rate, the embeddings at
    # layer_decay**(L+1), the head at the full rate. 1.0 = off.
    config.train.layer_decay = 1.0
    config.train.dropout = 0.1
    # trimzoo.models.precision.PRECISIONS: "float32", "bfloat16" (float32
    # variables, bfloat16 arithmetic), "float16" (GPUs) or "auto" (bfloat16
    # on a CPU with bfloat16 units where it measures faster, else float32).
    config.train.precision = "float32"
    # XLA-compile the training loop's step (under several replicas its
    # forward and backward passes; off by default: slower on a Zen 3 EPYC
    # without AVX-512, 2026-11-30; see
    # trimzoo.training.objectives.JIT_COMPILE).
    config.train.jit_compile = JIT_COMPILE
    config.train.steps_per_execution = 1
    config.train.max_steps_per_epoch = 0  # 0 = the whole training split

    # Task distillation from a fine-tuned classifier folder (RUN/best) of
    # the same task and vocabulary: alpha·CE + (1-alpha)·T²·KL on logits,
    # + hidden_weight · hidden-state MSE (equal widths; student layer i
    # learns teacher layer floor(i·L_t/L_s)). "" = no teacher.
    config.distill = ml_collections.ConfigDict()
    config.distill.teacher = ""
    config.distill.alpha = CLASSIFIER_ALPHA
    config.distill.temperature = TEMPERATURE
    config.distill.hidden_weight = 0.0
    # Augmented copies of each training example (TinyBERT's word
    # replacement with the teacher's word embeddings, labelled by the
    # teacher; trimzoo.data.augment); 0 = none.
    config.distill.augment = 0

    config.eval = ml_collections.ConfigDict()
    config.eval.batch_size = 64
    # Metric that picks the best checkpoint ("" = the task's main metric).
    config.eval.best_metric = ""

    if args["runlocal"]:
        config.max_seq_length = 64
        config.train.batch_size = 8
        config.train.epochs = 1
        config.train.learning_rate = 1e-4
        config.train.max_steps_per_epoch = 20
        config.data.max_train_examples = 320
        config.data.max_eval_examples = 64
        config.data.max_test_examples = 64
        config.eval.batch_size = 32
        config.runlocal_model = ml_collections.ConfigDict(dict(
            num_layers=3, hidden_dim=64, num_heads=2, intermediate_dim=128))
    return config
