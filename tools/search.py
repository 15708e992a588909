r"""Optimal sub-architecture extraction (Bort's search) with measured costs.

    python tools/search.py --config=configs/search.py:cost=keras \
        --workdir=search_out

Re-running with the same --workdir resumes the search. Outputs in the
workdir: report.md, results.json, pareto.png and chosen/ (a checkpoint
folder for tools/pretrain.py --config.init_checkpoint and
tools/finetune.py).
"""

import _common  # noqa: F401  (path and logging set-up)
from absl import app, flags
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", None, "Search config file.")
flags.DEFINE_string("workdir", "search_out",
                    "Output folder; an existing search resumes.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from trimzoo.search import search

    results = search(FLAGS.config, FLAGS.workdir)
    print(f"Report: {FLAGS.workdir}/report.md; chosen: "
          f"{results.get('chosen', '-')}", flush=True)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    _common.run(main)
