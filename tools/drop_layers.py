r"""Poor Man's BERT: drop layers of a pretrained checkpoint.

Writes a folder of the checkpoint's kind (a classifier folder ``RUN/best``
gives a classifier folder, head kept; a backbone folder gives one that
``trimzoo.from_pretrained`` loads), with ``drop_layers.json`` noting what
was dropped and why. Layer indices are 0-based; the note also gives the
paper's 1-based numbering.

    python tools/drop_layers.py --checkpoint=DIR --strategy=top --k=2 \
        --output=DIR
    python tools/drop_layers.py --checkpoint=DIR --layers=3,4 --output=DIR
    python tools/drop_layers.py --checkpoint=DIR --drop=top:2 --output=DIR
    python tools/drop_layers.py --checkpoint=DIR --strategy=contribution \
        --threshold=0.95 --data=sentences.txt --output=DIR
"""

import json

import _common  # noqa: F401  (path and logging set-up)
from absl import app, flags

flags.DEFINE_string("checkpoint", None, "Checkpoint folder (HF BERT/RoBERTa, "
                    "keras-hub preset or trimzoo folder).")
flags.DEFINE_string("output", None, "Folder to write.")
flags.DEFINE_enum("strategy", None, ["top", "bottom", "odd", "even",
                                     "symmetric", "contribution"],
                  "Dropping strategy (or give --layers).")
flags.DEFINE_integer("k", None, "Number of layers to drop.")
flags.DEFINE_list("layers", None, "Explicit 0-based layer indices to drop.")
flags.DEFINE_float("threshold", None, "contribution: drop layers whose mean "
                   "[CLS] similarity is above this.")
flags.DEFINE_string("drop", None, "One-string spec instead of --strategy, "
                    "--k, --layers, --threshold: 'top:2', 'layers:3,4', "
                    "'contribution:0.95', 'contribution:k=3'.")
flags.DEFINE_string("data", None, "contribution: text file, one sentence per "
                    "line.")
flags.DEFINE_integer("max_examples", 1000, "contribution: sentences used.")
flags.DEFINE_integer("sequence_length", 128, "contribution: token budget.")
flags.DEFINE_bool("overwrite", False, "Replace an existing --output.")
flags.mark_flags_as_required(["checkpoint", "output"])
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from trimzoo.checkpoints import drop_checkpoint
    from trimzoo.models.layer_drop import parse_drop_spec

    spec = {"strategy": FLAGS.strategy, "k": FLAGS.k,
            "threshold": FLAGS.threshold, "layers": None}
    if FLAGS.layers:
        spec.update(_parse(parse_drop_spec, "layers:" + ",".join(
            FLAGS.layers), "--layers"))
    elif FLAGS.layers is not None:  # --layers= : drop nothing
        spec["layers"] = []
    if FLAGS.drop:
        if any(v is not None for v in spec.values()):
            raise app.UsageError("Pass --drop or --strategy/--k/--layers/"
                                 "--threshold, not both.")
        spec.update(_parse(parse_drop_spec, FLAGS.drop, "--drop"))
    texts = None
    if FLAGS.data:
        with open(FLAGS.data, encoding="utf-8") as f:
            texts = [line.strip() for line in f if line.strip()]
        texts = texts[: FLAGS.max_examples]
    elif spec["strategy"] == "contribution":
        raise app.UsageError("--strategy=contribution needs --data.")
    note = drop_checkpoint(
        FLAGS.checkpoint, FLAGS.output, texts=texts,
        sequence_length=FLAGS.sequence_length, overwrite=FLAGS.overwrite,
        **spec)
    print(note["reason"])
    print(f"kept a {note['kind']}"
          + (" (head, pooling, label names and task kept)"
             if note["kind"] == "classifier" else ""))
    if note["similarities"] is not None:
        print("similarities:", json.dumps([round(s, 4)
                                           for s in note["similarities"]]))
    print(f"wrote {FLAGS.output}")


def _parse(parser, value, flag):
    try:
        return parser(value, name=flag)
    except ValueError as e:
        raise app.UsageError(str(e)) from None


if __name__ == "__main__":
    _common.run(main)
