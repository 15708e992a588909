"""A resumable training state (weights + optimizer state + a JSON record)."""

import os

# Kept importable from here for existing callers.
from trimzoo.utils.io import atomic_path, read_json, write_json  # noqa: F401


class TrainingState:
    """Weights (with optimizer state) and a small JSON record, per epoch.

    ``save(model, epoch, **extra)`` writes ``epoch-N.weights.h5`` and then
    ``state.json`` pointing at it; the JSON rename is the commit point, so
    an interrupted save leaves the previous state intact. Older weight files
    are removed after the commit.
    """

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        self.state_path = os.path.join(self.directory, "state.json")

    def load_record(self):
        return read_json(self.state_path)

    def save(self, model, epoch, **extra):
        os.makedirs(self.directory, exist_ok=True)
        name = f"epoch-{epoch}.weights.h5"
        with atomic_path(os.path.join(self.directory, name)) as tmp:
            model.save_weights(tmp)
        write_json(self.state_path, {"epoch": epoch, "weights": name, **extra})
        for other in os.listdir(self.directory):
            if other.endswith(".weights.h5") and other != name:
                os.remove(os.path.join(self.directory, other))

    def restore(self, model):
        """Loads the saved weights (and optimizer state) into ``model``;
        returns the record, or None when there is nothing to resume."""
        record = self.load_record()
        if record is None:
            return None
        path = os.path.join(self.directory, record["weights"])
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"{self.state_path} names {record['weights']}, which is "
                "missing; the checkpoint folder was modified by hand."
            )
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            optimizer.build(model.trainable_variables)
        model.load_weights(path)
        return record
