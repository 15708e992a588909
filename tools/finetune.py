r"""Fine-tune a trimzoo model on GLUE, the embedded sentiment task or files.

    python tools/finetune.py \
        --config=configs/finetune.py:model=bert_base,task=glue/sst2 \
        --workdir=/tmp/sst2 --config.train.learning_rate=3e-5

Re-running with the same --workdir resumes the run.
"""

import sys

import _common  # noqa: F401  (path and logging set-up)
from absl import app, flags
from ml_collections import config_flags

from configs.common import check_override_flags
from trimzoo.training.checkpointing import RUN_OUTPUTS
from trimzoo.training.finetune import finetune
from trimzoo.utils.run_folder import claim_unless_worker
from trimzoo.training.strategy import STRATEGIES, get_strategy

config_flags.DEFINE_config_file("config", None, "Experiment config file.")
flags.DEFINE_string("workdir", None, "Output folder; an existing run resumes.")
flags.DEFINE_enum("strategy", "auto", STRATEGIES, "tf.distribute strategy.")
flags.DEFINE_string("tpu", None, "TPU name or address (implies --strategy=tpu"
                    " with --strategy=auto).")
flags.mark_flags_as_required(["config", "workdir"])
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = FLAGS.config
    with claim_unless_worker(FLAGS.workdir, "finetune", {}, RUN_OUTPUTS,
                             inputs=[config.get("init_checkpoint"),
                                     config.distill.get("teacher")],
                             adopt="config.json", flag="--workdir"):
        strategy = get_strategy(FLAGS.strategy, tpu=FLAGS.tpu)
        finetune(config, FLAGS.workdir, strategy=strategy)


def parse_flags(argv):
    """absl's parsing, after a clear error for a misspelt
    ``--config.model_overrides.NAME``."""
    try:
        check_override_flags(argv)
    except TypeError as error:
        sys.exit(f"FATAL Flags parsing error: {error}")
    return _common.parse_flags(argv)


if __name__ == "__main__":
    _common.run(main, flags_parser=parse_flags)
