"""The sub-architecture search on a tiny teacher (runlocal sizes)."""

import json
import os

import keras
import numpy as np
import pytest

from configs.search import get_config
from trimzoo.models.costs import flops_per_token
from trimzoo.checkpoints import from_pretrained, save_pretrained
from trimzoo.models.tokenizers import encode, load_tokenizer
from trimzoo.models import TrimzooBackbone, TrimzooClassifier
from trimzoo.search import (
    Candidate,
    Search,
    build_candidate,
    build_space,
    choose_epsilon,
    estimate_error,
    measure_costs,
    partition,
    search,
    teacher_importance,
    w_coefficient,
)
from trimzoo.search import run as run_lib
from trimzoo.training.loop import read_metrics

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "hf_tiny_bert")
MINILM = {"num_layers": 6, "num_heads": 12, "hidden_dim": 384,
          "intermediate_dim": 1536, "head_dim": 32}
WORDS = ("the quick brown fox jumps over a lazy dog hello world naive cafe "
         "good bad film plot actor scene").split()
SPACE = "D=1/3;A=2/4;H=16/32;I=32/64"


def _texts(n, seed):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(3, 12))) for _ in range(n)]


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    keras.utils.set_random_seed(123)  # not the search's seed (0)
    teacher = TrimzooBackbone(vocabulary_size=74, num_layers=3, num_heads=4,
                              hidden_dim=32, intermediate_dim=64,
                              max_sequence_length=32)
    path = str(tmp_path_factory.mktemp("search") / "teacher")
    save_pretrained(teacher, load_tokenizer(FIXTURE), path)
    return path


def _config(teacher_dir, **overrides):
    config = get_config(f"teacher={teacher_dir},cost=flops,runlocal=True")
    config.space = SPACE
    for key, value in overrides.items():
        config[key] = value
    return config


# -- space -------------------------------------------------------------------

def test_space_grids():
    fractions = build_space("auto", MINILM)  # the paper grid has no H <= 384
    assert len(fractions) == 4 * 4 * 3 * 4
    assert {c.hidden_dim for c in fractions} == {192, 256, 384}
    assert {c.num_layers for c in fractions} == {2, 3, 4, 6}
    base = {"num_layers": 12, "num_heads": 12, "hidden_dim": 768,
            "intermediate_dim": 3072, "head_dim": 64}
    paper = build_space("auto", base)
    assert {c.hidden_dim for c in paper} == {512, 768}
    assert {c.num_heads for c in paper} == {4, 8, 12}
    # H / A heads (no teacher head size): H not divisible by A is skipped.
    large = dict(num_layers=24, num_heads=16, hidden_dim=1024,
                 intermediate_dim=4096, head_dim=None)
    grid = build_space("paper", large)
    assert len(grid) == 6 * 5 * (4 + 3 + 3)
    assert Candidate(4, 8, 1024, 768) in grid
    assert Candidate(4, 12, 1024, 768) not in grid
    extra = build_space("D=2,4;A=4;H=128;I=256", base, ffn_every=(None, 3),
                        normalizers=(None, "sigmoid"))
    # ffn_every=3 needs at least 3 layers: D=2 keeps only the None rows.
    assert len(extra) == 2 + 4
    assert "D4-A4-H128-I256-F3-Nsigmoid" in {c.name for c in extra}


@pytest.mark.parametrize("space, message", [
    ("", "empty"),
    ("D=;A=4;H=128;I=256", "no values"),
    ("D=2,16;A=4;H=128,1024;I=256", "larger than the reference"),
    ("huge", "Unknown space"),
])
def test_space_errors(space, message):
    base = {"num_layers": 12, "num_heads": 12, "hidden_dim": 768,
            "intermediate_dim": 3072, "head_dim": 64}
    with pytest.raises(ValueError, match=message):
        build_space(space, base)


# -- W and the partition ---------------------------------------------------------

def test_w_coefficient_by_hand():
    # |(120-30)/120| * |(12-3)/12| / 0.2 = 0.75 * 0.75 / 0.2
    assert w_coefficient(30, 3.0, 0.2, 120, 12.0) == pytest.approx(2.8125)
    assert w_coefficient(120, 3.0, 0.2, 120, 12.0) == 0.0
    # An exact copy (error 0) is floored instead of dividing by zero.
    assert w_coefficient(30, 3.0, 0.0, 120, 12.0) == pytest.approx(0.5625e9)
    with pytest.raises(ValueError, match="error"):
        w_coefficient(30, 3.0, -0.1, 120, 12.0)


