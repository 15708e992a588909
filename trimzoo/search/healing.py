"""Ranking and healing the candidates cut from a teacher.

A candidate is cut from the teacher by importance (``plan`` over the
teacher's head and neuron scores, ``extract``), ranked by the search's error
proxy (a short hidden-state distillation, ``estimate_error``), and the best
are healed in two stages: hidden-state (and attention) distillation on the
task's texts without labels, then task distillation on logits
(``trimzoo.training.finetune`` with ``distill.teacher``). Every result is
cached in the run's state and every training resumes.
"""

import dataclasses
import os
import shutil

import keras
import numpy as np
from tqdm.auto import tqdm

from trimzoo.checkpoints.folders import (load_classifier_folder,
                                        save_classifier)
from trimzoo.models import extract
from trimzoo.models.costs import parameter_counts
from trimzoo.models.tokenizers import encode, special_token_ids
from trimzoo.search.estimate import estimate_error, plan, teacher_importance
from trimzoo.training.finetune import finetune
from trimzoo.utils.io import read_json, write_json


def accuracy(model, inputs, labels, batch_size=64):
    """The share of ``labels`` that classifier ``model`` predicts."""
    logits = model.predict(inputs, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == np.asarray(labels)))


@dataclasses.dataclass
class Teacher:
    """The teacher of a compression and its task, read once.

    Attributes:
        folder: str. The classifier folder (``RUN/best``).
        model: ``TrimzooClassifier``.
        tokenizer: its tokenizer.
        record: dict. The task it was fine-tuned on (``RUN/config.json``).
        texts: dict. ``{split: TextsForModel}`` of train/validation/test.
    """

    folder: str
    model: object
    tokenizer: object
    record: dict
    texts: dict


