"""The sub-architecture search end to end: space, measured costs, error
estimates of one candidate per ε-cell, the W-coefficient, the chosen
candidate as a checkpoint folder, and (optionally) a check of the error
proxy against fine-tuned accuracy.

Everything measured is cached by candidate in ``<workdir>/search_state.json``
(written atomically after every candidate), so a killed search continues
where it stopped: cached costs are not re-measured, trained candidates not
re-trained. A workdir holding measurements taken under other settings is
refused.
"""

import copy
import logging
import os

import keras
import numpy as np
from scipy import stats
from tqdm.auto import tqdm

from trimzoo.checkpoints import from_pretrained, save_pretrained
from trimzoo.data.pretraining import load_corpus_texts
from trimzoo.models.tokenizers import encode, special_token_ids
from trimzoo.models import TrimzooBackbone
from trimzoo.models.zoo import preset_config
from trimzoo.search import algorithm, report
from trimzoo.search.costs import check_cost, measure_costs, speedup
from trimzoo.search.estimate import (
    build_candidate,
    check_init,
    estimate_error,
    teacher_importance,
)
from trimzoo.search.space import (build_space, candidate_config,
                                  reference_shape)
from trimzoo.utils.io import read_json, write_json
from trimzoo.utils.run_folder import RunFolder

logger = logging.getLogger(__name__)

STATE_FILE = "search_state.json"
# Everything a search writes in its workdir (``trimzoo.utils.run_folder``).
OUTPUTS = (STATE_FILE, "train", "check", "chosen", "chosen_train",
           "results.json", "report.md", "pareto.png")


