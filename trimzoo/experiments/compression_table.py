"""The compression table: every way trimzoo offers to get a smaller model
from a fine-tuned one, each fine-tuned with and without task distillation
from it, measured in one run (accuracy, parameters, latency).

``compression_table`` is the library behind ``tools/compression_table.py``. Each
method cuts a student from the teacher classifier by weight inheritance
(``trimzoo.models.extract`` and the procedures built on it), saves it as a
classifier folder and fine-tunes it (``trimzoo.training.finetune``) with
``init_checkpoint`` set to that folder, once on labels alone and once with
``distill.teacher`` set to the teacher. Latencies of the teacher and of
every student architecture are timed round-robin in one process (Keras
float32 and TFLite dynamic int8, batch 1), so ratios are comparable even on
a busy machine.
"""

import math
import os
import time

import numpy as np

from trimzoo.compression import prune
from trimzoo.data import encode_dataset, get_task
from trimzoo.utils.embedded import minilm_path
from trimzoo.data.rotten_tomatoes import load_split
from trimzoo.data.text_inputs import encode_fixed
from trimzoo.export import KerasRunner, TFLiteRunner, export_tflite_int8
from trimzoo.export.benchmark import (keras_callable, median_latencies,
                                      tflite_callable)
from trimzoo.checkpoints import from_pretrained, save_pretrained
from trimzoo.models import extract, to_trimbert
from trimzoo.models.layer_drop import drop_plan
from trimzoo.models.tokenizers import load_tokenizer
from trimzoo.training import pretrain
from trimzoo.checkpoints.folders import (load_classifier_folder,
                                        save_classifier)
from trimzoo.training.finetune import finetune
from trimzoo.utils.figures import pyplot
from trimzoo.utils.io import save_figure, write_json, write_text



# Everything the table writes in its folder (``trimzoo.utils.run_folder``).
OUTPUTS = ("teacher", "students", "heal", "runs", "tflite", "results.json",
           "table.md", "accuracy_latency.png")


def _top(teacher, data, k=2):
    layers = list(range(teacher.backbone.num_layers - k))
    return extract(teacher, layers=layers), {"kept_layers": layers}


def _contribution(teacher, data, k=2):
    plan = drop_plan(teacher.backbone, strategy="contribution", k=k,
                     data=[x for x, _ in data])
    return extract(teacher, layers=plan["kept"]), {
        "kept_layers": plan["kept"],
        "similarities": [round(float(s), 4) for s in plan["similarities"]]}


def _prune(amount, hidden=None):
    def build(teacher, data):
        model, report = prune(teacher, heads=amount, ffn=amount,
                              hidden=hidden, data=data, return_scores=True)
        return model, {"kept": report["kept"]}
    return build


def _hidden(fraction):
    def build(teacher, data):
        model, report = prune(teacher, hidden=fraction, data=data,
                              return_scores=True)
        return model, {"hidden_dim": model.backbone.hidden_dim}
    return build


def _trimbert(teacher, data):
    return to_trimbert(teacher), {
        "ffn_layers": "every_3", "layer_norm": "one_per_block",
        "attention_normalizer": "sigmoid"}


#: Methods whose student is healed in pretraining before fine-tuning.
HEALED = ("trimbert_healed",)

#: key -> (row label, builder(teacher, data) -> (student, note)).
METHODS = {
    "top2": ("top-2 layers dropped (Poor Man's BERT)", _top),
    "contribution2": ("2 layers dropped by contribution (Poor Man's BERT)",
                      _contribution),
    "prune50": ("50% heads + 50% FFN neurons pruned (gradient importance)",
                _prune(0.5)),
    "prune25": ("25% heads + 25% FFN neurons pruned (gradient importance)",
                _prune(0.25)),
    "hidden256": ("hidden size 384 -> 256 (Bort's H, gradient importance)",
                  _hidden(1 / 3)),
    "trimbert": ("TrimBERT conversion (FFN every 3rd layer, one layernorm "
                 "per block, sigmoid attention)", _trimbert),
    "trimbert_healed": ("TrimBERT conversion, healed in pretraining "
                        "(hidden-state distillation)", _trimbert),
}
DEFAULT_METHODS = tuple(METHODS)


