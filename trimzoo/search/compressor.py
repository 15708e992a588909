"""Compression to a budget: from a fine-tuned classifier, the most accurate
model that fits a stated cost on this machine's runtime.

``compress(teacher, out, budget)`` stacks every route of the zoo in one
candidate space — layers kept (Poor Man's BERT), heads and FFN neurons
pruned, a narrower hidden size (Bort's H), and optionally the TrimBERT
knobs — cut from the teacher by importance (the search's space,
``trimzoo.search.space``), and then:

1. **Measures the teacher** on the chosen runtime (round-robin medians at
   batch 1 and the user's batch, the user's sequence length), so the budget
   is a measured number of milliseconds, not FLOPs
   (``trimzoo.search.candidate_timing``).
2. **Measures candidates inside the budget only**, each round-robin with
   the teacher, largest first, skipping what cannot fit or is dominated by
   a candidate that fits: the budget's frontier (``trimzoo.search.frontier``).
3. **Ranks the frontier cheaply** by the search's error proxy, and
4. **heals the best k properly** in two stages
   (``trimzoo.search.healing``).
5. **Chooses on the validation split**, never on test
   (``trimzoo.search.budget.choose``), after timing the healed candidates
   again round-robin with the teacher.

Everything measured is cached in ``OUT/compress_state.json`` (written
atomically after each step) and every training run resumes, so a killed run
continues where it stopped. The folder is the run's own
(``trimzoo.utils.run_folder``): a re-run resumes only with the same
settings, budget and teacher. Budgets nothing can meet raise
:class:`~trimzoo.search.budget.BudgetError`, naming the cheapest candidate
and its cost.

This lives in ``trimzoo.search`` (the top layer) because it drives
training, export and the benchmark's timing.
"""

import dataclasses
import os
import shutil
import time

import keras
import numpy as np

from trimzoo.checkpoints.folders import load_classifier_folder
from trimzoo.data.model_data import RECORD_FILE, recorded_task, texts_for_model
from trimzoo.export import TFLiteRunner, export_model
from trimzoo.models.costs import parameter_counts
from trimzoo.models.tokenizers import load_tokenizer
from trimzoo.search.budget import (RUNTIMES, Budget, BudgetError,
                                   CompressSettings, TimeBudgetError, choose,
                                   compare_rows, retimed_pool)
from trimzoo.search.candidate_timing import CandidateTimer
from trimzoo.search.compress_report import write_report
from trimzoo.search.frontier import Frontier
from trimzoo.search.healing import Healer, Teacher
from trimzoo.search.space import build_space, reference_shape
from trimzoo.utils.io import atomic_path, read_json, write_json
from trimzoo.utils.run_folder import (OutputFolderError, RunFolder,
                                      check_output_location, fingerprint)

STATE_FILE = "compress_state.json"
# Everything compress writes in its folder (``--overwrite`` removes these
# and nothing else).
OUTPUTS = (STATE_FILE, "proxy", "candidates", "model", "export",
           "results.json", "report.md", "pareto.png", "earlier")


def load_teacher(folder, data=None, text_column="text", say=print):
    """The :class:`~trimzoo.search.healing.Teacher` of ``folder`` (a
    fine-tuned ``RUN/best``) with its task's labelled splits (``data``:
    other training texts)."""
    model = load_classifier_folder(folder)
    record = recorded_task(folder)
    if record is None:
        raise ValueError(
            f"{folder} records no task (a fine-tuned RUN/best folder has "
            "RUN/config.json beside it): the candidates are fine-tuned and "
            "chosen on the teacher's task data.")
    texts = {}
    for split in ("train", "validation", "test"):
        texts[split] = texts_for_model(
            folder, data=data if split == "train" else None,
            text_column=text_column, split=split, what="compress")
        say(f"{split} texts: {len(texts[split].texts)} from "
            f"{texts[split].source}")
    for split in ("validation", "test"):
        if texts[split].labels is None:
            raise ValueError(f"The {split} texts ({texts[split].source}) "
                             "have no labels: the choice needs labelled "
                             "data.")
    return Teacher(folder, model, load_tokenizer(folder), record, texts)