class Search:
    """One search in ``workdir`` under ``config`` (``configs/search.py``).

    Args:
        config: ConfigDict (see ``configs/search.py``).
        workdir: str. Output folder; an existing search there resumes.
        texts: list of str or None. Training text (overrides
            ``config.data.input``).
        eval_texts: list of str or None. Held-out text.
    """

    def __init__(self, config, workdir, texts=None, eval_texts=None):
        self.config = config
        self.workdir = os.fspath(workdir)
        check_cost(config.cost)
        self.timed_cost = config.cost if config.cost != "flops" else "keras"
        self.batch_sizes = sorted({1, int(config.batch_size)})
        self.teacher = self.tokenizer = None
        if config.teacher:
            check_init(config.init)
            self.teacher, self.tokenizer = from_pretrained(config.teacher)
            self.reference = reference_shape(self.teacher)
        elif config.reference:
            ref = preset_config(config.reference)
            self.reference = {k: ref[k] for k in (
                "num_layers", "num_heads", "hidden_dim", "intermediate_dim")}
            self.reference["head_dim"] = None
            self.reference_config = ref
        else:
            raise ValueError("Give a teacher checkpoint folder (teacher=...) "
                             "or, for costs only, a reference preset "
                             "(reference=bert_large).")
        self.candidates = build_space(
            config.space, self.reference, tuple(config.ffn_every) or (None,),
            tuple(config.normalizers) or (None,))
        self.by_name = {c.name: c for c in self.candidates}
        # The workdir is the search's own: the same settings resume, others
        # are refused (``trimzoo.utils.run_folder``).
        self.folder = RunFolder(
            self.workdir, "search", self._settings(), OUTPUTS,
            inputs=[config.teacher], adopt=STATE_FILE, flag="--workdir")
        self.state_path = self.folder.join(STATE_FILE)
        self.state = self.folder.read_state(STATE_FILE, {
            "costs": {}, "errors": {}, "check": {}})
        self.data = self._data(texts, eval_texts) if self.teacher else None

    # -- state ---------------------------------------------------------------

    def _settings(self):
        c = self.config
        costs = {"teacher": os.path.abspath(c.teacher) if c.teacher else "",
                 "reference": c.reference, "cost": c.cost,
                 "batch_sizes": self.batch_sizes, "seq_len": c.seq_len,
                 "rounds": c.rounds}
        errors = {"init": c.init, "data": c.data.to_dict(),
                  "train": c.train.to_dict(), "task": c.task,
                  "seed": c.seed}
        return {"costs": costs, "errors": errors}

    def save_state(self):
        write_json(self.state_path, self.state)

    # -- data ----------------------------------------------------------------

    def _data(self, texts, eval_texts):
        c = self.config.data
        if texts is None:
            if c.input:
                with open(c.input, encoding="utf-8") as f:
                    lines = [line.strip() for line in f]
                lines = [t for t in lines if t]
                cut = len(lines) - max(1, len(lines) // 10)
                texts, eval_texts = lines[:cut], lines[cut:]
            else:
                texts = load_corpus_texts("train")
                eval_texts = load_corpus_texts("validation")
        texts = [t for t in texts if t and t.strip()][:c.max_train]
        eval_texts = [t for t in (eval_texts or []) if t and t.strip()]
        eval_texts = eval_texts[:c.max_eval]
        need = int(self.config.train.batch_size)
        if len(texts) < need or not eval_texts:
            raise ValueError(
                f"The teacher has no data to learn from: {len(texts)} "
                f"training texts (need at least train.batch_size={need}) "
                f"and {len(eval_texts)} held-out texts; give "
                "data.input=<text file, one text per line> or texts.")
        rng = np.random.default_rng(self.config.seed)
        texts = [texts[i] for i in rng.permutation(len(texts))]
        train = encode(self.tokenizer, texts, c.seq_len)
        held_out = encode(self.tokenizer, eval_texts, c.seq_len)
        return train, held_out

    # -- phases --------------------------------------------------------------

    def importance(self):
        """Teacher importance scores (computed once, cached)."""
        if "importance" not in self.state:
            train = self.data[0]
            size = 32
            batches = [{k: v[i:i + size] for k, v in train.items()}
                       for i in range(0, len(train["token_ids"]), size)]
            self.state["importance"] = teacher_importance(
                self.teacher, batches,
                max_batches=self.config.importance_batches,
                mask_token_id=special_token_ids(self.tokenizer)["mask"])
            self.save_state()
        return self.state["importance"]

    def architecture(self, candidate):
        """The candidate's backbone (inherited weights, or random for a
        reference shape): what the costs are measured on."""
        if self.teacher is None:
            return TrimzooBackbone(**candidate_config(
                self.reference_config, candidate, None))
        return build_candidate(candidate, self.teacher, self.importance(),
                               init="inherit")[0]

    def _budget(self, stop_after):
        return lambda: stop_after is not None and self._new >= stop_after

    def measure(self):
        """Costs of every candidate (cached); False when stopped early."""
        c = self.config
        todo = [x for x in self.candidates if x.name not in self.state["costs"]]
        for cand in tqdm(todo, desc="costs", disable=not c.progress):
            if self._stop():
                return False
            model = self.architecture(cand)
            self.state["costs"][cand.name] = measure_costs(
                model, c.cost, self.batch_sizes, c.seq_len, c.rounds)
            del model
            keras.backend.clear_session(free_memory=True)
            self._new += 1
            self.save_state()
        return True

    def groups(self):
        costs = [self.state["costs"][x.name] for x in self.candidates]
        params = [x["params"] for x in costs]
        inference = [x["inference_cost"] for x in costs]
        epsilon = self.config.epsilon or algorithm.choose_epsilon(
            params, inference, self.config.max_train_fraction)
        return epsilon, algorithm.partition(params, inference, epsilon)

    def _train(self, cand, folder, init=None):
        c = self.config
        student, kept = build_candidate(cand, self.teacher, self.importance(),
                                        init=init or c.init, seed=c.seed)
        keras.utils.set_random_seed(c.seed)
        result = estimate_error(
            student, self.teacher, kept, self.data[0], self.data[1], folder,
            steps=c.train.steps, batch_size=c.train.batch_size,
            learning_rate=c.train.learning_rate)
        return student, result

    def _finetune(self, checkpoint, folder, teacher=None):
        """Fine-tunes ``checkpoint`` with ``config.finetune`` (distilled from
        the fine-tuned classifier folder ``teacher`` when given); the record
        of ``trimzoo.training.finetune.finetune``."""
        from trimzoo.training.finetune import finetune  # only with a task

        ft = copy.deepcopy(self.config.finetune)
        ft.init_checkpoint = os.path.abspath(checkpoint)
        if self.config.task:
            ft.task = self.config.task
        if teacher:
            ft.distill.teacher = os.path.abspath(teacher)
        return finetune(ft, folder)

    def _save(self, model, path, extra):
        save_pretrained(model, self.tokenizer, path, overwrite=True,
                        extra_files={"search.json": extra})

    def train(self, stop_after=None):
        """Error estimates of the representatives (cached)."""
        c = self.config
        epsilon, groups = self.groups()
        costs = self.state["costs"]
        max_p = max(costs[x.name]["params"] for x in self.candidates)
        max_i = max(costs[x.name]["inference_cost"] for x in self.candidates)
        todo = [self.candidates[g["representative"]] for g in groups]
        todo = [x for x in todo if x.name not in self.state["errors"]]
        for cand in tqdm(todo, desc="train", disable=not c.progress):
            if self._stop():
                return False
            folder = os.path.join(self.workdir, "train", cand.name)
            student, result = self._train(cand, folder)
            if c.task:
                path = os.path.join(folder, "model")
                self._save(student, path, {"candidate": cand.as_dict()})
                record = self._finetune(path, os.path.join(folder, "task"))
                result["distill_error"] = result["error"]
                result["error"] = 1.0 - record["best"]["score"]
            w = algorithm.w_coefficient(
                costs[cand.name]["params"],
                costs[cand.name]["inference_cost"], result["error"], max_p,
                max_i)
            best = self.state.get("best")
            if best is None or w > best["W"]:
                # The best so far is saved now, so no retraining at the end.
                self._save(student, os.path.join(self.workdir, "chosen"),
                           {"name": cand.name, "W": w,
                            "teacher": self.config.teacher, **result})
                self.state["best"] = {"name": cand.name, "W": w}
            self.state["errors"][cand.name] = result
            del student
            keras.backend.clear_session(free_memory=True)
            self._new += 1
            self.save_state()
        return True

    def rows(self):
        """One dict per candidate: shape, costs, error, W, trained or
        skipped (and the cell representative that stood for it)."""
        epsilon, groups = self.groups()
        costs = self.state["costs"]
        max_p = max(costs[x.name]["params"] for x in self.candidates)
        max_i = max(costs[x.name]["inference_cost"] for x in self.candidates)
        rep = {}
        for g in groups:
            for k in g["members"]:
                rep[k] = g["representative"]
        rows = []
        for k, cand in enumerate(self.candidates):
            cost = costs[cand.name]
            row = {"name": cand.name, **cand.as_dict(), **cost,
                   "cost_factor": algorithm.cost_factor(
                       cost["params"], cost["inference_cost"], max_p, max_i)}
            if self.teacher is not None:
                err = self.state["errors"].get(cand.name)
                row["trained"] = err is not None
                row["representative"] = self.candidates[rep[k]].name
                row["error"] = err["error"] if err else None
                row["W"] = (algorithm.w_coefficient(
                    cost["params"], cost["inference_cost"], err["error"],
                    max_p, max_i) if err else None)
                if err:
                    row["estimate"] = err
            rows.append(row)
        return epsilon, groups, rows

    def check(self, rows, chosen):
        """Fine-tunes ``config.check_finetune`` trained candidates spread
        over the front (and the chosen one, and the teacher); Spearman rank
        correlation of the proxy error with the fine-tuned test error."""
        n = int(self.config.check_finetune)
        trained = [r for r in rows if r["trained"]]
        front = [trained[k] for k in algorithm.pareto_front(
            [r["inference_cost"] for r in trained],
            [r["error"] for r in trained])]
        picks = [front[int(round(j))] for j in
                 np.linspace(0, len(front) - 1, min(n, len(front)))]
        by_error = sorted(trained, key=lambda r: r["error"])
        for j in np.linspace(0, len(by_error) - 1, len(by_error)):
            if len({r["name"] for r in picks}) >= n:
                break
            picks.append(by_error[int(round(j))])
        names = list(dict.fromkeys([r["name"] for r in picks]
                                   + [chosen["name"]]))
        done = self.state["check"]
        for name in tqdm(names, desc="fine-tune",
                         disable=not self.config.progress):
            if name in done:
                continue
            folder = os.path.join(self.workdir, "check", name)
            student, result = self._train(self.by_name[name],
                                          os.path.join(folder, "distill"))
            path = os.path.join(folder, "model")
            self._save(student, path, {"candidate": name})
            record = self._finetune(path, os.path.join(folder, "finetune"))
            done[name] = {"proxy_error": self.state["errors"][name]["error"],
                          "retrained_proxy_error": result["error"],
                          "test_accuracy": record["test"]["accuracy"],
                          "validation_accuracy": record["best"]["score"]}
            self.save_state()
        if "teacher" not in self.state:
            record = self._finetune(self.config.teacher, os.path.join(
                self.workdir, "check", "teacher", "finetune"))
            self.state["teacher"] = {
                "test_accuracy": record["test"]["accuracy"],
                "validation_accuracy": record["best"]["score"]}
            self.save_state()
        # The chosen candidate once more, task-distilled from the fine-tuned
        # teacher: the accuracy a user gets from the search's answer.
        distilled = self.state.setdefault("distilled", {})
        name = chosen["name"]
        if name not in distilled:
            folder = os.path.join(self.workdir, "check", name)
            record = self._finetune(
                os.path.join(folder, "model"),
                os.path.join(folder, "distilled"),
                teacher=os.path.join(self.workdir, "check", "teacher",
                                     "finetune", "best"))
            distilled[name] = {"test_accuracy": record["test"]["accuracy"],
                               "validation_accuracy": record["best"]["score"]}
            self.save_state()
        points = [done[k] for k in names if k in done]
        rho = stats.spearmanr([p["proxy_error"] for p in points],
                              [1 - p["test_accuracy"] for p in points])
        return {"candidates": {k: done[k] for k in names},
                "teacher": self.state["teacher"],
                "chosen": name, "chosen_distilled": distilled[name],
                "spearman": float(rho.statistic),
                "spearman_pvalue": float(rho.pvalue), "n": len(points)}

    def run(self, stop_after=None):
        """Runs (or resumes) the search.

        Args:
            stop_after: int or None. Stop after this many new measurements
                or trainings (a planned interruption); None runs to the end.

        Returns:
            dict: the results (also in ``results.json``), or
            ``{"finished": False, ...}`` when stopped early.
        """
        try:
            return self._run(stop_after)
        finally:
            self.folder.close()  # the lock; the results stay

    def _run(self, stop_after):
        self._new = 0
        self._stop = self._budget(stop_after)
        progress = {"finished": False}
        if not self.measure():
            return {**progress, "new": self._new}
        if self.teacher is not None and not self.train():
            return {**progress, "new": self._new}
        epsilon, groups, rows = self.rows()
        results = {"finished": True, "new": self._new,
                   "settings": self._settings(),
                   "reference": self.reference, "epsilon": epsilon,
                   "groups": len(groups), "candidates": rows}
        if self.teacher is not None:
            trained = [r for r in rows if r["trained"]]
            chosen = max(trained, key=lambda r: r["W"])
            results["trained"] = len(trained)
            results["skipped"] = len(rows) - len(trained)
            results["chosen"] = chosen["name"]
            path = os.path.join(self.workdir, "chosen")
            note = read_json(os.path.join(path, "search.json"), {})
            if note.get("name") != chosen["name"]:
                student, result = self._train(
                    self.by_name[chosen["name"]],
                    os.path.join(self.workdir, "chosen_train"))
                self._save(student, path, {"name": chosen["name"],
                                           "W": chosen["W"],
                                           "teacher": self.config.teacher,
                                           **result})
            model = from_pretrained(path)[0]
            results["chosen_folder"] = path
            timed = self.state.setdefault("speedup", {})
            if timed.get("name") != chosen["name"]:
                timed.clear()
                timed.update(name=chosen["name"], batches={
                    str(b): speedup(model, self.teacher, self.timed_cost, b,
                                    self.config.seq_len)
                    for b in self.batch_sizes})
                self.save_state()
            results["speedup"] = timed["batches"]
            if self.config.check_finetune:
                results["check"] = self.check(rows, chosen)
        if self.config.mark:
            results["mark"] = report.placement(rows, self.config.mark)
        write_json(os.path.join(self.workdir, "results.json"), results)
        report.write(results, self.workdir)
        return results


def search(config, workdir, texts=None, eval_texts=None, stop_after=None):
    """Runs or resumes a search (see ``Search``); returns its results."""
    return Search(config, workdir, texts, eval_texts).run(stop_after)
