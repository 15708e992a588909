"""The end-to-end demo behind ``make demo`` (see ``tools/demo.py``)."""

import os
import time

import numpy as np

from trimzoo.utils.embedded import minilm_path
from trimzoo.utils.figures import pyplot
from trimzoo.data.rotten_tomatoes import load_split
from trimzoo.data.text_inputs import encode_fixed
from trimzoo.export import KerasRunner, TFLiteRunner, export_tflite_int8
from trimzoo.export.pipeline import app_file_line, app_file_summary
from trimzoo.export.benchmark import (keras_callable, median_latencies,
                                      tflite_callable)
from trimzoo.checkpoints import from_pretrained
from trimzoo.checkpoints.folders import load_text_classifier
from trimzoo.search.budget import Budget
from trimzoo.search.compressor import compress
from trimzoo.training.finetune import finetune
from trimzoo.utils import hardware
from trimzoo.utils.io import (read_json, save_figure,
                              write_json, write_text)

#: The demo's compression settings (``trimzoo.search.compress``), so the whole
#: demo stays within 15 minutes on 2 cores: the "small" space (depth 2 or
#: 4, half or all heads, a quarter or all FFN neurons), one candidate
#: healed (300 hidden-state steps, then two epochs of task distillation on
#: every training review). ``tools/compress.py``'s defaults search 191
#: candidates and heal three.
DEMO_COMPRESS = dict(space="small", k=1, max_measured=8, rounds=8,
                     heal_steps=300, train_examples=0, epochs=2)

#: The routes step 3 can take.
ROUTES = ("budget", "drop")

DEMO_STUDENTS = (
    # (row label, folder name, distilled)
    ("top-2 dropped, fine-tuned on labels", "minilm_top2", False),
    ("top-2 dropped, distilled from the teacher", "minilm_top2_distilled",
     True),
)


def _step(message):
    print(f"\n=== {message}", flush=True)


# Everything the demo writes in its folder (``trimzoo.utils.run_folder``).
OUTPUTS = ("runs", "compress", "tflite", "results.json", "report.md",
           "accuracy_latency.png")