def test_partition_trains_one_per_cell():
    rng = np.random.default_rng(0)
    params = rng.uniform(1, 100, 60)
    costs = params * rng.uniform(0.8, 1.2, 60)
    groups = partition(params, costs, 0.25)
    assert sum(len(g["members"]) for g in groups) == 60
    assert len(groups) < 60
    for g in groups:
        cells = {(int(params[k] / params.max() / 0.25),
                  int(costs[k] / costs.max() / 0.25)) for k in g["members"]}
        assert cells == {tuple(g["cell"])}
        factors = {k: (1 - params[k] / params.max())
                   * (1 - costs[k] / costs.max()) for k in g["members"]}
        assert factors[g["representative"]] == max(factors.values())
    epsilon = choose_epsilon(params, costs, 1 / 3)
    assert len(partition(params, costs, epsilon)) <= 20
    assert len(partition(params, costs, epsilon / 1.25)) > 20


# -- costs and the error estimate -------------------------------------------------

def test_costs(tmp_path):
    model = TrimzooBackbone(vocabulary_size=74, num_layers=1, num_heads=2,
                            hidden_dim=16, intermediate_dim=32,
                            max_sequence_length=16)
    flops = measure_costs(model, "flops", seq_len=16)
    assert flops["params"] == model.count_params()
    assert flops["flops"] == pytest.approx(
        flops_per_token(model, 16)["total"] * 16)
    assert flops["inference_cost"] == flops["flops"]
    for cost, batch_sizes in (("keras", (1, 4)), ("tflite", (1,))):
        timed = measure_costs(model, cost, batch_sizes=batch_sizes,
                              seq_len=16, rounds=2)
        assert set(timed["latency_ms"]) == {str(b) for b in batch_sizes}
        assert timed["inference_cost"] == timed["latency_ms"]["1"] > 0
    with pytest.raises(ValueError, match="Valid values"):
        measure_costs(model, "watts")


def test_inherit_and_random_init(teacher_dir, tmp_path):
    teacher, tokenizer = from_pretrained(teacher_dir)
    data = encode(tokenizer, _texts(24, 1), 16)
    held = encode(tokenizer, _texts(8, 2), 16)
    scores = teacher_importance(teacher, [data], max_batches=1)
    whole = Candidate(3, 4, 32, 64)
    inherited, kept = build_candidate(whole, teacher, scores, "inherit")
    x = {k: v[:2] for k, v in held.items()}
    np.testing.assert_allclose(inherited(x)["sequence_output"],
                               teacher(x)["sequence_output"], atol=1e-6)
    random, _ = build_candidate(whole, teacher, scores, "random")
    assert random.count_params() == inherited.count_params()
    kw = dict(train_inputs=data, eval_inputs=held, steps=0, batch_size=8)
    exact = estimate_error(inherited, teacher, kept, workdir="unused", **kw)
    fresh = estimate_error(random, teacher, kept, workdir="unused", **kw)
    assert exact["error"] < 1e-9 and fresh["error"] > 0.5
    small, kept = build_candidate(Candidate(1, 2, 16, 32), teacher, scores)
    assert (small.num_layers, small.hidden_dim, small.num_heads,
            small.intermediate_dim) == (1, 16, 2, 32)
    assert kept["layers"] == [2]  # the top layer
    # A narrower student learns the teacher's kept coordinates: its error is
    # estimated (one training step).
    narrow = estimate_error(small, teacher, kept,
                            workdir=str(tmp_path / "narrow"),
                            **dict(kw, steps=1))
    assert np.isfinite(narrow["error"]) and narrow["error"] > 0
    # With the attention term (compression's healing stage 1) each kept head
    # learns its source head: the loop logs the term.
    estimate_error(small, teacher, kept, workdir=str(tmp_path / "attention"),
                   attention_weight=1.0, **dict(kw, steps=1))
    logged = read_metrics(str(tmp_path / "attention"))
    assert logged and all(np.isfinite(e["attention_loss"]) for e in logged)
    assert logged[-1]["loss"] > logged[-1]["hidden_loss"]
    order = np.argsort(-np.asarray(scores["hidden"]), kind="stable")
    assert kept["hidden_dims"] == sorted(order[:16].tolist())
    with pytest.raises(ValueError, match="Valid values"):
        build_candidate(whole, teacher, scores, "pretrained")