class Compressor:
    """One compression run in ``out`` (see :func:`compress`).

    Args:
        teacher: str. A fine-tuned classifier folder (``RUN/best``).
        out: str. The run's folder.
        budget: ``Budget``.
        make_config: callable returning a fresh fine-tuning ConfigDict.
        settings: ``CompressSettings`` (None: made from ``**kwargs``).
        overwrite: bool. Start over in an ``out`` of other settings.
        progress: bool. Progress lines and bars.
        measure: callable(backbone) -> cost dict, or None. Replaces the
            timing (tests).
        rechoose: bool. On a re-run whose timing picks another candidate
            than the earlier run chose, take the new one (the earlier model
            is kept in ``OUT/earlier/``); False keeps the earlier choice and
            says so.
    """

    def __init__(self, teacher, out, budget, make_config, settings=None,
                 overwrite=False, progress=True, measure=None,
                 rechoose=False, **kwargs):
        if not isinstance(budget, Budget):
            raise TypeError(f"budget must be a Budget, got "
                            f"{type(budget).__name__}.")
        # Every value is checked before any work (nothing timed, trained or
        # written for a run that would fail on its settings).
        self.settings = s = settings or CompressSettings(**kwargs)
        if settings is not None and kwargs:
            raise TypeError(f"Pass settings or keyword settings, not both "
                            f"({sorted(kwargs)}).")
        self.teacher_dir = os.path.abspath(os.fspath(teacher))
        self.out = os.fspath(out)
        self.budget, self.progress = budget, bool(progress)
        self.rechoose = bool(rechoose)
        self.runtime, self.against = s.runtime, s.speedup_against
        check_output_location(self.out, [self.teacher_dir])
        self.start = time.time()
        self.deadline = (None if s.time_budget_min is None
                         else self.start + 60 * s.time_budget_min)

        self.source = load_teacher(self.teacher_dir, s.data, s.text_column,
                                   self._say)
        self.teacher = self.source.model
        # The teacher's own length unless the user chose one: the teacher is
        # scored, and the compressed model ships, at the length it knows.
        self.teacher_seq_len = int(
            self.teacher.preprocessor.sequence_length)
        self.settings = s = s.with_teacher_length(self.teacher_seq_len)
        self._say(f"sequence length: {s.seq_len} tokens" + (
            " (the teacher's)" if s.seq_len == self.teacher_seq_len else
            f" (the teacher was fine-tuned at {self.teacher_seq_len})"))
        self.reference = reference_shape(self.teacher.backbone)
        knobs = ((None, 2), (None, "sigmoid")) if s.trimbert_knobs else (
            (None,), (None,))
        whole = {d: self.reference[d] for d in
                 ("num_layers", "num_heads", "hidden_dim",
                  "intermediate_dim")}
        self.candidates = [
            c for c in build_space(s.space, self.reference, *knobs)
            if not (all(getattr(c, d) == v for d, v in whole.items())
                    and c.ffn_every is None and c.normalizer is None)]
        self.folder = RunFolder(
            self.out, "compress", {
                "teacher": self.teacher_dir, **s.resume_key(),
                "budget": dataclasses.asdict(budget),
                # The teacher's files and task: a teacher trained again in
                # place makes every cached measurement stale.
                "teacher_fingerprint": fingerprint(self.teacher_dir,
                                                   self.source.record)},
            entries=OUTPUTS, overwrite=overwrite, inputs=[self.teacher_dir],
            adopt=STATE_FILE)
        self.state_path = self.folder.join(STATE_FILE)
        self.state = self._load_state()
        # A finished run re-run: its teacher is timed again (see _run).
        self.rerun = os.path.exists(self.folder.join("results.json"))
        self.timer = CandidateTimer(self.teacher.backbone, s,
                                    self.state["costs"], self._save, measure)
        self.walk = Frontier(self.candidates, budget, self.timer,
                             self.state["shape"], self.reference["head_dim"],
                             s.max_measured, self._say, self.progress)
        self.healer = Healer(self.source, s, make_config, self.out,
                             self.state, self._save, self._say,
                             self._out_of_time)

    # -- state -----------------------------------------------------------------

    def _load_state(self):
        state = self.folder.read_state(STATE_FILE, {
            "costs": {}, "shape": {}, "proxy": {}, "healed": {}})
        for name, row in state["healed"].items():
            # A healed candidate is reused as it was recorded: its row must
            # be whole and its model still there.
            if not (isinstance(row, dict) and all(
                    key in row for key in ("folder", "validation_accuracy",
                                           "test_accuracy"))
                    and os.path.isdir(str(row["folder"]))):
                raise OutputFolderError(
                    f"{self.state_path} is damaged or its models are gone "
                    f"(the healed candidate {name}); pass --overwrite to "
                    "start the run over, or choose a new --out.")
        return state

    def _retime_teacher(self):
        """A re-run of a finished run times the teacher again (its first
        timing may have been on a busy machine): the candidates' cached
        speed-ups (ratios timed round-robin with the teacher) are kept and
        their latencies rescaled to the new timing."""
        costs = self.state["costs"]
        old = costs.pop("teacher", None)
        costs.pop(f"teacher@{self.runtime}", None)
        if old is None:
            return
        self._say("re-run of a finished run: timing the teacher again")
        new = self.timer.measure_teacher()["latency_ms"]
        for name, cost in costs.items():
            if "speedup" in cost:
                cost["latency_ms"] = {b: new[b] / r
                                      for b, r in cost["speedup"].items()}
        self._save()

    def _save(self):
        write_json(self.state_path, self.state)

    def _say(self, message):
        if self.progress:
            print(message, flush=True)

    def _out_of_time(self):
        return self.deadline is not None and time.time() > self.deadline

    # -- the parts, by name ----------------------------------------------------

    def measure_teacher(self):
        """The teacher's cost on ``speedup_against``, printed with the
        budget."""
        cost = self.timer.measure_teacher()
        ms = cost["latency_ms"]["1"]
        self._say(f"teacher on {self.against}: "
                  + ", ".join(f"{v:.2f} ms at batch {b}"
                              for b, v in cost["latency_ms"].items())
                  + f" ({self.settings.seq_len} tokens); budget: "
                  + self.budget.describe(ms))
        if self.against != self.runtime:
            self._say(f"teacher on {self.runtime} (where the candidates "
                      f"run): {self.timer.teacher_runtime_ms():.2f} ms at "
                      "batch 1")
        return cost

    def frontier(self, teacher_cost):
        return self.walk.find(teacher_cost)

    def heal(self, candidate):
        return self.healer.heal(candidate)

    # -- the run ------------------------------------------------------------------

    def run(self):
        """Runs (or resumes) the compression; the folder's lock is released
        at the end, whatever happens."""
        try:
            return self._run()
        finally:
            self.folder.close()

    def _run(self):
        s = self.settings
        if self.rerun:
            self._retime_teacher()
        teacher_cost = self.measure_teacher()
        teacher_ms = teacher_cost["latency_ms"]["1"]
        fitting = self.frontier(teacher_cost)
        ranked = self.healer.proxy(fitting, self.progress)
        if not ranked:
            raise TimeBudgetError(
                "The time budget ran out before any candidate was ranked; "
                "raise --time_budget_min (a re-run keeps what was measured).")
        self._say("ranked by proxy error: " + ", ".join(
            f"{c.name} {self.state['proxy'][c.name]:.3f}"
            for c in ranked[:max(s.k, 5)]))
        rows = []
        for c in ranked[:s.k]:
            if c.name not in self.state["healed"] and self._out_of_time():
                self._say(f"time budget reached: {c.name} and later "
                          "candidates are not healed")
                break
            rows.append(dict(self.heal(c)))  # the cached row stays as healed
            keras.backend.clear_session(free_memory=True)
        if not rows:
            raise TimeBudgetError(
                "The time budget ran out before any candidate was healed; "
                "raise --time_budget_min (a re-run keeps what was measured).")
        for row in rows:
            row["latency_ms"] = self.state["costs"][row["name"]][
                "latency_ms"]["1"]
            row["speedup"] = teacher_ms / row["latency_ms"]
        final = self.final_timing(rows)
        pool, warnings = retimed_pool(rows, self.budget.max_ms(teacher_ms),
                                      teacher_ms)
        for warning in warnings:
            self._say("warning: " + warning)
        teacher_row = {
            "name": "teacher", "folder": self.teacher_dir,
            "params": int(parameter_counts(self.teacher.backbone)["params"]),
            "validation_accuracy": self.healer.score(self.teacher,
                                                     "validation"),
            "test_accuracy": self.healer.score(self.teacher, "test"),
            "latency_ms": teacher_ms, "speedup": 1.0,
            "recorded": recorded_scores(self.teacher_dir,
                                        self.teacher_seq_len)}
        chosen = choose(pool, self.budget,
                        teacher_row["validation_accuracy"])
        if chosen is not None:
            chosen = self._keep_or_change(chosen, rows, warnings)
        if chosen is None:
            best = max(rows, key=lambda r: r["validation_accuracy"])
            raise BudgetError(
                f"No healed candidate keeps the accuracy asked "
                f"({self.budget.describe(teacher_ms)}): the best, "
                f"{best['name']}, has validation accuracy "
                f"{best['validation_accuracy']:.4f} against the teacher's "
                f"{teacher_row['validation_accuracy']:.4f}. Results so far "
                f"are in {self.state_path}.")
        model_dir = self.folder.join("model")
        with atomic_path(model_dir) as tmp:
            shutil.copytree(chosen["folder"], tmp)
            # The task it was trained on travels with it (export's parity
            # gate, predict --evaluate and a further compress read it).
            write_json(os.path.join(tmp, RECORD_FILE), self.source.record)
        results = {
            "teacher": teacher_row, "rows": rows, "chosen": chosen["name"],
            "budget": dataclasses.asdict(self.budget),
            "max_ms": self.budget.max_ms(teacher_ms),
            "runtime": self.runtime, "speedup_against": self.against,
            "seq_len": s.seq_len,
            "teacher_latency_ms": teacher_cost["latency_ms"],
            "frontier": [c.name for c in fitting],
            "timed": sum(name in self.walk.by_name
                         for name in self.state["costs"]),
            "candidates": len(self.candidates),
            "proxy": {c.name: self.state["proxy"][c.name] for c in ranked},
            "final_timing": final, "warnings": warnings,
            "load": self.timer.load(),
            "data": {k: t.source for k, t in self.source.texts.items()},
            "model": model_dir, "minutes": (time.time() - self.start) / 60}
        if s.compare:
            results["compare"] = compare_rows(s.compare)
            results["compare_source"] = os.path.abspath(s.compare)
        if s.export:
            results["export"] = self._export(model_dir)
        prune_candidates(rows)
        results["folder_mb"] = folder_mb(self.out)
        write_json(self.folder.join("results.json"), results)
        write_report(self.out, results)
        self._say(f"\nchosen: {chosen['name']} -> {model_dir} (validation "
                  f"{chosen['validation_accuracy']:.4f}, test "
                  f"{chosen['test_accuracy']:.4f} = "
                  f"{chosen['test_accuracy'] / teacher_row['test_accuracy']:.1%}"
                  f" of the teacher, {_speedup(chosen)} on "
                  f"{self.runtime}" + (f" against the teacher on {self.against}"
                                       if self.against != self.runtime
                                       else "") + "); report: "
                  f"{self.folder.join('report.md')}")
        return results

    def _keep_or_change(self, chosen, rows, warnings):
        """The earlier run's choice stays unless ``rechoose``; either way a
        change is said in one line with both models' scores and speed-ups,
        and a taken change keeps the earlier model in ``OUT/earlier/``. A
        choice that misses the budget when re-timed gets a warning."""
        earlier = self.state.get("chosen")
        if earlier and earlier != chosen["name"]:
            old = next((r for r in rows if r["name"] == earlier), None)
            if old is not None:
                line = (f"{earlier} ({_scores(old)}) -> {chosen['name']} "
                        f"({_scores(chosen)})")
                if self.rechoose:
                    self._say(f"choice changed (--rechoose): {line}; the "
                              "earlier model is kept in "
                              f"{self.folder.join('earlier', earlier)}")
                    if os.path.isdir(self.folder.join("model")):
                        os.makedirs(self.folder.join("earlier"),
                                    exist_ok=True)
                        shutil.rmtree(self.folder.join("earlier", earlier),
                                      ignore_errors=True)
                        os.replace(self.folder.join("model"),
                                   self.folder.join("earlier", earlier))
                else:
                    warnings.append(
                        f"this run's timing would choose another model: "
                        f"{line}; the earlier choice {earlier} is kept "
                        "(pass --rechoose to take the new one).")
                    self._say("warning: " + warnings[-1])
                    chosen = old
        if chosen.get("fits_when_retimed") is False:
            warnings.append(
                f"the chosen {chosen['name']} does not meet the budget when "
                f"re-timed ({chosen['speedup_round_robin']:.2f}x the "
                "teacher's speed round-robin).")
            self._say("warning: " + warnings[-1])
        self.state["chosen"] = chosen["name"]
        self._save()
        return chosen

    def final_timing(self, rows, rounds=30):
        """The teacher and every healed candidate timed again round-robin
        (``CandidateTimer.final_timing``). Sets each row's
        ``speedup_round_robin`` (the candidate on the runtime against the
        teacher on ``speedup_against``) and ``speedup_vs_keras_float32``.
        None under a ``measure`` stand-in."""
        if self.timer.stand_in:
            return None
        self._say(f"\n=== Timing the teacher and {len(rows)} healed "
                  f"candidates round-robin (batch 1, {rounds} rounds)")
        ms = self.timer.final_timing(
            {row["name"]: load_classifier_folder(row["folder"]).backbone
             for row in rows}, rounds)
        runtime_cost = RUNTIMES[self.runtime]
        for row in rows:
            row["latency_ms_round_robin"] = ms[(row["name"], runtime_cost)]
            row["speedup_round_robin"] = (
                ms[("teacher", RUNTIMES[self.against])]
                / row["latency_ms_round_robin"])
            row["speedup_vs_keras_float32"] = (
                ms[("teacher", "keras")] / row["latency_ms_round_robin"])
        return {f"{name}/{cost}": value for (name, cost), value in ms.items()}

    def _export(self, model_dir):
        """The chosen model as a TFLite file behind the parity gate (int8
        for ``tflite_int8``, float32 otherwise) on the task's validation
        texts."""
        quantize = "dynamic" if self.runtime == "tflite_int8" else "none"
        report = export_model(model_dir, self.folder.join("export"),
                              formats="tflite", quantize=quantize,
                              seq_len=self.settings.seq_len,
                              num_examples=256, overwrite=True)
        entry = next(e for e in report["exports"]
                     if e["quantize"] == quantize)
        path = self.folder.join("export", entry["path"])
        # The file is what ships: its own accuracy on the test split.
        inputs, labels = self.healer.scored_split("test")
        logits = TFLiteRunner(path)(inputs)["logits"]
        return {"path": path, "quantize": quantize,
                "format": ("TFLite dynamic int8" if quantize == "dynamic"
                           else "TFLite float32"),
                "parity": entry["parity"]["metrics"],
                "test_accuracy": float(np.mean(
                    np.argmax(logits, -1)[:len(labels)] == labels))}