def run_demo(out, make_config, train_examples=0, epochs=1,
             max_seq_length=64, export=True, teacher_learning_rate=1e-4,
             student_learning_rate=1e-4, labels_only_row=False,
             teacher_epochs=2, bucket_width=8, precision="auto",
             route="budget", speedup=2.0, compress_settings=None):
    """Runs every step and writes the report; returns the result rows.

    The story: fine-tune the embedded all-MiniLM-L6-v2 (the teacher, mean
    pooling as the checkpoint was trained), then (``route="budget"``)
    compress it to a model ``speedup`` times faster on this machine
    (``trimzoo.search.compress``: layers, heads, FFN neurons and hidden size cut
    together, healed by distillation, chosen on validation) or
    (``route="drop"``) cut its top 2 layers (Poor Man's BERT; the head
    comes along) and fine-tune that student with task distillation from
    the teacher (and on labels alone); export the last student to TFLite
    dynamic int8, time everything round-robin.

    Args:
        out: str. Output folder.
        make_config: callable returning a fresh fine-tuning ConfigDict for
            the embedded task (``configs/finetune.py``'s ``get_config``).
        train_examples: int. Training examples (0 = all).
        epochs: int. Epochs per student of ``route="drop"`` (the
            compressed model heals for ``DEMO_COMPRESS["epochs"]``).
        max_seq_length: int. Token budget per review.
        export: bool. Export the distilled model to TFLite dynamic int8.
        teacher_learning_rate: float. Defaults to 1e-4 (best on validation
            in docs/compression.md).
        student_learning_rate: float. Defaults to 1e-4.
        labels_only_row: bool. Also train the student on labels alone (the
            row that shows what distillation adds). Defaults to False (the
            demo then fits its 15-minute budget on 2 cores).
        teacher_epochs: int. The teacher's epochs. Defaults to 2.
        bucket_width: int. Batch reviews of similar length together
            (``data.bucket_width``; 0 = plain batches). Defaults to 8: one
            epoch takes about half the time of plain batches.
        precision: str. What the teacher trains in
            (``trimzoo.models.precision.PRECISIONS``). Defaults to
            ``"auto"``: bfloat16 on a CPU with bfloat16 units where a
            training step measures faster (over three seeds a bfloat16
            teacher measured 0.39 points under the float32 one,
            docs/benchmarks.md), else float32. The students train in
            float32; every model is timed in float32.
        route: str. ``"budget"`` (compress to ``speedup``) or ``"drop"``
            (the top-2 drop students). Defaults to ``"budget"``.
        speedup: float. The budget: times faster than the teacher (Keras
            float32, batch 1, ``max_seq_length`` tokens). Defaults to 2.
        compress_settings: dict or None. ``trimzoo.search.compress`` arguments
            over :data:`DEMO_COMPRESS`.
    """
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}.")
    if route == "budget" and not speedup > 1:
        raise ValueError(f"speedup must be > 1, got {speedup}.")
    os.makedirs(out, exist_ok=True)
    start = time.time()
    checkpoint = minilm_path()

    _step(f"1. Import the pretrained checkpoint {checkpoint}")
    backbone, tokenizer = from_pretrained(checkpoint)
    print(f"   {backbone.num_layers} layers, hidden {backbone.hidden_dim}, "
          f"{backbone.count_params():,} parameters")
    del backbone

    test_inputs, test_labels = encode_fixed(
        tokenizer, load_split("test"), max_seq_length)
    one = {k: v[:1] for k, v in test_inputs.items()}
    rows, calls = [], {}

    def train(label, name, configure):
        config = make_config()
        config.max_seq_length = max_seq_length
        config.train.epochs = epochs
        config.train.batch_size = 32
        config.data.max_train_examples = train_examples
        config.data.bucket_width = bucket_width
        configure(config)
        workdir = os.path.join(out, "runs", name)
        record = finetune(config, workdir)
        folder = os.path.join(workdir, "best")
        model = load_text_classifier(folder)
        calls[name] = keras_callable(KerasRunner(model).fn, one)
        rows.append({
            "model": label,
            "key": name,
            "folder": folder,
            "distilled": bool(record.get("distilled")),
            "layers": record["num_layers"],
            "params": model.backbone.count_params(),
            "test_accuracy": record["test"]["accuracy"],
            # The best epoch's (the one whose test accuracy is reported).
            "validation_accuracy": record["evals"][
                record["best"]["epoch"] - 1]["validation"]["accuracy"],
            "train_seconds": record["train_seconds"],
            "precision": record["precision"]["precision"],
            "precision_reason": record["precision"]["reason"],
        })
        print(f"   test accuracy {rows[-1]['test_accuracy']:.4f}"
              + (f" ({rows[-1]['test_accuracy'] / rows[0]['test_accuracy']:.1%}"
                 " of the teacher)" if len(rows) > 1 else ""), flush=True)
        return folder

    _step("2. Fine-tune all-MiniLM-L6-v2 on Rotten Tomatoes (the teacher)")

    def teacher_config(config):
        config.init_checkpoint = checkpoint
        # all-MiniLM-L6-v2 was trained as a mean-pooled sentence encoder;
        # its [CLS] pooler was not (measured in docs/compression.md).
        config.pooling = "mean"
        config.train.learning_rate = teacher_learning_rate
        config.train.epochs = teacher_epochs
        config.train.precision = precision

    teacher = train("all-MiniLM-L6-v2 (teacher)", "minilm", teacher_config)

    if route == "budget":
        _step(f"3. Compress the teacher to a budget: {speedup:g}x its Keras "
              "speed on this machine (layers, heads, FFN neurons and hidden "
              "size cut together, healed by distillation, chosen on "
              "validation)")
        settings = {**DEMO_COMPRESS, **(compress_settings or {})}
        if train_examples:  # Fewer than the demo's default.
            settings["train_examples"] = min(
                train_examples, settings["train_examples"] or train_examples)

        def healing_config():  # The students' batches, as the teacher's.
            config = make_config()
            config.train.batch_size = 32
            config.data.bucket_width = bucket_width
            return config

        results = compress(teacher, os.path.join(out, "compress"),
                           Budget(speedup=speedup), healing_config,
                           seq_len=max_seq_length, export=False, **settings)
        rows.append(compressed_row(results, speedup))
        model = load_text_classifier(results["model"])
        calls["compressed"] = keras_callable(KerasRunner(model).fn, one)
        print(f"   test accuracy {rows[-1]['test_accuracy']:.4f} "
              f"({rows[-1]['test_accuracy'] / rows[0]['test_accuracy']:.1%}"
              " of the teacher)", flush=True)

    for label, name, distilled in DEMO_STUDENTS if route == "drop" else ():
        if not distilled and not labels_only_row:
            continue
        _step(f"3. Poor Man's BERT: drop the top 2 layers of the fine-tuned "
              f"teacher, {'distil' if distilled else 'fine-tune on labels'}")

        def student_config(config, distilled=distilled):
            config.init_checkpoint = teacher
            config.drop_layers = "top:2"
            config.train.learning_rate = student_learning_rate
            if distilled:
                config.distill.teacher = teacher

        train(f"all-MiniLM-L6-v2, {label}", name, student_config)

    if export:
        _step(f"4. Export the {'compressed' if route == 'budget' else 'distilled'}"
              " model to TFLite (dynamic int8) behind the parity gate")
        row = rows[-1]
        path = export_tflite_int8(row["folder"], os.path.join(out, "tflite"),
                                  max_seq_length)
        row["tflite_int8_mb"] = os.path.getsize(path) / 1e6
        runner = TFLiteRunner(path)
        logits = runner(test_inputs)["logits"]
        row["tflite_int8_accuracy"] = float(
            np.mean(np.argmax(logits, -1) == test_labels))
        row.update(app_file_summary(os.path.join(out, "tflite")))
        for threads in sorted({1, os.cpu_count() or 1}):
            calls[("tflite", threads)] = tflite_callable(
                TFLiteRunner(path, num_threads=threads), one)

    _step(f"Timing every model round-robin (batch 1, {max_seq_length} "
          "tokens, median of 50; Keras and TFLite in separate rotations)")
    # Each runtime in its own rotation (see median_latencies).
    timings = median_latencies(calls, rounds=50, warmup=5,
                               rotation=lambda key: isinstance(key, tuple))
    for row in rows:
        row["keras_ms_b1"] = timings[row["key"]]["median_ms"]
        row["percent_of_teacher"] = (100 * row["test_accuracy"]
                                     / rows[0]["test_accuracy"])
    tflite = {k[1]: v["median_ms"] for k, v in timings.items()
              if isinstance(k, tuple)}
    if tflite:
        threads = min(tflite, key=tflite.get)
        rows[-1].update(tflite_int8_ms_b1=tflite[threads],
                        tflite_threads=threads)
    for row in rows:
        print(f"   {row['model']}: Keras {row['keras_ms_b1']:.2f} ms"
              + (f", TFLite int8 {row['tflite_int8_ms_b1']:.2f} ms"
                 if "tflite_int8_ms_b1" in row else ""))

    _step("5. Report")
    report = write_report(out, rows, max_seq_length, time.time() - start,
                          route=route)
    print(report)
    return rows


