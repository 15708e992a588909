"""The auto fine-tuning recipe: epochs and learning rate from the data and
the model, pooling from the checkpoint (trimzoo.training.recipes)."""

import json
import os

import numpy as np
import pytest

from configs.finetune import get_config
from trimzoo.training import recipes
from trimzoo.training.finetune import finetune
from trimzoo.utils.io import read_json


def test_epochs_scale_to_the_number_of_steps():
    small = recipes.resolve_recipe(num_train=300, batch_size=32,
                                   hidden_dim=768)
    assert small["epochs"] == 10 and small["steps"] == 100
    assert small["auto"] == ["epochs", "learning_rate"]
    medium = recipes.resolve_recipe(num_train=1000, batch_size=32,
                                    hidden_dim=768)
    assert medium["epochs"] == 4  # 32 steps an epoch
    large = recipes.resolve_recipe(num_train=9760, batch_size=32,
                                   hidden_dim=768)
    assert (large["epochs"], large["learning_rate"]) == (3, 2e-5)
    tiny = recipes.resolve_recipe(num_train=20, batch_size=32, hidden_dim=768)
    assert tiny["epochs"] == recipes.MAX_EPOCHS
    capped = recipes.resolve_recipe(num_train=1000, batch_size=32,
                                    hidden_dim=768, max_steps_per_epoch=5)
    assert capped["steps_per_epoch"] == 5 and capped["epochs"] == 10


def test_few_steps_raise_the_learning_rate():
    """Up to 3x the width's rate below 900 steps; a large task keeps it."""
    rate = {n: recipes.resolve_recipe(num_train=n, batch_size=32,
                                      hidden_dim=384)["learning_rate"]
            for n in (300, 1000, 3000, 9760, 50000)}
    assert rate[300] == pytest.approx(3e-4)  # 100 steps: the cap
    assert rate[1000] == pytest.approx(1e-4 * (900 / 128) ** 0.5, rel=1e-2)
    assert rate[300] > rate[1000] > rate[3000] > rate[9760]
    assert rate[9760] == rate[50000] == 1e-4  # 915 steps and more


def test_learning_rate_rises_for_narrow_models():
    rates = [recipes.learning_rate_for_width(w)
             for w in (1024, 768, 512, 384, 256, 64)]
    assert rates[:2] == [2e-5, 2e-5] and rates[3] == 1e-4
    assert rates == sorted(rates) and rates[-1] == recipes.MAX_LEARNING_RATE


def test_values_set_in_the_config_are_kept():
    recipe = recipes.resolve_recipe(num_train=300, batch_size=32,
                                    hidden_dim=384, epochs=2,
                                    learning_rate=3e-5)
    assert (recipe["epochs"], recipe["learning_rate"]) == (2, 3e-5)
    assert recipe["auto"] == [] and recipe["reasons"] == []


def test_pooling_comes_from_the_checkpoint(tmp_path):
    assert recipes.resolve_pooling(None, "minilm")[0] == "mean"
    assert recipes.resolve_pooling("cls", "minilm") == ("cls", "asked for")
    assert recipes.resolve_pooling(None, str(tmp_path))[0] == "cls"
    os.makedirs(tmp_path / "1_Pooling")
    with open(tmp_path / "1_Pooling" / "config.json", "w") as f:
        json.dump({"pooling_mode_cls_token": False,
                   "pooling_mode_max_tokens": True}, f)
    assert recipes.resolve_pooling(None, str(tmp_path))[0] == "max"
    with open(tmp_path / "1_Pooling" / "config.json", "w") as f:
        f.write("{not json")
    assert recipes.resolve_pooling(None, str(tmp_path))[0] == "cls"


def test_the_defaults_leave_the_recipe_to_the_data():
    config = get_config("task=files")
    assert config.pooling is None
    assert config.train.epochs is None and config.train.learning_rate is None


def _write_keyword_rows(folder, rows, seed):
    rng = np.random.default_rng(seed)
    words = {"pos": ["good", "great", "fine", "happy", "funny"],
             "neg": ["bad", "awful", "dull", "sad", "boring"]}
    with open(folder, "w") as f:
        f.write("review,sentiment\n")
        for i in range(rows):
            label = ("pos", "neg")[i % 2]
            f.write(" ".join(rng.choice(words[label], 5)) + f",{label}\n")


def test_default_recipe_trains_a_small_set_to_convergence(tmp_path):
    """160 rows with every recipe value left to the defaults: the run
    chooses 10 epochs (5 steps each) at the narrow model's rate, records
    why, and learns the task (BERT's fixed 3 epochs at 2e-5 stay at
    chance on it)."""
    _write_keyword_rows(tmp_path / "train.csv", 160, seed=0)
    _write_keyword_rows(tmp_path / "validation.csv", 40, seed=1)
    config = get_config("task=files")
    config.data.train_files = str(tmp_path / "train.csv")
    config.data.validation_files = str(tmp_path / "validation.csv")
    config.data.text_column, config.data.label_column = "review", "sentiment"
    config.max_seq_length = 16
    config.model_overrides = {"num_layers": 2, "hidden_dim": 32,
                              "num_heads": 2, "intermediate_dim": 64}
    record = finetune(config, str(tmp_path / "run"))
    recipe = record["recipe"]
    assert recipe["epochs"] == 10 and recipe["steps"] == 50
    # Width 32 takes the most any width gets; 50 steps cannot raise it.
    assert recipe["learning_rate"] == recipes.MAX_LEARNING_RATE
    assert recipe["auto"] == ["epochs", "learning_rate"]
    assert record["pooling"] == "cls"  # A new model: BERT's pooler.
    assert len(record["evals"]) == 10
    assert record["evals"][-1]["validation"]["accuracy"] >= 0.9, record
    assert read_json(str(tmp_path / "run" / "metrics.json"))["recipe"] == recipe