def recorded_scores(teacher_dir, seq_len):
    """The teacher's own scores as its fine-tuning recorded them
    (``RUN/metrics.json`` beside ``RUN/best``: validation at the best
    epoch, test), or None."""
    record = read_json(os.path.join(os.path.dirname(teacher_dir),
                                    "metrics.json")) or {}
    best = (record.get("best") or {}).get("epoch")
    evals = {e.get("epoch"): e for e in record.get("evals") or []}
    validation = ((evals.get(best) or {}).get("validation") or {}).get(
        "accuracy")
    test = (record.get("test") or {}).get("accuracy")
    if validation is None and test is None:
        return None
    return {"validation_accuracy": validation, "test_accuracy": test,
            "seq_len": seq_len}


def prune_candidates(rows):
    """Removes the healed candidates' training checkpoints and final
    models once they are scored (``best/`` stays: a re-run re-times and may
    re-choose among them)."""
    for row in rows:
        run = os.path.dirname(row["folder"])
        for name in ("checkpoints", "final"):
            shutil.rmtree(os.path.join(run, name), ignore_errors=True)


def folder_mb(path):
    """Megabytes of the files under ``path``."""
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, files in os.walk(path) for name in files) / 1e6


def _speedup(row):
    """The speed-up the choice was checked with: the final round-robin
    timing's when there is one."""
    if row.get("speedup_round_robin"):
        return f"{row['speedup_round_robin']:.2f}x re-timed round-robin"
    return f"{row['speedup']:.2f}x"


