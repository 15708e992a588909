r"""Export a trimzoo model to SavedModel and TFLite, with the parity gate.

    python tools/export.py --model=FOLDER --output=DIR \
        --formats=saved_model,tflite --quantize=none,float16,dynamic,int8 \
        --seq_len=128 --benchmark

FOLDER is a backbone or fine-tuned classifier folder (any preset or
checkpoint folder). Every export is compared with the Keras model on real
text; the numbers go to DIR/export_report.json and the run fails (exit
status 1) if an export exceeds its limits. Each TFLite variant that passes
also gets the file an app runs as is (text_classifier_<variant>.tflite, or
text_embedder_<variant>.tflite for a backbone: MediaPipe task metadata,
checked in MediaPipe's own task). See docs/export.md.
"""

import logging

import _common  # noqa: F401  (path and logging set-up)
from absl import app, flags
from absl import logging as absl_logging

flags.DEFINE_string("model", None, "Model folder: a backbone or fine-tuned "
                    "classifier preset, or a HF BERT/RoBERTa checkpoint.")
flags.DEFINE_string("output", None, "Output folder for the exports and "
                    "export_report.json.")
flags.DEFINE_string("formats", "saved_model,tflite",
                    "Comma-separated: saved_model, tflite.")
flags.DEFINE_string("quantize", "none", "Comma-separated TFLite variants: "
                    "none (float32), float16, dynamic (dynamic-range int8), "
                    "int8 (full integer, calibrated on real text).")
flags.DEFINE_integer("seq_len", None, "Fixed TFLite sequence length (static "
                     "[1, seq_len] inputs, fastest; at least 8); unset for a "
                     "dynamic length (the app files then use 128).",
                     lower_bound=8)
flags.DEFINE_boolean("benchmark", False, "Print size and median latency "
                     "(batch 1 and 8) of every format next to the Keras "
                     "model (float32 and Keras quantize('int8')).")
flags.DEFINE_string("tokenizer", None, "Tokenizer folder for the real-text "
                    "parity inputs and the text-in SavedModel; defaults to "
                    "the model folder's.")
flags.DEFINE_boolean("overwrite", False, "Export into a non-empty --output, "
                     "replacing the files of an earlier export there.")
flags.DEFINE_string("data", None, "Your texts for the parity gate and int8 "
                    "calibration: .txt (one per line) or .csv/.tsv/.jsonl "
                    "with --text_column (and --label_column for accuracy). "
                    "Default: the task a fine-tuned folder records "
                    "(RUN/config.json); the embedded movie reviews for the "
                    "embedded checkpoint.")
flags.DEFINE_string("text_column", "text", "--data: the text column.")
flags.DEFINE_boolean("app_files", True, "Also write the files an app runs as "
                     "is: text_classifier_<variant>.tflite (classifiers) or "
                     "text_embedder_<variant>.tflite (backbones), with "
                     "MediaPipe task metadata (vocabulary, labels), checked "
                     "in MediaPipe's TextClassifier/TextEmbedder. "
                     "--noapp_files writes the token-id files only.")
flags.DEFINE_string("label_column", None, "--data: the label column (the "
                    "classifier's class names or ids).")
flags.mark_flags_as_required(["model", "output"])
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from trimzoo.export import (
        FORMATS,
        QUANTIZE_MODES,
        export_model,
        parse_list,
    )

    # Progress lines from trimzoo; TensorFlow's own INFO lines are noise.
    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("trimzoo").setLevel(logging.INFO)
    try:
        formats = parse_list(FLAGS.formats, FORMATS, "--formats")
        quantize = parse_list(FLAGS.quantize, QUANTIZE_MODES, "--quantize")
    except ValueError as err:
        raise app.UsageError(str(err))
    report = export_model(
        FLAGS.model, FLAGS.output, formats=formats, quantize=quantize,
        seq_len=FLAGS.seq_len, benchmark=FLAGS.benchmark,
        tokenizer=FLAGS.tokenizer, overwrite=FLAGS.overwrite,
        data=FLAGS.data, text_column=FLAGS.text_column,
        label_column=FLAGS.label_column, app_files=FLAGS.app_files)
    print(f"Parity data: {report['parity_data']['source']}")
    for entry in report["exports"]:
        parity = entry["parity"]
        print(f"{entry['format']:<22} {entry['size_bytes'] / 1e6:8.2f} MB  "
              f"max abs diff {parity['metrics']['max_abs_diff']:.3g}  "
              f"{'ok' if parity['passed'] else 'FAILED'}"
              + (f"  MediaPipe {entry['latency_ms_per_text']['mediapipe_task']:.2f}"
                 " ms a text" if "latency_ms_per_text" in entry else ""))
    refused = (report.get("app_files") or {}).get("refused")
    if refused:
        print(f"No app files (MediaPipe metadata): {refused}.")
    print(f"Parity gate passed; report: {FLAGS.output}/export_report.json")
    return 0


if __name__ == "__main__":
    _common.run(main)
