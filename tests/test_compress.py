"""Compression to a budget (``trimzoo.search.budget``) on a tiny teacher:
the budget filter, the choice on validation, resume after SIGKILL, the
impossible budget and determinism. Costs come from a deterministic stand-in
for the timing (``measure=``: milliseconds proportional to the encoder
parameters), so what fits does not depend on a noisy machine; the real
timing is ``trimzoo.search.costs`` (tests/test_search.py)."""

import json
import os
import subprocess
import sys
import time

import pytest

from helpers import kill_when_state_has, small_config
from trimzoo.models.costs import parameter_counts
from trimzoo.search import budget as budget_lib
from trimzoo.search import candidate_timing, healing
from trimzoo.search import compressor as compressor_lib
from trimzoo.search import frontier as frontier_lib
from trimzoo.search.budget import Budget, BudgetError, choose
from trimzoo.search.compressor import compress

SPACE = "D=1/2;A=1/2;H=16/32;I=24/48"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPARE = os.path.join(ROOT, "docs", "benchmarks",
                       "compression_table_2026-12-01.json")


def fake_measure(model):
    """1 ms per 1,000 encoder (non-embedding) parameters, plus 0.1 ms."""
    counts = parameter_counts(model)
    ms = 0.1 + counts["non_embedding_params"] / 1000
    return {"params": counts["params"], "latency_ms": {"1": ms, "8": 8 * ms}}


def _count_timing(monkeypatch, timed):
    """Records every model the real timing would measure in ``timed``."""
    def record(model, *args, **kwargs):
        timed.append(model)
        return fake_measure(model)

    monkeypatch.setattr(candidate_timing, "measure_costs", record)
    monkeypatch.setattr(candidate_timing.CandidateTimer,
                        "_measure_against_teacher",
                        lambda self, model: record(model))


def make_config():
    config = small_config(model="bert_base")
    config.model_overrides = {}  # the student's shape is its folder's
    config.train.max_steps_per_epoch = 2
    config.data.max_eval_examples = 32
    return config


KW = dict(space=SPACE, k=2, proxy_steps=2, heal_steps=2, epochs=1,
          train_examples=64, eval_examples=64, seq_len=16, export=False,
          progress=False, measure=fake_measure)


def _cost(name, state):
    return state["costs"][name]


def test_budget_arguments():
    with pytest.raises(ValueError, match="Give a budget"):
        Budget()
    with pytest.raises(ValueError, match="max_accuracy_drop"):
        Budget(max_accuracy_drop=2)
    with pytest.raises(ValueError, match="latency_ms must be > 0"):
        Budget(latency_ms=0)
    b = Budget(speedup=4, max_params=10)
    assert b.fits({"params": 10, "latency_ms": {"1": 2.5}}, teacher_ms=10)
    assert not b.fits({"params": 11, "latency_ms": {"1": 2.5}}, teacher_ms=10)
    assert not b.fits({"params": 10, "latency_ms": {"1": 2.6}}, teacher_ms=10)
    with pytest.raises(ValueError, match="Unknown runtime"):
        budget_lib.check_runtime("onnx")


def test_compare_rows_of_a_compression_table(tmp_path):
    rows = budget_lib.compare_rows(COMPARE)
    assert len(rows) == 14 and all(r["speedup"] > 1 for r in rows)
    top2 = rows[1]
    assert top2["name"].endswith("+ KD") and top2["percent_of_teacher"] == 98.8
    bad = tmp_path / "x.json"
    bad.write_text("[]")
    with pytest.raises(ValueError, match="not a compression table"):
        budget_lib.compare_rows(str(bad))


def test_choice_is_on_validation_never_test():
    rows = [{"name": "a", "validation_accuracy": 0.70, "test_accuracy": 0.95,
             "latency_ms": 1.0},
            {"name": "b", "validation_accuracy": 0.72, "test_accuracy": 0.60,
             "latency_ms": 2.0}]
    assert choose(rows, Budget(speedup=2), 0.8)["name"] == "b"
    # With an accuracy criterion: the fastest within it, judged on
    # validation (a's test accuracy does not let it in).
    assert choose(rows, Budget(max_accuracy_drop=0.1), 0.78)["name"] == "b"
    assert choose(rows, Budget(max_accuracy_drop=0.2), 0.78)["name"] == "a"
    assert choose(rows, Budget(max_accuracy_drop=0.01), 0.78) is None


