"""Phase ``classifier``: a fine-tuned classifier folder
(``BenchmarkConfig.classifier``, e.g. ``RUN/best`` of
``tools/finetune.py``) in each precision of the run against float32: the
labels it predicts on the embedded Rotten Tomatoes test split (agreement
with float32's, accuracy against the split's labels) and its speed at
batch 1 and ``batch_size`` on texts of that split cut by its own
preprocessor, round-robin.

``results["classifier"]`` holds ``folder``, ``examples``,
``sequence_length`` and per precision ``agreement``, ``accuracy``,
``max_abs_diff`` (of the logits from float32's), ``infer_ms_bB`` and
``infer_ratio_bB`` (float32 time / the precision's).
"""

import numpy as np
import tensorflow as tf

from trimzoo.bench import workloads
from trimzoo.data.rotten_tomatoes import load_split
from trimzoo.utils import timing
from trimzoo.checkpoints.folders import load_text_classifier

#: Texts per model call of the label comparison.
PREDICT_BATCH = 32


def load_classifier(folder):
    """The task model of a fine-tuned classifier folder, with its
    preprocessor."""
    return load_text_classifier(folder)


def predicted_logits(model, inputs, batch_size=PREDICT_BATCH):
    """The logits ``model`` predicts for preprocessed ``inputs`` (a dict
    of ``[n, seq]`` tensors), ``batch_size`` rows per call."""
    fn = tf.function(lambda x: model(x, training=False),
                     reduce_retracing=True)
    n = int(inputs["token_ids"].shape[0])
    return np.concatenate([
        fn({k: v[i:i + batch_size] for k, v in inputs.items()}).numpy()
        for i in range(0, n, batch_size)]).astype("float32")


def run(ctx):
    cfg = ctx.config
    model = load_classifier(cfg.classifier)
    split = load_split("test")
    if cfg.classifier_examples:
        split = split[:cfg.classifier_examples]
    texts = [text for text, _ in split]
    gold = np.array([label for _, label in split])
    models = {p: workloads.in_precision(model, p) for p in ctx.precisions}
    out = {"folder": cfg.classifier, "examples": len(texts),
           "sequence_length": model.preprocessor.sequence_length,
           "precisions": {}}
    inputs = model.preprocessor(texts)
    logits = {}
    for precision, m in ctx.each(models.items(), "classifier labels"):
        logits[precision] = predicted_logits(m, inputs)
        labels = logits[precision].argmax(-1)
        out["precisions"][precision] = {
            "agreement": float(np.mean(
                labels == logits["float32"].argmax(-1))),
            "accuracy": float(np.mean(labels == gold)),
            "max_abs_diff": float(np.max(np.abs(
                logits[precision] - logits["float32"])))}
    for batch in sorted({1, cfg.batch_size}):
        x = model.preprocessor(texts[:batch])
        calls = {p: workloads.inference_call(m, x) for p, m in models.items()}
        times = ctx.rounds(calls, cfg.infer_rounds,
                           f"classifier batch {batch}",
                           phase=f"classifier_b{batch}")
        for precision, t in times.items():
            entry = out["precisions"][precision]
            entry[f"infer_ms_b{batch}"] = 1000 * timing.median(t)
            entry[f"infer_ratio_b{batch}"] = timing.median_ratio(
                times["float32"], t)
    ctx.results["classifier"] = out