def parse_methods(value):
    """``"top2,prune50"`` (or a list) -> a tuple of method keys.

    Examples:

    >>> parse_methods("top2, prune50")
    ('top2', 'prune50')
    >>> parse_methods("top3")
    Traceback (most recent call last):
    ...
    ValueError: Unknown compression method 'top3'. Valid: [...].
    """
    keys = [k.strip() for k in (value.split(",") if isinstance(value, str)
                                else value) if k.strip()]
    for key in keys:
        if key not in METHODS:
            raise ValueError(f"Unknown compression method {key!r}. Valid: "
                             f"{list(METHODS)}.")
    if not keys:
        raise ValueError("No compression method given.")
    return tuple(keys)


def finetune_teacher(workdir, make_config, epochs=2, learning_rate=1e-4,
                     train_examples=0, max_seq_length=64, pooling="mean",
                     bucket_width=0):
    """Fine-tunes the embedded all-MiniLM-L6-v2 on the embedded task (the
    teacher of the table); returns its ``best/`` folder. Mean pooling: the
    checkpoint was trained as a mean-pooled sentence encoder."""
    config = make_config()
    config.init_checkpoint = minilm_path()
    config.pooling = pooling
    config.max_seq_length = max_seq_length
    config.train.epochs = epochs
    config.train.learning_rate = learning_rate
    config.data.max_train_examples = train_examples
    config.data.bucket_width = bucket_width
    finetune(config, workdir)
    return os.path.join(workdir, "best")


