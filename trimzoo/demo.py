"""The end-to-end demo behind ``make demo`` (see ``tools/demo.py``)."""

import json
import os
import time

import numpy as np

from trimzoo.training.checkpointing import write_json

DEMO_MODELS = (
    # (row label, folder name, drop_layers spec)
    ("all-MiniLM-L6-v2", "minilm", ""),
    ("all-MiniLM-L6-v2, top-2 dropped (Poor Man's BERT)", "minilm_top2",
     "top:2"),
)


def _step(message):
    print(f"\n=== {message}", flush=True)


def latency_inputs(tokenizer, texts, max_seq_length, batch_size=1):
    """Batches of real text padded to ``max_seq_length`` (as served)."""
    from trimzoo.data import encode_dataset, get_task

    spec = get_task("rotten_tomatoes")
    examples = [(t, 0) for t in texts[:batch_size]]
    ds = encode_dataset(examples, tokenizer, spec,
                        max_seq_length=max_seq_length, batch_size=batch_size)
    features, _ = next(iter(ds))
    pad = max_seq_length - int(features["token_ids"].shape[1])
    return {k: np.pad(v.numpy(), ((0, 0), (0, pad)))
            for k, v in features.items()}


def keras_latency_ms(model, inputs):
    from trimzoo.bench.timing import keras_predictor, median_seconds

    predict = keras_predictor(model)
    return 1000 * median_seconds(lambda: predict(inputs), warmup=5, runs=30,
                                 min_seconds=2.0)


def run_demo(out, make_config, train_examples=4000, epochs=1,
             max_seq_length=64, export=True):
    """Runs every step and writes the report; returns the result rows.

    Args:
        out: str. Output folder.
        make_config: callable returning a fresh fine-tuning ConfigDict for
            the embedded task (``configs/finetune.py``'s ``get_config``).
        train_examples: int. Training examples (0 = all).
        epochs: int. Epochs per model.
        max_seq_length: int. Token budget per review.
        export: bool. Export the dropped model to TFLite dynamic int8.
    """
    import keras_hub

    from trimzoo.data.embedded import minilm_path
    from trimzoo.data.rotten_tomatoes import load_split
    from trimzoo.models import drop_layers, from_pretrained
    from trimzoo.training.finetune import finetune

    os.makedirs(out, exist_ok=True)
    start = time.time()
    checkpoint = minilm_path()

    _step(f"1. Import the pretrained checkpoint {checkpoint}")
    backbone, tokenizer = from_pretrained(checkpoint)
    print(f"   {backbone.num_layers} layers, hidden {backbone.hidden_dim}, "
          f"{backbone.count_params():,} parameters")
    _step("2. Poor Man's BERT: drop the top 2 layers")
    small = drop_layers(backbone, strategy="top", k=2)
    print(f"   {small.num_layers} layers, {small.count_params():,} parameters "
          f"({1 - small.count_params() / backbone.count_params():.1%} fewer)")
    del backbone, small

    test_texts = [text for text, _ in load_split("test")]
    rows = []
    for label, name, drop in DEMO_MODELS:
        _step(f"3. Fine-tune {label} on Rotten Tomatoes")
        config = make_config()
        config.init_checkpoint = checkpoint
        config.drop_layers = drop
        config.max_seq_length = max_seq_length
        config.train.epochs = epochs
        config.train.batch_size = 32
        config.train.learning_rate = 5e-5
        config.data.max_train_examples = train_examples
        workdir = os.path.join(out, "runs", name)
        record = finetune(config, workdir)
        model = keras_hub.models.TextClassifier.from_preset(
            os.path.join(workdir, "best"))
        inputs = latency_inputs(tokenizer, test_texts, max_seq_length)
        rows.append({
            "model": label,
            "folder": os.path.join(workdir, "best"),
            "layers": record["num_layers"],
            "params": model.backbone.count_params(),
            "test_accuracy": record["test"]["accuracy"],
            "validation_accuracy": record["evals"][-1]["validation"][
                "accuracy"],
            "keras_ms_b1": keras_latency_ms(model, inputs),
            "train_seconds": record["train_seconds"],
        })
        print(f"   test accuracy {rows[-1]['test_accuracy']:.4f}, "
              f"latency {rows[-1]['keras_ms_b1']:.2f} ms (batch 1, "
              f"{max_seq_length} tokens)")

    if export:
        _step("4. Export the dropped model to TFLite (dynamic int8) with the "
              "parity gate")
        rows[-1].update(_export_tflite(rows[-1]["folder"],
                                       os.path.join(out, "tflite"),
                                       max_seq_length))

    _step("5. Report")
    report = write_report(out, rows, max_seq_length, time.time() - start)
    print(report)
    return rows