def _scores(row):
    """``validation V, test T, S x`` of a row (the re-timed speed-up when
    there is one)."""
    speed = row.get("speedup_round_robin") or row["speedup"]
    return (f"validation {row['validation_accuracy']:.4f}, test "
            f"{row['test_accuracy']:.4f}, {speed:.2f}x")


def compress(teacher, out, budget, make_config, settings=None, **kwargs):
    """Compresses the fine-tuned classifier folder ``teacher`` into the most
    accurate model within ``budget`` (see the module docstring).

    Args:
        teacher: str. A fine-tuned classifier folder (``RUN/best``).
        out: str. Output folder; a re-run with the same settings (budget
            and teacher included) resumes. A folder that holds anything
            else is refused (``trimzoo.utils.run_folder``); it can never be
            the current directory or hold the teacher.
        budget: ``trimzoo.search.budget.Budget``.
        make_config: callable returning a fresh fine-tuning ConfigDict
            (``configs/finetune.py``'s ``get_config``); its task and data
            are set from the teacher's record.
        settings: ``trimzoo.search.budget.CompressSettings``, or None to
            make one from the keyword arguments of the same names
            (``runtime``, ``seq_len``, ``k``, ``heal_steps``, ...; see its
            docstring).
        **kwargs: the settings' fields, and ``overwrite`` (start over in an
            ``out`` of other settings: what compress wrote there is
            removed, nothing else), ``rechoose`` (a re-run may change the
            choice), ``progress`` and ``measure`` (a stand-in for the
            timing, tests).

    Returns:
        dict: ``results.json``'s content (``chosen``, ``rows``, ``teacher``,
        ``model``).

    Raises:
        BudgetError: nothing fits the budget.
    """
    return Compressor(teacher, out, budget, make_config, settings,
                      **kwargs).run()