def heal(student, teacher_dir, tokenizer, workdir, make_pretrain_config,
         steps=300, batch_size=32, max_seq_length=64, learning_rate=1e-4):
    """Heals a classifier ``student`` cut from the teacher in pretraining:
    ``tools/pretrain.py`` with ``init_checkpoint`` = the student's backbone
    and ``distill.teacher`` = ``teacher_dir``, matching the teacher's hidden
    states alone (hidden_weight 1, alpha 0: the teacher has no masked-LM
    head) on the embedded corpus (the task's training reviews, no labels).
    Returns the student with the healed backbone and its own head, and the
    pretraining summary. A re-run resumes the heal in ``workdir``."""
    init = os.path.join(workdir, "init")
    if not os.path.isdir(init):
        save_pretrained(student.backbone, tokenizer, init)
    config = make_pretrain_config()
    config.init_checkpoint = init
    config.distill.teacher = teacher_dir
    config.distill.hidden_weight = 1.0
    config.distill.alpha = 0.0
    config.data.max_seq_length = max_seq_length
    config.train.batch_size = batch_size
    config.train.steps = steps
    config.train.warmup_steps = max(1, steps // 10)
    config.train.learning_rate = learning_rate
    config.train.log_every = max(1, steps // 10)
    summary = pretrain.run(config, os.path.join(workdir, "run"))
    healed, _ = from_pretrained(summary["final"])
    student.backbone.set_weights(healed.get_weights())
    return student, summary


def importance_data(tokenizer, num_examples=256, max_seq_length=64,
                    batch_size=32):
    """Labelled training batches for importance scores and contribution."""
    examples = load_split("train")[:num_examples]
    ds = encode_dataset(examples, tokenizer, get_task("rotten_tomatoes"),
                        max_seq_length=max_seq_length, batch_size=batch_size)
    return list(ds.as_numpy_iterator())


def compression_table(out, teacher_dir, make_config, methods=DEFAULT_METHODS,
                      distill=(False, True), train_examples=0, epochs=1,
                      learning_rate=1e-4, max_seq_length=64, export=True,
                      rounds=30, make_pretrain_config=None, heal_steps=300,
                      bucket_width=0):
    """Cuts, fine-tunes, times and reports every method; returns the rows.

    Args:
        out: str. Output folder (runs are resumed on a re-run).
        teacher_dir: str. The fine-tuned teacher classifier (``RUN/best``).
        make_config: callable returning a fresh fine-tuning ConfigDict for
            the embedded task (``configs/finetune.py``'s ``get_config``).
        methods: keys of ``METHODS``.
        distill: which variants to train: False (labels), True (task
            distillation from the teacher).
        train_examples: int. Training examples (0 = all).
        epochs: int. Fine-tuning epochs per student.
        learning_rate: float.
        max_seq_length: int.
        export: bool. Also time TFLite dynamic int8 files.
        rounds: int. Timed calls per model.
        make_pretrain_config: callable returning a fresh pretraining
            ConfigDict (``configs/pretrain.py``'s ``get_config``); needed by
            the methods in ``HEALED``.
        heal_steps: int. Pretraining steps of a heal (batch 32).
        bucket_width: int. The students' ``data.bucket_width`` (0 = plain
            batches).
    """
    healed = [key for key in methods if key in HEALED]
    if healed and make_pretrain_config is None:
        raise ValueError(f"Methods {healed} heal in pretraining: pass "
                         "make_pretrain_config.")
    start = time.time()
    os.makedirs(out, exist_ok=True)
    teacher = load_classifier_folder(teacher_dir)
    tokenizer = load_tokenizer(teacher_dir)
    data = importance_data(tokenizer, max_seq_length=max_seq_length)
    test_inputs, test_labels = encode_fixed(tokenizer, load_split("test"),
                                            max_seq_length)
    teacher_accuracy = _accuracy(teacher, test_inputs, test_labels)
    print(f"teacher {teacher_dir}: test accuracy {teacher_accuracy:.4f}",
          flush=True)
    one = {k: v[:1] for k, v in test_inputs.items()}
    calls = {"teacher": keras_callable(KerasRunner(teacher).fn, one)}
    rows = [{"key": "teacher", "method": "teacher (fine-tuned, full)",
             "distilled": False, "folder": teacher_dir,
             "params": int(teacher.backbone.count_params()),
             "test_accuracy": teacher_accuracy}]
    for key in methods:
        label, build = METHODS[key]
        print(f"\n=== {label}", flush=True)
        folder = os.path.join(out, "students", key)
        student, note = build(teacher, data)
        if key in HEALED:
            student, summary = heal(
                student, teacher_dir, tokenizer,
                os.path.join(out, "heal", key), make_pretrain_config,
                steps=heal_steps, max_seq_length=max_seq_length)
            note = {**note, "heal_steps": heal_steps,
                    "heal_first_logged": summary.get("first_logged"),
                    "heal_last_logged": summary.get("last_logged")}
        if not os.path.isdir(folder):
            save_classifier(student, tokenizer, folder, overwrite=True)
        before = _accuracy(student, test_inputs, test_labels)
        calls[key] = keras_callable(KerasRunner(student).fn, one)
        for distilled in distill:
            name = key + ("_distilled" if distilled else "")
            config = make_config()
            config.init_checkpoint = folder
            config.max_seq_length = max_seq_length
            config.train.epochs = epochs
            config.train.learning_rate = learning_rate
            config.data.max_train_examples = train_examples
            config.data.bucket_width = bucket_width
            if distilled:
                config.distill.teacher = teacher_dir
            record = finetune(config, os.path.join(out, "runs", name))
            rows.append({
                "key": key, "method": label, "distilled": distilled,
                "folder": os.path.join(out, "runs", name, "best"),
                "params": int(student.backbone.count_params()),
                "layers": student.backbone.num_layers,
                "test_accuracy_before_training": before,
                "test_accuracy": record["test"]["accuracy"],
                "train_seconds": record["train_seconds"], **note})
            print(f"   {name}: test accuracy {rows[-1]['test_accuracy']:.4f}"
                  f" ({rows[-1]['test_accuracy'] / teacher_accuracy:.1%} of "
                  "the teacher)", flush=True)
    if export:
        # The trained folder of each architecture (the last run of it),
        # behind the parity gate on 256 validation examples.
        folders = {row["key"]: row["folder"] for row in rows}
        for key in ["teacher", *methods]:
            print(f"\n=== TFLite dynamic int8: {key}", flush=True)
            path = export_tflite_int8(folders[key],
                                 os.path.join(out, "tflite", key),
                                 max_seq_length, num_examples=256)
            calls[("tflite", key)] = tflite_callable(TFLiteRunner(path), one)
    print(f"\n=== Timing {len(calls)} models round-robin (batch 1, "
          f"{max_seq_length} tokens, median of {rounds})", flush=True)
    # Each runtime in its own rotation (see median_latencies).
    timings = median_latencies(calls, rounds=rounds, warmup=3,
                               rotation=lambda key: isinstance(key, tuple))
    for row in rows:
        row["keras_ms_b1"] = timings[row["key"]]["median_ms"]
        row["speedup"] = timings["teacher"]["median_ms"] / row["keras_ms_b1"]
        if ("tflite", row["key"]) in timings:
            row["tflite_int8_ms_b1"] = timings[("tflite", row["key"])][
                "median_ms"]
        row["percent_of_teacher"] = 100 * row["test_accuracy"] / (
            teacher_accuracy)
    write_json(os.path.join(out, "results.json"), {
        "rows": rows, "max_seq_length": max_seq_length, "epochs": epochs,
        "train_examples": train_examples, "learning_rate": learning_rate,
        "minutes": (time.time() - start) / 60})
    report = write_table(out, rows, max_seq_length, time.time() - start)
    print(report)
    return rows


def _accuracy(model, inputs, labels, batch_size=128):
    logits = model.predict(inputs, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == labels))


def write_table(out, rows, max_seq_length, seconds):
    """``table.md`` (a Markdown table) and ``accuracy_latency.png``.

    Examples:

    >>> import tempfile
    >>> rows = [{"method": "teacher", "distilled": False, "params": 10,
    ...          "test_accuracy": 0.8, "keras_ms_b1": 2.0, "speedup": 1.0,
    ...          "percent_of_teacher": 100.0, "key": "teacher"},
    ...         {"method": "top-2", "distilled": True, "params": 5,
    ...          "test_accuracy": 0.79, "keras_ms_b1": 1.0, "speedup": 2.0,
    ...          "percent_of_teacher": 98.75, "key": "top2",
    ...          "tflite_int8_ms_b1": 0.5, "test_accuracy_before_training": 0.6}]
    >>> print(write_table(tempfile.mkdtemp(), rows, 64, 60).splitlines()[-1])
    | top-2 | yes | 5 | 0.6000 | 0.7900 | 98.8% | 1.00 | 2.00× | 0.50 |
    """
    # Only the report draws; matplotlib is imported when it is written.
    plt = pyplot()

    lines = [
        "| method | distilled | parameters | test acc. before fine-tuning | "
        "test accuracy | % of teacher | Keras fp32 ms (b=1) | speed-up | "
        "TFLite int8 ms (b=1) |",
        "|" + "---|" * 9,
    ]

    def fmt(row, key, spec):
        value = row.get(key)
        return "–" if value is None or (isinstance(value, float)
                                        and math.isnan(value)) else format(
                                            value, spec)

    for row in rows:
        lines.append(
            f"| {row['method']} | {'yes' if row['distilled'] else 'no'} | "
            f"{row['params']:,} | "
            f"{fmt(row, 'test_accuracy_before_training', '.4f')} | "
            f"{row['test_accuracy']:.4f} | "
            f"{row['percent_of_teacher']:.1f}% | {row['keras_ms_b1']:.2f} | "
            f"{row['speedup']:.2f}× | "
            f"{fmt(row, 'tflite_int8_ms_b1', '.2f')} |")
    table = "\n".join(lines)
    write_text(os.path.join(out, "table.md"),
               table + f"\n\nTotal time: {seconds / 60:.1f} min.\n")

    # One colour per method (its labels-only and distilled rows share it),
    # the marker tells them apart; a legend instead of point labels, which
    # overlap where two rows of a method land close together.
    keys = list(dict.fromkeys(row["key"] for row in rows))
    colours = {k: plt.get_cmap("tab10")(i % 10) for i, k in enumerate(keys)}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, key, title in ((axes[0], "keras_ms_b1", "Keras float32"),
                           (axes[1], "tflite_int8_ms_b1",
                            "TFLite dynamic int8")):
        for row in rows:
            if row.get(key) is None:
                continue
            marker = "*" if row["key"] == "teacher" else (
                "o" if row["distilled"] else "x")
            ax.scatter(row[key], row["test_accuracy"], marker=marker,
                       s=90 if marker == "*" else 50,
                       color=colours[row["key"]])
        ax.set_xlabel(f"median latency, batch 1, {max_seq_length} tokens "
                      "(ms)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    handles = [plt.Line2D([], [], linestyle="", marker="s", markersize=8,
                          color=colours[k], label=k) for k in keys]
    fig.legend(handles=handles, loc="center right", fontsize=8,
               title="method", title_fontsize=8)
    fig.suptitle("Rotten Tomatoes: accuracy vs latency "
                 "(o distilled, x labels only, * teacher)")
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    save_figure(fig, os.path.join(out, "accuracy_latency.png"), dpi=120)
    plt.close(fig)
    return table
