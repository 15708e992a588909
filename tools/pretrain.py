"""Masked-LM pretraining (and Bort distillation) of a trimzoo model.

    python tools/pretrain.py --config=configs/pretrain.py:model=trimbert_base \
        --workdir=DIR [--tpu=NAME] [--strategy=mirrored] \
        [--config.data.input=/data/records] [--config.distill.teacher=DIR]

Picks the ``tf.distribute`` strategy, resolves the config (the tokenizer
decides the vocabulary size), writes it to ``DIR/config.json`` and runs
``trimzoo.training.pretrain``. Re-running the same command resumes from the
latest checkpoint in ``DIR``. See docs/pretraining.md.
"""

import json
import logging
import os

import _common  # noqa: F401  (path and logging set-up)
from absl import app, flags
from ml_collections import config_flags

config_flags.DEFINE_config_file(
    "config", os.path.join(_common._ROOT, "configs", "pretrain.py"),
    "Pretraining config file, e.g. configs/pretrain.py:model=bort.")
flags.DEFINE_string("workdir", None, "Output folder (resumed if it exists).")
flags.DEFINE_string("tpu", None, "TPU name or address ('local' on a TPU VM); "
                    "implies --strategy=tpu.")
flags.DEFINE_enum("strategy", None,
                  ["auto", "tpu", "mirrored", "multi_worker", "cpu"],
                  "Overrides config.strategy.")
flags.mark_flag_as_required("workdir")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.getLogger().setLevel(logging.INFO)
    # Imported after flag parsing, so that --help needs no TensorFlow.
    from trimzoo.training import pretrain
    from trimzoo.training.checkpointing import RUN_OUTPUTS
    from trimzoo.training.strategy import get_strategy
    from trimzoo.utils.run_folder import claim_unless_worker

    config = FLAGS.config
    folder = claim_unless_worker(
        FLAGS.workdir, "pretrain", {}, RUN_OUTPUTS,
        inputs=[config.get("init_checkpoint")], adopt="config.json",
        flag="--workdir")
    name = FLAGS.strategy or ("tpu" if FLAGS.tpu else config.strategy)
    strategy = get_strategy(name, tpu=FLAGS.tpu or config.tpu or None)
    logging.info("Strategy %s with %d replicas.", type(strategy).__name__,
                 strategy.num_replicas_in_sync)
    resolved = pretrain.resolve_config(config, strategy)
    # Writes config.json once the workdir accepts it.
    with folder:
        summary = pretrain.run(resolved, FLAGS.workdir, strategy=strategy)
    print(json.dumps({k: summary[k] for k in
                      ("start_step", "total_steps", "tokens_per_sec",
                       "examples_per_sec", "pipeline", "final")
                      if k in summary}, indent=2, default=str))


if __name__ == "__main__":
    _common.run(main)
