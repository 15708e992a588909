"""Do the fast tests bite? Applies each mutation below to the code alone,
runs the fast-tier tests named for it, and checks that they fail.

    .venv/bin/python tests/mutations.py            # every mutation
    .venv/bin/python tests/mutations.py sigmoid    # those whose name matches

Each mutation is an exact text replacement in one file; the file is
restored afterwards (also on Ctrl-C). The unmutated tests are run first and
must pass. The table it prints is the one in docs/testing.md.
"""

import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (name, file, original text, mutated text, fast-tier tests that must fail)
MUTATIONS = [
    ("app file: MediaPipe's token ids taken as ours (no difference counted)",
     "trimzoo/export/app_file.py",
     "ok = np.array_equal(theirs, ours)",
     "ok = True",
     ["tests/test_app_file.py::"
      "test_tokenisation_differences_are_counted_by_cause"]),
    ("predict takes a --tokenizer of another vocabulary",
     "trimzoo/predict.py",
     "if (found[\"size\"], found[\"sha256\"]) != (",
     "if False and (found[\"size\"], found[\"sha256\"]) != (",
     ["tests/test_app_file.py::"
      "test_predict_refuses_a_tokenizer_of_another_vocabulary"]),
    ("KD loss: T^2 -> T (classifier distillation)",
     "trimzoo/training/losses.py",
     "loss = alpha * ce + (1.0 - alpha) * temperature ** 2 * kd",
     "loss = alpha * ce + (1.0 - alpha) * temperature * kd",
     ["tests/test_task_distillation.py::test_trained_objective_equals_numpy"]),
    ("sigmoid normaliser without its -log n shift",
     "trimzoo/layers/normalizers.py",
     "return ops.sigmoid(scores - shift) * ops.cast(mask, scores.dtype)",
     "return ops.sigmoid(scores) * ops.cast(mask, scores.dtype)",
     ["tests/test_layers.py"]),
    ("`top` drop strategy drops the bottom layers",
     "trimzoo/models/layer_drop.py",
     "dropped = range(num_layers - k, num_layers)",
     "dropped = range(k)",
     ["tests/test_layer_drop.py"]),
    ("pruning keeps the least important heads/neurons",
     "trimzoo/compression/prune.py",
     "order = np.argsort(-np.asarray(s), kind=\"stable\")",
     "order = np.argsort(np.asarray(s), kind=\"stable\")",
     ["tests/test_prune.py"]),
    ("masking 25% instead of 15% (the masking default)",
     "trimzoo/models/preprocessors.py",
     "MASK_RATE = 0.15",
     "MASK_RATE = 0.25",
     ["tests/test_pretrain.py::test_masking_rules_and_rates"]),
    ("masking 25% in configs/pretrain.py (data.mask_rate)",
     "configs/pretrain.py",
     "config.data.mask_rate = MASK_RATE",
     "config.data.mask_rate = 0.25",
     ["tests/test_pretrain.py::test_every_config_masks_bert_rates"]),
    ("TFLite parity gate ignores its tolerance",
     "trimzoo/export/parity.py",
     "ok = value <= limit if kind == \"max\" else value >= limit",
     "ok = True",
     ["tests/test_export.py"]),
    ("pretraining resume skips the optimizer state",
     "trimzoo/training/loop.py",
     "model=task.model, optimizer=optimizer, step=self.step,",
     "model=task.model, step=self.step,",
     ["tests/test_run_reliability.py::"
      "test_interrupted_pretraining_resumes_exactly"]),
    ("fine-tuning resume skips the optimizer state",
     "trimzoo/training/checkpointing.py",
     "        model.load_weights(path)\n        return record",
     "        model.load_weights(path)\n"
     "        for v in getattr(optimizer, 'variables', []):\n"
     "            v.assign(v * 0)\n"
     "        return record",
     ["tests/test_finetune.py::test_resume_restores_optimizer_state"]),
]


def run_tests(tests):
    """pytest's exit code for ``tests`` in the fast tier, and its time."""
    start = time.time()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-m", "not slow",
         "-p", "no:cacheprovider", "--no-header", *tests],
        cwd=ROOT, capture_output=True, text=True)
    return result.returncode, time.time() - start, result.stdout


def main(selected=()):
    chosen = [m for m in MUTATIONS
              if not selected or any(s in m[0] for s in selected)]
    rows, ok = [], True
    for name, path, original, mutated, tests in chosen:
        full = os.path.join(ROOT, path)
        with open(full) as f:
            source = f.read()
        if source.count(original) != 1:
            print(f"{name}: the text to mutate is not (once) in {path}")
            ok = False
            continue
        code, _, out = run_tests(tests)
        if code != 0:
            print(f"{name}: the unmutated tests fail:\n{out[-2000:]}")
            ok = False
            continue
        try:
            with open(full, "w") as f:
                f.write(source.replace(original, mutated))
            code, seconds, out = run_tests(tests)
        finally:
            with open(full, "w") as f:
                f.write(source)
        caught = [line.split(" ")[1] for line in out.splitlines()
                  if line.startswith("FAILED ")]
        verdict = "caught" if code != 0 else "MISSED"
        ok &= code != 0
        rows.append((name, path, ", ".join(caught) or "-", verdict, seconds))
        print(f"{verdict}: {name} ({seconds:.0f} s)", flush=True)
    print("\n| mutation | file | failing fast test | verdict |")
    print("|---|---|---|---|")
    for name, path, caught, verdict, _ in rows:
        print(f"| {name} | `{path}` | `{caught}` | {verdict} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
