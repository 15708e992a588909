r"""Structured pruning of a pretrained checkpoint: heads, FFN neurons and
hidden dimensions ranked by importance (gradient or magnitude).

Writes a folder of the checkpoint's kind, with ``prune.json``: kept
indices, scores, parameters before and after, the data scored on. A
classifier folder (``RUN/best``) gives a classifier folder (head sliced
along) that ``tools/predict.py`` and ``tools/export.py`` take; a backbone
folder gives one that ``trimzoo.from_pretrained`` loads.

    python tools/prune.py --checkpoint=DIR --output=DIR --heads=0.5 \
        --ffn=0.25
    python tools/prune.py --checkpoint=DIR --output=DIR --heads=0,4,4,8 \
        --importance=magnitude
    python tools/prune.py --checkpoint=DIR --output=DIR --heads=0.5 \
        --scope=global --data=sentences.txt

Amounts: a fraction (``0.5`` prunes half, of each layer or, with
``--scope=global``, of the whole model), or comma-separated counts to
prune per layer (one int: the same count in every layer).
"""

import _common  # noqa: F401  (path and logging set-up)
from absl import app, flags

flags.DEFINE_string("checkpoint", None, "Checkpoint folder (HF BERT/RoBERTa, "
                    "keras-hub preset or trimzoo folder).")
flags.DEFINE_string("output", None, "Folder to write.")
flags.DEFINE_string("heads", None, "Heads to prune: fraction or per-layer "
                    "counts.")
flags.DEFINE_string("ffn", None, "FFN neurons to prune: fraction or "
                    "per-layer counts.")
flags.DEFINE_string("hidden", None, "Hidden dimensions to prune: fraction or "
                    "count.")
flags.DEFINE_enum("importance", "gradient", ["gradient", "magnitude"],
                  "How parts are ranked.")
flags.DEFINE_enum("scope", "layer", ["layer", "global"], "A fraction applies "
                  "to each layer or to the whole model.")
flags.DEFINE_string("data", None, "gradient: texts to score on: .txt (one "
                    "per line) or .csv/.tsv/.jsonl with --text_column. "
                    "Default: the task the folder was fine-tuned on "
                    "(RUN/config.json); the embedded reviews only for "
                    "--checkpoint=minilm.")
flags.DEFINE_string("text_column", "text", "--data: the text column.")
flags.DEFINE_string("label_column", None, "--data: a label column (a "
                    "classifier's class names); without one a classifier "
                    "is scored on its own predictions.")
flags.DEFINE_integer("max_examples", 512, "gradient: sentences used.")
flags.DEFINE_integer("sequence_length", 128, "gradient: token budget.")
flags.DEFINE_integer("batch_size", 32, "gradient: batch size.")
flags.DEFINE_integer("seed", 0, "Seed of the input corruption.")
flags.DEFINE_bool("overwrite", False, "Replace an existing --output.")
flags.mark_flags_as_required(["checkpoint", "output"])
FLAGS = flags.FLAGS


def parse_amount(value, flag):
    """``"0.5"`` -> 0.5; ``"2"`` -> 2; ``"0,4,4"`` -> [0, 4, 4]."""
    if value is None or value == "":
        return None
    try:
        if "," in value:
            return [int(v) for v in value.split(",")]
        return float(value) if "." in value else int(value)
    except ValueError:
        raise app.UsageError(
            f"--{flag}={value!r}: give a fraction (0.5), a count (2) or "
            "per-layer counts (0,4,4).") from None


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    amounts = {name: parse_amount(getattr(FLAGS, name), name)
               for name in ("heads", "ffn", "hidden")}
    if not any(amounts.values()):
        raise app.UsageError("Nothing to prune: pass --heads, --ffn or "
                             "--hidden.")
    from trimzoo.compression import prune_checkpoint

    def say(line):
        print(line, flush=True)

    report = prune_checkpoint(
        FLAGS.checkpoint, FLAGS.output, importance=FLAGS.importance,
        scope=FLAGS.scope, data=FLAGS.data, text_column=FLAGS.text_column,
        label_column=FLAGS.label_column,
        sequence_length=FLAGS.sequence_length, batch_size=FLAGS.batch_size,
        max_examples=FLAGS.max_examples, seed=FLAGS.seed,
        overwrite=FLAGS.overwrite, progress=say, **amounts)
    print(f"wrote a {report['kind']} folder"
          + (" (head sliced along, label names and task kept)"
             if report["kind"] == "classifier" else ""))
    kept = report["kept"]
    print(f"heads per layer: {[len(h) for h in kept['heads']]}")
    print("FFN neurons per layer: "
          f"{[None if n is None else len(n) for n in kept['ffn_neurons']]}")
    print(f"hidden: {len(kept['hidden_dims'])}")
    print(f"parameters: {report['params_before']} -> "
          f"{report['params_after']}")
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    _common.run(main)
