"""Sub-architecture search config: ``--config=configs/search.py:...``.

Arguments (all optional): ``teacher`` (a folder that
``trimzoo.from_pretrained`` reads; ``""`` = the embedded
all-MiniLM-L6-v2), ``reference`` (a preset name for a costs-only search
without a teacher, e.g. ``bert_large``), ``space`` (``auto``, ``paper``,
``fractions``, ``small`` (8 candidates; runlocal's default) or ``"D=2,4;A=4,8;H=256;I=768"``), ``cost`` (``flops``,
``keras``, ``tflite``), ``init`` (``inherit``, ``random``), ``task`` (e.g.
``rotten_tomatoes``: the error becomes the validation error after a short
fine-tune), ``runlocal``. Every field can be overridden on the command line,
e.g. ``--config.train.steps=100``.
"""

import ml_collections

from configs import finetune as finetune_config
from configs.common import parse_arg


def get_config(arg=None):
    args = parse_arg(arg, teacher="", reference="", space="auto",
                     cost="keras", init="inherit", task="", runlocal=False)
    config = ml_collections.ConfigDict()
    config.teacher = args["teacher"]
    if not config.teacher and not args["reference"]:
        from trimzoo.utils.embedded import minilm_path

        config.teacher = minilm_path()
    config.reference = args["reference"]
    config.space = args["space"]
    # TrimBERT knobs as extra dimensions, e.g. (None, 3) and
    # (None, "sigmoid"); empty = the teacher's.
    config.ffn_every = ()
    config.normalizers = ()
    config.cost = args["cost"]
    config.batch_size = 8       # the user's batch size, timed besides 1
    config.seq_len = 128        # tokens per sequence for the costs
    config.rounds = 10          # timed round-robin rounds per candidate
    config.init = args["init"]
    config.importance_batches = 8
    config.epsilon = 0.0        # 0 = the smallest that trains <= the fraction
    config.max_train_fraction = 1 / 3
    config.seed = 0
    config.progress = True
    config.task = args["task"]
    config.check_finetune = 0   # fine-tune this many for the proxy check
    config.mark = ""            # "D,A,H,I": report where it falls

    config.data = ml_collections.ConfigDict()
    config.data.input = ""      # text file, one text per line; "" = corpus
    config.data.seq_len = 64
    config.data.max_train = 4096
    config.data.max_eval = 256

    config.train = ml_collections.ConfigDict()
    config.train.steps = 60
    config.train.batch_size = 16
    config.train.learning_rate = 3e-4

    finetune = finetune_config.get_config(
        f"task={args['task'] or 'rotten_tomatoes'},init_checkpoint=set_by_"
        f"search,runlocal={args['runlocal']}")
    finetune.pooling = "mean"
    finetune.max_seq_length = 64
    finetune.train.epochs = 1
    finetune.train.learning_rate = 1e-4
    finetune.train.max_steps_per_epoch = 150
    config.finetune = finetune

    if args["runlocal"]:
        config.batch_size = 2
        config.seq_len = 16
        config.rounds = 2
        config.importance_batches = 1
        config.data.seq_len = 16
        config.data.max_train = 64
        config.data.max_eval = 16
        config.train.steps = 3
        config.train.batch_size = 8
        config.progress = False
        finetune.train.max_steps_per_epoch = 3
        finetune.max_seq_length = 16
        finetune.data.max_train_examples = 32
        finetune.data.max_eval_examples = 16
        finetune.data.max_test_examples = 16
        if config.space == "auto":  # a handful of candidates, not 192
            config.space = "small"
    return config