def _export_tflite(folder, output, max_seq_length):
    from trimzoo.export import export_model

    result = export_model(folder, output, formats=("tflite",),
                          quantize=("dynamic",), seq_len=max_seq_length,
                          benchmark=True)
    entry = result["tflite_dynamic"]
    return {
        "tflite_int8_mb": entry["size_bytes"] / 1e6,
        "tflite_int8_ms_b1": entry["latency_ms_b1"],
        "tflite_int8_accuracy": entry["accuracy"],
        "tflite_int8_label_agreement": entry["label_agreement"],
    }


def write_report(out, rows, max_seq_length, seconds):
    """``report.md``, ``results.json`` and ``accuracy_latency.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    write_json(os.path.join(out, "results.json"), {"rows": rows})
    header = ("| model | layers | parameters | test accuracy | "
              "Keras latency (ms, b=1) | TFLite int8 size (MB) | "
              "TFLite int8 accuracy | TFLite int8 latency (ms, b=1) |")
    lines = [
        "# trimzoo demo: Poor Man's BERT on all-MiniLM-L6-v2",
        "",
        "Fine-tuned on the embedded Rotten Tomatoes sentiment task "
        "(movie-disjoint split, see docs/data.md); test accuracy of the "
        "best validation epoch. Latency: median, batch 1, "
        f"{max_seq_length} tokens, this machine.",
        "",
        header,
        "|" + "---|" * 8,
    ]

    def fmt(row, key, spec):
        return format(row[key], spec) if key in row else "–"

    for row in rows:
        lines.append(
            f"| {row['model']} | {row['layers']} | {row['params']:,} | "
            f"{row['test_accuracy']:.4f} | {row['keras_ms_b1']:.2f} | "
            f"{fmt(row, 'tflite_int8_mb', '.1f')} | "
            f"{fmt(row, 'tflite_int8_accuracy', '.4f')} | "
            f"{fmt(row, 'tflite_int8_ms_b1', '.2f')} |")
    lines += ["", f"Total time: {seconds / 60:.1f} min.", "",
              "![accuracy vs latency](accuracy_latency.png)", ""]
    report = "\n".join(lines)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(report)

    fig, ax = plt.subplots(figsize=(6, 4))
    for row in rows:
        ax.scatter(row["keras_ms_b1"], row["test_accuracy"], s=60)
        ax.annotate(f"{row['layers']}L Keras", (row["keras_ms_b1"],
                                                row["test_accuracy"]),
                    textcoords="offset points", xytext=(5, 5))
        if "tflite_int8_ms_b1" in row:
            ax.scatter(row["tflite_int8_ms_b1"], row["tflite_int8_accuracy"],
                       marker="s", s=60)
            ax.annotate(f"{row['layers']}L TFLite int8",
                        (row["tflite_int8_ms_b1"],
                         row["tflite_int8_accuracy"]),
                        textcoords="offset points", xytext=(5, -12))
    ax.set_xlabel(f"median latency, batch 1, {max_seq_length} tokens (ms)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Rotten Tomatoes: accuracy vs latency")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "accuracy_latency.png"), dpi=120)
    plt.close(fig)
    return report


def load_results(out):
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)["rows"]