class Healer:
    """Cuts, ranks and heals candidates of ``teacher`` (a :class:`Teacher`)
    in ``out`` (its ``proxy/`` and ``candidates/`` folders).

    Args:
        teacher: :class:`Teacher`.
        settings: ``CompressSettings``.
        make_config: callable returning a fresh fine-tuning ConfigDict.
        out: str. The run's folder.
        state: dict. The run's state (``importance``, ``proxy``,
            ``healed``), updated in place.
        save: callable(). Persists the state.
        say: callable(str). Progress lines.
        out_of_time: callable() -> bool. The time budget is spent.
    """

    def __init__(self, teacher, settings, make_config, out, state, save, say,
                 out_of_time):
        self.teacher, self.settings = teacher, settings
        self.make_config, self.out = make_config, out
        self.state, self.save, self.say = state, save, say
        self.out_of_time = out_of_time
        self._inputs = {}

    def encoded(self, split, limit=None):
        """The first ``limit`` (None or 0: all) texts of ``split``
        tokenised, once per run (every candidate reuses them)."""
        key = (split, limit or None)
        if key not in self._inputs:
            texts = self.teacher.texts[split].texts
            if limit:
                texts = texts[:limit]
            self._inputs[key] = encode(self.teacher.tokenizer, texts,
                                       self.settings.seq_len)
        return self._inputs[key]

    def scored_split(self, split):
        """``(inputs, labels)`` a model is scored on: the first
        ``eval_examples`` (0: all) of ``split``."""
        texts = self.teacher.texts[split]
        n = self.settings.eval_examples or len(texts.texts)
        return self.encoded(split, limit=n), np.asarray(texts.labels[:n])

    def score(self, model, split):
        return accuracy(model, *self.scored_split(split))

    def importance(self):
        """The teacher's head and neuron importance (cached)."""
        if "importance" not in self.state:
            train = self.encoded("train", limit=256)
            batches = [{k: v[i:i + 32] for k, v in train.items()}
                       for i in range(0, len(train["token_ids"]), 32)]
            mask = special_token_ids(self.teacher.tokenizer).get("mask")
            self.state["importance"] = teacher_importance(
                self.teacher.model.backbone, batches, max_batches=8,
                mask_token_id=mask)
            self.save()
        return self.state["importance"]

    def cut(self, candidate):
        """The classifier of ``candidate`` cut from the teacher (head
        sliced) and its plan."""
        kept = plan(candidate, self.importance())
        return extract(self.teacher.model, **kept), kept

    def proxy(self, fitting, progress=True):
        """Proxy error of every frontier candidate (cached), best first."""
        train = self.encoded("train", limit=2048)
        held = self.encoded("validation", limit=256)
        for c in tqdm(fitting, desc="proxy errors", disable=not progress):
            if c.name in self.state["proxy"]:
                continue
            if self.out_of_time():
                break
            keras.utils.set_random_seed(self.settings.seed)
            student, kept = self.cut(c)
            workdir = os.path.join(self.out, "proxy", c.name)
            result = estimate_error(
                student.backbone, self.teacher.model.backbone, kept, train,
                held, workdir, steps=self.settings.proxy_steps,
                batch_size=16)
            shutil.rmtree(workdir, ignore_errors=True)
            self.state["proxy"][c.name] = result["error"]
            self.save()
            keras.backend.clear_session(free_memory=True)
        ranked = [c for c in fitting if c.name in self.state["proxy"]]
        ranked.sort(key=lambda c: (self.state["proxy"][c.name], c.name))
        return ranked

    def heal(self, candidate):
        """Two-stage distillation of ``candidate``; its row (cached)."""
        s = self.settings
        name = candidate.name
        if name in self.state["healed"]:
            return self.state["healed"][name]
        folder = os.path.join(self.out, "candidates", name)
        init = os.path.join(folder, "init")
        keras.utils.set_random_seed(s.seed)
        student, kept = self.cut(candidate)
        stage1 = {}
        if not os.path.isdir(init):
            what = "hidden-state" + (" and attention"
                                     if s.heal_attention else "")
            self.say(f"\n=== {name}: stage 1, {what} distillation "
                     f"({s.heal_steps} steps on the task's texts)")
            stage1 = estimate_error(
                student.backbone, self.teacher.model.backbone, kept,
                self.encoded("train", limit=s.train_examples),
                self.encoded("validation", limit=256),
                os.path.join(folder, "stage1"), steps=s.heal_steps,
                batch_size=s.heal_batch_size,
                attention_weight=s.heal_attention)
            save_classifier(student, self.teacher.tokenizer, init,
                            overwrite=True)
            write_json(os.path.join(folder, "stage1.json"), stage1)
            shutil.rmtree(os.path.join(folder, "stage1"), ignore_errors=True)
        stage1 = read_json(os.path.join(folder, "stage1.json"), {})
        self.say(f"=== {name}: stage 2, task distillation from the teacher "
                 "(logits)" + (f", {s.augment} teacher-labelled augmented "
                               f"cop{'y' if s.augment == 1 else 'ies'} per "
                               "example" if s.augment else ""))
        config = self.finetune_config(init)
        record = finetune(config, os.path.join(folder, "run"))
        best = os.path.join(folder, "run", "best")
        model = load_classifier_folder(best)
        row = {"name": name, **dataclasses.asdict(candidate),
               "params": int(parameter_counts(model.backbone)["params"]),
               "proxy_error": self.state["proxy"].get(name),
               "stage1_error": stage1.get("error"),
               "folder": best,
               "validation_accuracy": self.score(model, "validation"),
               "test_accuracy": self.score(model, "test"),
               "train_seconds": record.get("train_seconds")}
        self.state["healed"][name] = row
        self.save()
        self.say(f"   {name}: validation {row['validation_accuracy']:.4f}, "
                 f"test {row['test_accuracy']:.4f}")
        return row

    def finetune_config(self, init):
        """Stage 2's fine-tuning config: the teacher's task and data, the
        student in ``init``, distillation from the teacher."""
        s, record = self.settings, self.teacher.record
        config = self.make_config()
        config.task = record["task"]
        for key, value in (record.get("data") or {}).items():
            if key in config.data and not key.startswith("max_"):
                config.data[key] = value
        config.init_checkpoint = init
        config.distill.teacher = self.teacher.folder
        config.max_seq_length = s.seq_len
        # None keeps the fine-tuning recipe's choice (auto: epochs for at
        # least 100 steps, the learning rate by width and steps).
        if s.epochs is not None:
            config.train.epochs = s.epochs
        if s.learning_rate is not None:
            config.train.learning_rate = s.learning_rate
        config.data.max_train_examples = s.train_examples
        config.distill.augment = s.augment
        config.data.max_eval_examples = s.eval_examples
        config.data.max_test_examples = s.eval_examples
        config.seed = s.seed
        return config