@pytest.mark.slow
def test_compress_stays_in_budget_and_is_deterministic(finetuned_run,
                                                       tmp_path):
    teacher = finetuned_run["best"]
    budget = Budget(speedup=1.6)
    first = compress(teacher, tmp_path / "a", budget, make_config,
                     compare=COMPARE, **KW)
    state = json.load(open(tmp_path / "a" / compressor_lib.STATE_FILE))
    teacher_ms = state["costs"]["teacher"]["latency_ms"]["1"]
    limit = teacher_ms / 1.6
    # Nothing outside the budget is on the frontier, healed or chosen.
    assert first["frontier"]
    for name in first["frontier"]:
        assert state["costs"][name]["latency_ms"]["1"] <= limit
    healed = {row["name"] for row in first["rows"]}
    assert healed and healed <= set(first["frontier"])
    assert len(healed) == min(2, len(first["frontier"]))
    # Some candidates that were timed do not fit: the filter did filter.
    timed = set(state["costs"]) - {"teacher"}
    assert any(state["costs"][n]["latency_ms"]["1"] > limit for n in timed)
    # The frontier: no candidate on it is dominated by another on it.
    space = {c.name: c for c in compressor_lib.build_space(
        SPACE, compressor_lib.reference_shape(
            compressor_lib.load_classifier_folder(teacher).backbone))}
    frontier = [space[n] for n in first["frontier"]]
    assert not any(budget_lib.dominated(a, b) for a in frontier
                   for b in frontier)
    # Chosen on validation: the healed row with the best validation score.
    best = max(first["rows"], key=lambda r: r["validation_accuracy"])
    assert first["chosen"] == best["name"]
    chosen_ms = state["costs"][first["chosen"]]["latency_ms"]["1"]
    assert chosen_ms <= limit
    # The chosen folder is a classifier folder with the candidate's shape.
    model = compressor_lib.load_classifier_folder(first["model"])
    row = next(r for r in first["rows"] if r["name"] == first["chosen"])
    assert model.backbone.num_layers == row["num_layers"]
    assert model.backbone.hidden_dim == row["hidden_dim"]
    for name in ("report.md", "results.json", "pareto.png"):
        assert os.path.isfile(tmp_path / "a" / name), name
    report = open(tmp_path / "a" / "report.md").read()
    assert first["chosen"] in report and "Single routes" in report
    # Re-run with the export: resumes (nothing healed again) and scores the
    # exported float32 file on test, as the Keras model scored.
    exported = compress(teacher, tmp_path / "a", budget, make_config,
                        **{**KW, "export": True})
    assert exported["chosen"] == first["chosen"]
    assert exported["export"]["test_accuracy"] == pytest.approx(
        row["test_accuracy"], abs=1.5 / 64)
    assert "test accuracy of the file" in open(
        tmp_path / "a" / "report.md").read()
    # Same seed, new folder: the same candidates, scores and choice.
    second = compress(teacher, tmp_path / "b", budget, make_config, **KW)
    assert second["chosen"] == first["chosen"]
    assert [(r["name"], r["validation_accuracy"], r["test_accuracy"])
            for r in second["rows"]] == [
        (r["name"], r["validation_accuracy"], r["test_accuracy"])
        for r in first["rows"]]


def _frontier_and_ranking(teacher, out, **kw):
    run = compressor_lib.Compressor(teacher, out, Budget(speedup=1.6),
                                make_config, **{**KW, **kw})
    fitting = run.frontier(run.measure_teacher())
    return run, fitting, run.healer.proxy(fitting, False)


# The first test to use a shared fixture pays for it (the tiny teacher's
# fine-tuning, then a frontier and its ranking: ~50 s alone, more beside
# another worker): these tests get more than the fast tier's 60 s.
SHARED_SETUP_TIMEOUT = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def ranked_run(finetuned_run, tmp_path_factory):
    """One frontier and ranking on the tiny teacher: ``(run, fitting,
    ranked)``."""
    return _frontier_and_ranking(finetuned_run["best"],
                                 tmp_path_factory.mktemp("ranked") / "a")