# -- the search ----------------------------------------------------------------------

@pytest.mark.slow
def test_search_resumes_and_chooses(teacher_dir, tmp_path, monkeypatch):
    texts, held = _texts(48, 3), _texts(12, 4)
    config = _config(teacher_dir)
    work = str(tmp_path / "out")
    first = search(config, work, texts, held, stop_after=5)
    assert not first["finished"] and first["new"] == 5
    state = json.load(open(os.path.join(work, "search_state.json")))
    assert len(state["costs"]) == 5 and not state["errors"]

    calls = {"costs": 0, "errors": 0}
    measure, estimate = run_lib.measure_costs, run_lib.estimate_error

    def count(name, fn):
        def wrapped(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(run_lib, "measure_costs", count("costs", measure))
    monkeypatch.setattr(run_lib, "estimate_error", count("errors", estimate))
    second = search(config, work, texts, held, stop_after=13)
    assert not second["finished"]
    assert calls == {"costs": 11, "errors": 2}  # 16 candidates in all
    results = search(config, work, texts, held)
    rows = results["candidates"]
    assert results["finished"] and len(rows) == 16
    assert results["trained"] + results["skipped"] == 16
    assert results["skipped"] > 0 and results["trained"] == results["groups"]
    assert calls["costs"] == 11  # nothing measured twice
    assert calls["errors"] == results["trained"]  # nothing trained twice
    # Every trained candidate learnt (regression: candidates cut after the
    # first from the teacher frozen by its distillation task did not).
    state = json.load(open(os.path.join(work, "search_state.json")))
    for name, err in state["errors"].items():
        assert err["train_loss"] is not None
        assert err["grad_norm"] > 0, name
    # W by hand from the rows, and the chosen one maximises it.
    max_p = max(r["params"] for r in rows)
    max_i = max(r["inference_cost"] for r in rows)
    for r in rows:
        if r["trained"]:
            expected = (abs((max_p - r["params"]) / max_p)
                        * abs((max_i - r["inference_cost"]) / max_i)
                        / max(r["error"], 1e-9))
            assert r["W"] == pytest.approx(expected)
        else:
            assert r["W"] is None and r["representative"] != r["name"]
    best = max((r for r in rows if r["trained"]), key=lambda r: r["W"])
    assert results["chosen"] == best["name"]
    for name in ("report.md", "results.json", "pareto.png"):
        assert os.path.getsize(os.path.join(work, name)) > 0
    assert f"**{best['name']}**" in open(os.path.join(work, "report.md")).read()

    # The chosen folder loads and fine-tunes.
    backbone, tokenizer = from_pretrained(results["chosen_folder"])
    assert (f"D{backbone.num_layers}-A{backbone.num_heads}-H"
            f"{backbone.hidden_dim}-I{backbone.intermediate_dim}"
            == best["name"])
    model = TrimzooClassifier(backbone, num_classes=2)
    model.compile(optimizer="adam", loss=keras.losses.
                  SparseCategoricalCrossentropy(from_logits=True))
    x = encode(tokenizer, texts[:8], 16)
    history = model.fit(x, np.arange(8) % 2, epochs=3, verbose=0)
    assert np.isfinite(history.history["loss"]).all()

    # The proxy check on the finished search: only the check runs.
    teachers = []

    def fake_finetune(self, checkpoint, folder, teacher=None):
        # A stand-in fine-tune whose accuracy falls with the proxy error of
        # the candidate saved in ``checkpoint``; the plumbing must find a
        # perfect rank correlation. Distilled: 0.85.
        note = os.path.join(checkpoint, "search.json")
        if teacher:
            teachers.append((checkpoint, teacher))
            return {"test": {"accuracy": 0.85}, "best": {"score": 0.85}}
        if not os.path.exists(note):
            return {"test": {"accuracy": 0.9}, "best": {"score": 0.9}}
        name = json.load(open(note))["candidate"]
        error = self.state["errors"][name]["error"]
        return {"test": {"accuracy": 1 - error}, "best": {"score": 1 - error}}

    monkeypatch.setattr(Search, "_finetune", fake_finetune)
    trained = calls["errors"]
    check = search(_config(teacher_dir, check_finetune=3), work, texts,
                   held)["check"]
    assert calls["costs"] == 11 and calls["errors"] == trained + check["n"]
    assert check["n"] >= 3 and results["chosen"] in check["candidates"]
    assert check["spearman"] == pytest.approx(1.0)
    assert check["teacher"]["test_accuracy"] == 0.9
    # The chosen one is also distilled from the fine-tuned teacher, once.
    assert teachers == [(
        os.path.join(work, "check", results["chosen"], "model"),
        os.path.join(work, "check", "teacher", "finetune", "best"))]
    assert check["chosen"] == results["chosen"]
    assert check["chosen_distilled"]["test_accuracy"] == 0.85
    assert "task-distilled" in open(os.path.join(work, "report.md")).read()

    # Another init in the same workdir is refused.
    with pytest.raises(ValueError, match=r"other settings \(errors: "):
        search(_config(teacher_dir, init="random"), work, texts, held)


@pytest.mark.slow
def test_costs_only_reference(tmp_path):
    config = get_config("reference=bert_tiny,cost=flops,runlocal=True")
    config.space = "D=1/2;A=1/2;H=64/128;I=128/512"
    config.mark = "2,2,128,512"
    results = search(config, str(tmp_path / "ref"))
    assert len(results["candidates"]) == 16 and "chosen" not in results
    mark = results["mark"]
    # With head size H / A, A changes neither parameters nor FLOPs: the
    # 2-layer, 1-head twin ties with the mark.
    assert mark["candidates"] == 16 and mark["params_rank"] == 15
    assert mark["smaller_and_faster"] == 14


@pytest.mark.parametrize("change, message", [
    (dict(cost="watts"), "Unknown cost"),
    (dict(space=""), "empty"),
    (dict(space="D=1/8;A=2;H=16;I=32"), "larger than the reference"),
    (dict(init="pretrained"), "Unknown init"),
])
def test_bad_input(teacher_dir, tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        Search(_config(teacher_dir, **change), str(tmp_path), _texts(48, 7),
               _texts(12, 8))


def test_teacher_without_data(teacher_dir, tmp_path):
    with pytest.raises(ValueError, match="no data"):
        Search(_config(teacher_dir), str(tmp_path), [], [])
    with pytest.raises(ValueError, match="no data"):
        Search(_config(teacher_dir), str(tmp_path), _texts(4, 9),
               _texts(2, 9))


@pytest.mark.slow
def test_search_resumes_after_sigkill(teacher_dir, tmp_path, monkeypatch):
    # tools/search.py killed (SIGKILL) after its first trained candidate:
    # the same settings continue from search_state.json, measuring and
    # training only what it did not hold.
    import subprocess
    import sys

    from helpers import kill_when_state_has

    data = tmp_path / "text.txt"
    data.write_text("\n".join(_texts(60, 5)) + "\n", encoding="utf-8")
    work = str(tmp_path / "out")
    state_path = os.path.join(work, "search_state.json")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen(
        [sys.executable, os.path.join(root, "tools", "search.py"),
         f"--config={root}/configs/search.py:teacher={teacher_dir},"
         "cost=flops,runlocal=True", f"--config.space={SPACE}",
         f"--config.data.input={data}", "--config.progress=False",
         f"--workdir={work}"],
        cwd=root, env={**os.environ, "PYTHONPATH": root},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = kill_when_state_has(proc, state_path, "errors")
    assert not os.path.exists(os.path.join(work, "results.json"))
    measured, trained = set(state["costs"]), set(state["errors"])
    assert len(measured) == 16 and trained

    config = _config(teacher_dir)
    config.data.input = str(data)
    config.progress = False
    calls = []
    original = run_lib.estimate_error

    def counted(student, *args, **kwargs):
        calls.append(student)
        return original(student, *args, **kwargs)

    monkeypatch.setattr(run_lib, "estimate_error", counted)
    results = search(config, work)
    assert results["finished"]
    assert len(calls) == results["trained"] - len(trained) > 0
    done = json.load(open(state_path))
    for name in trained:  # the killed run's estimates are kept as they were
        assert done["errors"][name] == state["errors"][name]
