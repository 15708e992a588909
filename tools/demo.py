"""The zoo at a glance: every preset's parameters and a forward pass."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from absl import app, flags  # noqa: E402

flags.DEFINE_string("out", "demo_out", "Output folder.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import numpy as np

    import trimzoo

    rows = []
    for name in trimzoo.models.list_models():
        model = trimzoo.models.create(name)
        ids = np.array([[2, 100, 200, 300, 3]], "int32")
        out = model({"token_ids": ids, "segment_ids": np.zeros_like(ids),
                     "padding_mask": np.ones_like(ids)})
        rows.append((name, model.num_layers, model.count_params(),
                     tuple(out["sequence_output"].shape)))
        print(f"{name:15s} layers={rows[-1][1]:3d} params={rows[-1][2]:,}")
    os.makedirs(FLAGS.out, exist_ok=True)


if __name__ == "__main__":
    app.run(main)