@SHARED_SETUP_TIMEOUT
def test_frontier_is_inside_the_budget(ranked_run):
    run, fitting, ranked = ranked_run
    costs = run.state["costs"]
    limit = costs["teacher"]["latency_ms"]["1"] / 1.6
    assert fitting and all(costs[c.name]["latency_ms"]["1"] <= limit
                           for c in fitting)
    # The filter filtered: candidates were timed that do not fit ...
    assert any(v["latency_ms"]["1"] > limit for k, v in costs.items()
               if k != "teacher")
    # ... and none dominated by a fitting one was timed (it fits, holds
    # less), so the frontier is an antichain.
    timed = [c for c in run.candidates if c.name in costs]
    assert not any(budget_lib.dominated(c, f) for c in timed
                   for f in fitting)
    # Every frontier candidate was ranked, best proxy error first.
    assert [c.name for c in ranked] == sorted(
        (c.name for c in fitting), key=lambda n: (run.state["proxy"][n], n))


@SHARED_SETUP_TIMEOUT
def test_ranking_is_deterministic(ranked_run, finetuned_run, tmp_path):
    # The same seed in a new folder ranks the same, with the same errors.
    run, fitting, ranked = ranked_run
    again, fitting2, ranked2 = _frontier_and_ranking(finetuned_run["best"],
                                                     tmp_path)
    assert fitting2 == fitting and ranked2 == ranked
    assert again.state["proxy"] == run.state["proxy"]


def test_impossible_budget_names_the_cheapest(finetuned_run, tmp_path):
    with pytest.raises(BudgetError, match=r"The cheapest, D1-A1-H16-I24, "
                       r"runs [0-9.]+ ms"):
        compress(finetuned_run["best"], tmp_path, Budget(latency_ms=1e-6),
                 make_config, **KW)
    with pytest.raises(BudgetError, match="parameters"):
        compress(finetuned_run["best"], tmp_path / "p", Budget(max_params=10),
                 make_config, **KW)


def test_too_few_candidates_timed_is_said(finetuned_run, tmp_path):
    # Only the cheapest candidate fits, and max_measured=1 stops the walk
    # (largest first) before it: the error says to time more, not that
    # nothing fits.
    run = compressor_lib.Compressor(finetuned_run["best"], tmp_path / "a",
                                Budget(speedup=1.6), make_config, **KW)
    cheapest = min(run.candidates, key=lambda c: (
        run.walk.shape(c)["flops"], c.name))
    small = parameter_counts(run.walk.architecture(cheapest))["params"]
    teacher = parameter_counts(run.teacher.backbone)["params"]

    def measure(model):  # The teacher 10 ms, the cheapest 1, others 9.
        params = parameter_counts(model)["params"]
        ms = 10.0 if params == teacher else 1.0 if params == small else 9.0
        return {"params": params, "latency_ms": {"1": ms, "8": 8 * ms}}

    with pytest.raises(BudgetError, match=r"None of the 1 candidates timed "
                       r"\(max_measured=1.*Raise max_measured"):
        compress(finetuned_run["best"], tmp_path / "b", Budget(speedup=1.6),
                 make_config, **{**KW, "max_measured": 1, "measure": measure})


