r"""Predict on a file of text with a fine-tuned classifier, an embedder (or
any checkpoint: mean-pooled embeddings), a SavedModel or a .tflite file.

    python tools/predict.py --model=/tmp/rt/best --input=reviews.csv \
        --text_column=text --output=predictions.csv
    python tools/predict.py --model=/tmp/rt/best --input=test.jsonl \
        --output=out.jsonl --evaluate --label_column=label
    python tools/predict.py --model=EXPORT/text_classifier_dynamic_int8.tflite \
        --input=lines.txt --output=out.csv
    python tools/predict.py --model=EXPORT/model_float32.tflite \
        --input=lines.txt --output=out.csv
    python tools/predict.py --model=CHECKPOINT --input=lines.txt \
        --output=embeddings.npy
    python tools/predict.py --model=/tmp/rt/best --input=reviews.csv \
        --output=predictions.csv --precision=auto

Inputs: .csv/.tsv (with a header), .jsonl, .txt (one text per line).
Outputs: .csv/.jsonl (row number from 1, the text or --id_column, label,
its probability, every class's) or .npy (embeddings), written under a
temporary name and renamed when complete; an existing output is replaced
only with --overwrite, and never the input. A bad row (empty text, not
UTF-8, missing value) stops the run with its line number, or with
--skip_bad_rows is reported and skipped.
"""

import json
import sys

import _common  # noqa: F401  (path and logging set-up)
from absl import app, flags

flags.DEFINE_string("model", None, "Model folder, SavedModel folder or "
                    ".tflite file.")
flags.DEFINE_string("input", None, "Input file: .csv, .tsv, .jsonl or .txt.")
flags.DEFINE_string("output", None, "Output file: .csv or .jsonl "
                    "(classifiers), .npy (embeddings).")
flags.DEFINE_string("text_column", "text", "Column (JSON key) of the text.")
flags.DEFINE_string("text_pair_column", None, "Column of the second text of "
                    "a pair.")
flags.DEFINE_string("label_column", None, "Column of the labels "
                    "(--evaluate).")
flags.DEFINE_string("id_column", None, "Column written beside each "
                    "prediction instead of the text (e.g. an id).")
flags.DEFINE_bool("overwrite", False, "Replace an existing --output.")
flags.DEFINE_bool("evaluate", False, "Print the metrics against "
                  "--label_column.")
flags.DEFINE_bool("skip_bad_rows", False, "Report and skip bad rows instead "
                  "of stopping at the first.")
flags.DEFINE_string("tokenizer", None, "Token-ids-in exports: the model "
                    "folder they came from; default: the tokenizer/ copy "
                    "beside them (labels from export_report.json). Refused "
                    "when its vocabulary differs from the export's. Files "
                    "with MediaPipe metadata (text_classifier_*.tflite) "
                    "need none.")
flags.DEFINE_integer("batch_size", 32, "Rows per model call.", lower_bound=1)
flags.DEFINE_integer("sequence_length", 128, "Token budget of token-ids-in "
                     "exports (at least 8).", lower_bound=8)
flags.DEFINE_bool("force", False, "Use an export that failed its parity "
                  "gate (export_report.json beside it) anyway.")
flags.DEFINE_string("precision", "float32", "What a model folder computes "
                    "in (trimzoo.models.precision.PRECISIONS): float32, "
                    "bfloat16 (the same float32 weights, bfloat16 "
                    "arithmetic) or auto (bfloat16 only where this CPU has "
                    "bfloat16 units and it measures faster). Exports run as "
                    "exported: float32 only. Keras int8 is not offered: "
                    "slower than float32 on CPUs (docs/benchmarks.md); for "
                    "int8 export to TFLite.")
flags.mark_flags_as_required(["model", "input", "output"])
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if FLAGS.evaluate and not FLAGS.label_column:
        raise app.UsageError("--evaluate needs --label_column.")
    from trimzoo.predict import check_output, load_predictor, predict_file

    # Before the model loads: a refused output costs nothing.
    check_output(FLAGS.input, FLAGS.output, FLAGS.overwrite)
    predictor = load_predictor(
        FLAGS.model, tokenizer=FLAGS.tokenizer, batch_size=FLAGS.batch_size,
        sequence_length=FLAGS.sequence_length, force=FLAGS.force,
        precision=FLAGS.precision)
    print(f"{predictor.kind} from {predictor.source}"
          + (f"; labels {list(predictor.label_names)}"
             if predictor.label_names else "")
          + f"; precision {predictor.precision}"
          + (f" ({predictor.precision_reason})"
             if predictor.precision_reason != predictor.precision else ""),
          file=sys.stderr)
    try:
        result = predict_file(
            predictor, FLAGS.input, FLAGS.output,
            text_column=FLAGS.text_column,
            text_pair_column=FLAGS.text_pair_column,
            label_column=FLAGS.label_column, id_column=FLAGS.id_column,
            evaluate=FLAGS.evaluate, skip_bad_rows=FLAGS.skip_bad_rows,
            batch_size=FLAGS.batch_size, overwrite=FLAGS.overwrite)
    finally:
        predictor.close()
    print(f"wrote {result['rows']} rows to {FLAGS.output}"
          + (f"; skipped {len(result['skipped'])} bad rows"
             if result["skipped"] else ""))
    if "metrics" in result:
        print("metrics: " + json.dumps(
            {k: round(v, 4) for k, v in result["metrics"].items()}))
    return 0


if __name__ == "__main__":
    _common.run(main)
