"""Do the fast tests bite? Applies each mutation below to the code alone,
runs the fast-tier tests named for it, and checks that they fail.

    .venv/bin/python tests/mutations.py            # every mutation
    .venv/bin/python tests/mutations.py sigmoid    # those whose name matches
    .venv/bin/python tests/mutations.py --no-baseline  # skip the clean run

The checkout is copied to a temporary folder and mutated there, so the
checkout itself never changes (other tests may run beside this one:
``tests/test_mutations.py`` runs it in ``make test-all``). Each mutation is
an exact text replacement in one file; a text that is not in its file
exactly once fails the run (the code moved: update the table). The
unmutated tests are run first, together, and must pass (``make test-all``
skips that run: its fast tier runs the same tests unmodified). The table
it prints is the one in docs/testing.md.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What a test run needs from the checkout.
COPIED = ("trimzoo", "tests", "configs", "tools", "setup.cfg")

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
     ["tests/test_layers.py::test_normalizer_rows"]),
    ("`top` drop strategy drops the bottom layers",
     "trimzoo/models/layer_drop.py",
     "dropped = range(num_layers - k, num_layers)",
     "dropped = range(k)",
     ["tests/test_layer_drop.py::test_strategy_layer_sets_match_the_paper"]),
    ("pruning keeps the least important heads/neurons",
     "trimzoo/compression/prune.py",
     "order = np.argsort(-np.asarray(s), kind=\"stable\")",
     "order = np.argsort(np.asarray(s), kind=\"stable\")",
     ["tests/test_prune.py::test_pruned_classifier_equals_the_masked_source"]),
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
     ["tests/test_export.py::test_gate_fails_on_a_corrupted_tflite_file"]),
    ("resume skips the optimizer state (the loop's checkpoint)",
     "trimzoo/training/loop.py",
     "model=objective.model, optimizer=optimizer, step=self.step,",
     "model=objective.model, step=self.step,",
     ["tests/test_run_reliability.py::"
      "test_interrupted_pretraining_resumes_exactly"]),
    ("resume does not fall back past a damaged newest checkpoint",
     "trimzoo/training/checkpointing.py",
     "            except (tf.errors.OpError, IndexError, ValueError,\n"
     "                    AssertionError) as error:",
     "            except AssertionError as error:",
     ["tests/test_run_reliability.py::"
      "test_every_damaged_checkpoint_file_falls_back_or_names_the_file"]),
]


def missing_texts(mutations=MUTATIONS, root=ROOT):
    """``(name, path)`` of every mutation whose original text is not in its
    file exactly once."""
    missing = []
    for name, path, original, _, _ in mutations:
        full = os.path.join(root, path)
        source = open(full).read() if os.path.exists(full) else ""
        if source.count(original) != 1:
            missing.append((name, path))
    return missing


def copy_checkout(target):
    """The parts of the checkout a test run needs, copied to ``target``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COPIED:
        source = os.path.join(ROOT, name)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(target, name), ignore=ignore)
        else:
            shutil.copy2(source, target)


def run_tests(tests, root):
    """pytest's exit code for ``tests`` in the fast tier of the checkout at
    ``root``, its time and its output."""
    start = time.time()
    env = dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("PYTEST_ADDOPTS", None)  # the caller's options are not ours
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-m", "not slow",
         "-p", "no:cacheprovider", "-p", "no:xdist", "--no-header", *tests],
        cwd=root, env=env, capture_output=True, text=True)
    return result.returncode, time.time() - start, result.stdout


def main(selected=(), baseline=True):
    """0 when every chosen mutation is caught, else 1 (a text not found,
    the unmutated tests failing with ``baseline``, a mutation missed)."""
    chosen = [m for m in MUTATIONS
              if not selected or any(s in m[0] for s in selected)]
    missing = missing_texts(chosen)
    for name, path in missing:
        print(f"MISSING: {name}: the text to mutate is not (once) in {path}")
    if missing:
        return 1
    rows, ok = [], True
    with tempfile.TemporaryDirectory(prefix="trimzoo_mutations_") as root:
        copy_checkout(root)
        tests = list(dict.fromkeys(t for m in chosen for t in m[4]))
        if baseline:
            code, seconds, out = run_tests(tests, root)
            if code != 0:
                print(f"The unmutated tests fail ({seconds:.0f} s):\n"
                      f"{out[-3000:]}")
                return 1
            print(f"unmutated: {len(tests)} selections pass "
                  f"({seconds:.0f} s)", flush=True)
        for name, path, original, mutated, tests in chosen:
            full = os.path.join(root, path)
            with open(full) as f:
                source = f.read()
            try:
                with open(full, "w") as f:
                    f.write(source.replace(original, mutated))
                code, seconds, out = run_tests(tests, root)
            finally:
                with open(full, "w") as f:
                    f.write(source)
            caught = [line.split(" ")[1] for line in out.splitlines()
                      if line.startswith("FAILED ")]
            # Caught: a test failed (not an error before any test ran).
            verdict = ("caught" if caught else
                       "MISSED" if code == 0 else "ERROR (no test failed)")
            ok &= bool(caught)
            if not caught:
                print(out[-2000:])
            rows.append((name, path, ", ".join(caught) or "-", verdict))
            print(f"{verdict}: {name} ({seconds:.0f} s)", flush=True)
    print("\n| mutation | file | failing fast test | verdict |")
    print("|---|---|---|---|")
    for name, path, caught, verdict in rows:
        print(f"| {name} | `{path}` | `{caught}` | {verdict} |")
    return 0 if ok else 1


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main([a for a in args if a != "--no-baseline"],
                  baseline="--no-baseline" not in args))