def test_a_borderline_fit_is_timed_again(finetuned_run, tmp_path):
    # A candidate that fits by less than CONFIRM_MARGIN is timed a second
    # time; here every second timing is 30% slower, so one that fit by 5%
    # on its first timing is judged on the mean (15% slower) and left out.
    timings = {}

    def measure(model):
        cost = fake_measure(model)
        key = cost["params"]
        timings[key] = timings.get(key, 0) + 1
        if timings[key] == 2:
            cost["latency_ms"] = {b: 1.3 * v
                                  for b, v in cost["latency_ms"].items()}
        return cost

    probe = compressor_lib.Compressor(finetuned_run["best"], tmp_path / "a",
                                  Budget(speedup=1.6), make_config, **KW)
    by_ms = sorted(probe.candidates, key=lambda c: (fake_measure(
        probe.walk.architecture(c))["latency_ms"]["1"], c.name))
    borderline = by_ms[len(by_ms) // 2]
    limit = 1.05 * fake_measure(
        probe.walk.architecture(borderline))["latency_ms"]["1"]
    run = compressor_lib.Compressor(finetuned_run["best"], tmp_path / "b",
                                Budget(latency_ms=limit), make_config,
                                **{**KW, "measure": measure})
    fitting = run.frontier(run.measure_teacher())
    costs = run.state["costs"]
    assert costs[borderline.name]["timings"] == 2
    assert costs[borderline.name]["latency_ms"]["1"] > limit
    assert borderline not in fitting
    assert fitting and all(costs[c.name]["latency_ms"]["1"] <= limit
                           for c in fitting)
    # Clear fits are timed once.
    assert any(costs[c.name].get("timings", 1) == 1 for c in fitting)


def test_a_repeated_walk_takes_the_same_path(finetuned_run, tmp_path,
                                            monkeypatch):
    """The latency model that skips candidates learns only from the walk so
    far, so a re-run (or a resumed one), whose cache holds every timing,
    asks it the same questions on the same timings, reaches the same
    frontier and times nothing new. Timings here are noisy (a
    per-candidate factor in [0.5, 1.5)), as real ones are."""
    def noisy(model):
        cost = fake_measure(model)
        factor = 0.5 + (cost["params"] * 2654435761 % 1000) / 1000
        cost["latency_ms"] = {b: factor * v
                              for b, v in cost["latency_ms"].items()}
        return cost

    asked = []
    predict = budget_lib.predict_latency

    def spy(points, query):
        asked.append((tuple(query), len(points)))
        return predict(points, query)

    monkeypatch.setattr(frontier_lib, "predict_latency", spy)
    kw = {**KW, "space": "D=1/2/3;A=1/2;H=16/32;I=8/16/24/48"}
    first = compressor_lib.Compressor(finetuned_run["best"], tmp_path,
                                  Budget(speedup=2), make_config,
                                  **{**kw, "measure": noisy})
    fitting = first.frontier(first.measure_teacher())
    timed, questions = set(first.state["costs"]), list(asked)
    assert questions  # the model was asked

    def refuse(model):
        raise AssertionError("a repeated walk timed a new candidate")

    asked.clear()
    again = compressor_lib.Compressor(finetuned_run["best"], tmp_path,
                                  Budget(speedup=2), make_config,
                                  **{**kw, "measure": refuse})
    assert again.frontier(again.measure_teacher()) == fitting
    assert asked == questions
    assert set(again.state["costs"]) == timed


def test_a_spent_time_budget_is_a_clear_error(finetuned_run, tmp_path):
    with pytest.raises(budget_lib.TimeBudgetError, match="ran out before "
                       "any candidate was ranked"):
        compress(finetuned_run["best"], tmp_path, Budget(speedup=1.6),
                 make_config, time_budget_min=1e-9, **KW)


def test_other_settings_in_the_folder_are_refused(finetuned_run, tmp_path):
    with pytest.raises(BudgetError):
        compress(finetuned_run["best"], tmp_path, Budget(latency_ms=1e-6),
                 make_config, **KW)
    with pytest.raises(ValueError,
                       match=r"other settings \(seq_len: 16 -> 8\)"):
        compress(finetuned_run["best"], tmp_path, Budget(latency_ms=1e-6),
                 make_config, **{**KW, "seq_len": 8})


def test_heal_attention_reaches_stage_one(finetuned_run, tmp_path,
                                         monkeypatch):
    """``heal_attention`` is a setting of the run (a re-run with another
    is refused, a negative one too) and the weight of stage 1's attention
    term, with each student head matched to the teacher head it was cut
    from."""
    seen = {}

    class Stop(Exception):
        pass

    def record(student, teacher, kept, *args, **kwargs):
        seen.update(kept=kept, **kwargs)
        raise Stop

    monkeypatch.setattr(healing, "estimate_error", record)
    run = compressor_lib.Compressor(finetuned_run["best"], tmp_path,
                                Budget(speedup=1.1), make_config,
                                heal_attention=2.0, **KW)
    candidate = run.candidates[0]
    with pytest.raises(Stop):
        run.heal(candidate)
    assert seen["attention_weight"] == 2.0
    assert [len(h) for h in seen["kept"]["heads"]] == (
        [candidate.num_heads] * candidate.num_layers)
    run._save()
    with pytest.raises(ValueError, match=r"other settings "
                       r"\(heal_attention: 2\.0 -> 0\.0\)"):
        compressor_lib.Compressor(finetuned_run["best"], tmp_path,
                              Budget(speedup=1.1), make_config,
                              heal_attention=0.0, **KW)
    with pytest.raises(ValueError, match="heal_attention must be a finite number >= 0"):
        compressor_lib.Compressor(finetuned_run["best"], tmp_path / "b",
                              Budget(speedup=1.1), make_config,
                              heal_attention=-1.0, **KW)


def test_speedup_against_times_the_teacher_on_its_runtime(
        finetuned_run, tmp_path, monkeypatch):
    """With ``speedup_against`` the teacher is timed on that runtime and
    on ``runtime``, each on its own, and every candidate round-robin with
    the teacher on ``runtime`` (calls of two runtimes in one rotation
    interfere), its ratio scaled by the teacher's two latencies: here
    the teacher takes 4 ms on Keras and 1 ms on TFLite, so a candidate as
    fast as the teacher on TFLite is 4x faster than it on Keras."""
    requested, runs = [], []

    def is_teacher(model):
        return model is runs[-1].teacher.backbone

    def calls(model, cost, batch_sizes, seq_len):
        requested.append((is_teacher(model), cost))
        seconds = {"keras": 0.004, "tflite": 0.001}[cost]
        return {b: (lambda: time.sleep(seconds)) for b in batch_sizes}

    def teacher_costs(model, cost, batch_sizes, seq_len, rounds):
        requested.append((is_teacher(model), cost))
        ms = {"keras": 4.0, "tflite": 1.0}[cost]
        return {"params": 1, "latency_ms": {"1": ms, "8": 8 * ms}}

    monkeypatch.setattr(candidate_timing, "timed_calls", calls)
    monkeypatch.setattr(candidate_timing, "measure_costs", teacher_costs)
    kw = {**KW, "measure": None, "rounds": 5}
    run = compressor_lib.Compressor(
        finetuned_run["best"], tmp_path, Budget(speedup=3), make_config,
        runtime="tflite_int8", speedup_against="keras", **kw)
    runs.append(run)
    assert run.measure_teacher()["latency_ms"]["1"] == 4.0
    assert requested == [(True, "keras"), (True, "tflite")]
    assert run.timer.teacher_runtime_ms() == 1.0
    candidate = run.candidates[0]
    requested.clear()
    cost = run.timer.measure(candidate.name, run.walk.architecture(candidate))
    assert requested == [(True, "tflite"), (False, "tflite")]
    assert 2.5 < cost["speedup"]["1"] < 6
    assert cost["latency_ms"]["1"] == pytest.approx(
        4.0 / cost["speedup"]["1"])
    run._save()
    with pytest.raises(ValueError, match=r"other settings "
                       r"\(speedup_against: keras -> tflite_int8\)"):
        compressor_lib.Compressor(finetuned_run["best"], tmp_path,
                              Budget(speedup=3), make_config,
                              runtime="tflite_int8", **kw)
    # Without it the teacher is timed where the candidates run.
    requested.clear()
    same = compressor_lib.Compressor(finetuned_run["best"], tmp_path / "b",
                                 Budget(speedup=3), make_config,
                                 runtime="tflite_int8", **kw)
    runs.append(same)
    same.measure_teacher()
    assert requested == [(True, "tflite")]
    assert same.timer.teacher_runtime_ms() == 1.0


RANK_SCRIPT = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
from test_compress import _frontier_and_ranking
_frontier_and_ranking({teacher!r}, {out!r})
"""


@SHARED_SETUP_TIMEOUT
def test_ranking_resumes_after_sigkill(finetuned_run, tmp_path,
                                       monkeypatch):
    # Killed (SIGKILL) once its first candidate has a proxy error: a new
    # run in the same folder times nothing again and keeps that error.
    out = str(tmp_path / "out")
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT.format(
        root=ROOT, tests=os.path.join(ROOT, "tests"),
        teacher=finetuned_run["best"], out=out))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = kill_when_state_has(
        proc, os.path.join(out, compressor_lib.STATE_FILE), "proxy", timeout=300)
    timed = []
    _count_timing(monkeypatch, timed)
    run, fitting, ranked = _frontier_and_ranking(finetuned_run["best"], out,
                                                 measure=None)
    assert not timed and run.state["costs"] == state["costs"]
    for name, error in state["proxy"].items():
        assert run.state["proxy"][name] == error
    assert {c.name for c in ranked} == {c.name for c in fitting}


SCRIPT = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
from test_compress import KW, make_config
from trimzoo.search.budget import Budget
from trimzoo.search.compressor import compress
compress({teacher!r}, {out!r}, Budget(speedup=1.6), make_config, **KW)
"""


@pytest.mark.slow
def test_compress_resumes_after_sigkill(finetuned_run, tmp_path,
                                        monkeypatch):
    # Killed (SIGKILL) once its first candidate is healed: the same call
    # continues from compress_state.json, timing, ranking and healing only
    # what it did not hold.
    out = str(tmp_path / "out")
    state_path = os.path.join(out, compressor_lib.STATE_FILE)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(root=ROOT, tests=os.path.join(ROOT,
                                                                  "tests"),
                                    teacher=finetuned_run["best"], out=out))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = kill_when_state_has(proc, state_path, "healed", timeout=300)
    assert not os.path.exists(os.path.join(out, "results.json"))
    assert len(state["healed"]) == 1

    timed, healed = [], []
    _count_timing(monkeypatch, timed)
    original = compressor_lib.Compressor.heal

    def counted(self, candidate):
        if candidate.name not in self.state["healed"]:
            healed.append(candidate.name)
        return original(self, candidate)

    monkeypatch.setattr(compressor_lib.Compressor, "heal", counted)
    kw = {k: v for k, v in KW.items() if k != "measure"}
    results = compress(finetuned_run["best"], out, Budget(speedup=1.6),
                       make_config, **kw)
    assert not timed  # every cost came from the killed run's state
    assert len(healed) == len(results["rows"]) - 1
    done = json.load(open(state_path))
    for name, row in state["healed"].items():  # kept as it was
        assert done["healed"][name] == row