def compressed_row(results, speedup):
    """The demo's row of a ``trimzoo.search.compress`` run (its ``results.json``):
    the chosen model's accuracy on the splits compress scored.

    >>> results = {"chosen": "D4", "model": "/m", "minutes": 2.0,
    ...            "rows": [{"name": "D4", "num_layers": 4, "params": 10,
    ...                      "test_accuracy": 0.8, "speedup": 2.1,
    ...                      "validation_accuracy": 0.81}]}
    >>> row = compressed_row(results, 2)
    >>> row["model"], row["layers"], row["budget_speedup"]
    ('compressed to 2x: D4', 4, 2)
    """
    chosen = next(r for r in results["rows"]
                  if r["name"] == results["chosen"])
    return {
        "model": f"compressed to {speedup:g}x: {chosen['name']}",
        "key": "compressed",
        "folder": results["model"],
        "distilled": True,
        "layers": chosen["num_layers"],
        "params": chosen["params"],
        "test_accuracy": chosen["test_accuracy"],
        "validation_accuracy": chosen["validation_accuracy"],
        "budget_speedup": speedup,
        "speedup_when_chosen": chosen["speedup"],
        "compress_minutes": results["minutes"],
        "precision": "float32",
        "precision_reason": "compression trains in float32",
    }


def write_report(out, rows, max_seq_length, seconds, route="budget"):
    """``report.md``, ``results.json`` and ``accuracy_latency.png``.

    Examples:

    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> rows = [{"model": "m", "key": "m", "layers": 2, "params": 1000,
    ...          "distilled": True, "test_accuracy": 0.8,
    ...          "percent_of_teacher": 98.5, "keras_ms_b1": 1.5}]
    >>> text = write_report(out, rows, max_seq_length=64, seconds=60)
    >>> "| m | yes | 2 | 1,000 | 0.8000 | 98.5% | 1.50 | – | – | – |" in text
    True
    >>> load_results(out) == rows
    True
    """
    plt = pyplot()  # matplotlib is imported when the report is written

    write_json(os.path.join(out, "results.json"), {"rows": rows})
    header = ("| model | distilled | layers | parameters | test accuracy | "
              "% of teacher | Keras latency (ms, b=1) | "
              "TFLite int8 size (MB) | TFLite int8 accuracy | "
              "TFLite int8 latency (ms, b=1) |")
    if route == "budget":
        title = "all-MiniLM-L6-v2 compressed to a budget"
        students = (
            "The compressed model is the fine-tuned teacher cut to a "
            "speed-up budget by `trimzoo.search.compress` (depth, heads, FFN "
            "neurons and hidden size together, healed by distillation, "
            "chosen on validation; its run is in `compress/report.md`).")
    else:
        title = "Poor Man's BERT + distillation on all-MiniLM-L6-v2"
        students = (
            "The students are the fine-tuned teacher with its top 2 layers "
            "dropped, trained on labels alone or distilled from the "
            "teacher.")
    lines = [
        f"# trimzoo demo: {title}",
        "",
        "Fine-tuned on the embedded Rotten Tomatoes sentiment task "
        "(movie-disjoint split, see docs/data.md); test accuracy of the "
        f"best validation epoch. {students} Latency: median of 50 calls "
        f"timed round-robin in one run, batch 1, {max_seq_length} tokens, "
        "this machine.",
        "",
        header,
        "|" + "---|" * 10,
    ]

    def fmt(row, key, spec):
        return format(row[key], spec) if key in row else "–"

    for row in rows:
        lines.append(
            f"| {row['model']} | {'yes' if row.get('distilled') else 'no'} "
            f"| {row['layers']} | {row['params']:,} | "
            f"{row['test_accuracy']:.4f} | "
            f"{fmt(row, 'percent_of_teacher', '.1f')}% | "
            f"{row['keras_ms_b1']:.2f} | "
            f"{fmt(row, 'tflite_int8_mb', '.1f')} | "
            f"{fmt(row, 'tflite_int8_accuracy', '.4f')} | "
            f"{fmt(row, 'tflite_int8_ms_b1', '.2f')} |")
    lines += [app_file_line(row) for row in rows if "app_file" in row]
    trained = [f"{row['key']} {row['precision']} ({row['precision_reason']})"
               for row in rows if "precision" in row]
    if trained:
        lines += ["", "Training precision: " + "; ".join(trained) + ". CPU: "
                  + hardware.describe() + "."]
    lines += ["", f"Total time: {seconds / 60:.1f} min.", "",
              "![accuracy vs latency](accuracy_latency.png)", ""]
    report = "\n".join(lines)
    write_text(os.path.join(out, "report.md"), report)

    fig, ax = plt.subplots(figsize=(6, 4))
    for row in rows:
        ax.scatter(row["keras_ms_b1"], row["test_accuracy"], s=60)
        ax.annotate(f"{row['key']} Keras", (row["keras_ms_b1"],
                                                row["test_accuracy"]),
                    textcoords="offset points", xytext=(5, 5))
        if "tflite_int8_ms_b1" in row:
            ax.scatter(row["tflite_int8_ms_b1"], row["tflite_int8_accuracy"],
                       marker="s", s=60)
            ax.annotate(f"{row['key']} TFLite int8",
                        (row["tflite_int8_ms_b1"],
                         row["tflite_int8_accuracy"]),
                        textcoords="offset points", xytext=(5, -12))
    ax.set_xlabel(f"median latency, batch 1, {max_seq_length} tokens (ms)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Rotten Tomatoes: accuracy vs latency")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, os.path.join(out, "accuracy_latency.png"), dpi=120)
    plt.close(fig)
    return report


def load_results(out):
    """The result rows of a demo run written to ``out``."""
    return read_json(os.path.join(out, "results.json"))["rows"]