def test_the_teachers_length_is_the_default(finetuned_run, tmp_path):
    """Without ``seq_len`` compression times, trains and ships at the
    length the teacher was fine-tuned with (it defaulted to 64 whatever the
    teacher knew)."""
    teacher = compressor_lib.load_classifier_folder(finetuned_run["best"])
    length = teacher.preprocessor.sequence_length
    run = compressor_lib.Compressor(finetuned_run["best"], tmp_path,
                                    Budget(speedup=1.6), make_config,
                                    **{**KW, "seq_len": None})
    run.folder.close()
    assert run.settings.seq_len == length != KW["seq_len"]
    assert run.healer.finetune_config("init").max_seq_length == length
    assert run.folder.settings["seq_len"] == length


@pytest.mark.slow
def test_a_rerun_keeps_the_choice_unless_asked(finetuned_run, tmp_path,
                                              capsys):
    """A re-run whose timing would choose another candidate keeps the
    earlier choice and says so; with ``rechoose`` it takes the new one, says
    old -> new with both scores, and keeps the earlier model."""
    out = tmp_path / "out"
    first = compress(finetuned_run["best"], out, Budget(speedup=1.6),
                     make_config, **{**KW, "progress": True})
    names = [row["name"] for row in first["rows"]]
    assert len(names) == 2
    other = next(n for n in names if n != first["chosen"])
    report = open(out / "report.md").read()
    assert "`D` layers, `A` attention heads" in report
    assert "recorded it (`metrics.json`" in report
    assert "training checkpoints removed" in report
    for row in first["rows"]:  # pruned: only best/ stays of each run
        assert not os.path.exists(os.path.join(os.path.dirname(row["folder"]),
                                               "checkpoints"))
        assert os.path.isdir(row["folder"])
    # As if an earlier run had chosen the other candidate.
    state_path = out / compressor_lib.STATE_FILE
    state = json.load(open(state_path))
    state["chosen"] = other
    state_path.write_text(json.dumps(state))
    capsys.readouterr()
    kept = compress(finetuned_run["best"], out, Budget(speedup=1.6),
                    make_config, **{**KW, "progress": True})
    said = capsys.readouterr().out
    assert kept["chosen"] == other
    assert f"the earlier choice {other} is kept" in said
    assert "re-run of a finished run: timing the teacher again" in said
    assert any("--rechoose" in w for w in kept["warnings"])
    changed = compress(finetuned_run["best"], out, Budget(speedup=1.6),
                       make_config, rechoose=True,
                       **{**KW, "progress": True})
    said = capsys.readouterr().out
    assert changed["chosen"] == first["chosen"]
    assert f"choice changed (--rechoose): {other} (validation" in said
    assert os.path.isdir(out / "earlier" / other)
    assert json.load(open(state_path))["chosen"] == first["chosen"]
