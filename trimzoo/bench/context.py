"""What every benchmark phase works with: the run's rows, the models
(built on demand, seeded by row), inputs, progress bars and round-robin
timing."""

import gc
import sys

import keras
from tqdm.auto import tqdm

from trimzoo.bench import workloads
from trimzoo.data.text_inputs import text_inputs
from trimzoo.bench.config import (build_backbone, resolve_precisions,
                                  resolve_reference, resolve_specs, round_key)
from trimzoo.utils import timing


class Context:
    """The state one phase reads and fills.

    Args:
        config: ``BenchmarkConfig``.
        rows: dict ``name -> row dict`` filled by earlier phases (the
            ``build`` phase starts from none).

    Attributes:
        rows: the rows; phases add their columns.
        results: the phase's run-level results (``rounds``,
            ``matmul_rate``, ``profiles``...), merged into the run's.
    """

    def __init__(self, config, rows=None):
        self.config = config
        self.specs = resolve_specs(config)
        self.reference = resolve_reference(config, self.specs)
        self.precisions = resolve_precisions(config)
        self.rows = {} if rows is None else rows
        self.results = {}
        self._backbones = {}
        self._peers = {}
        self._precisions = {}

    # -- models -------------------------------------------------------------

    def backbone(self, name):
        """The row's backbone, built (seeded by the row's position) on
        first use: every process builds the same weights."""
        if name not in self._backbones:
            index = [s.name for s in self.specs].index(name)
            keras.utils.set_random_seed(self.config.seed + index)
            self._backbones[name] = build_backbone(self.specs[index].to_json())
        return self._backbones[name]

    def peer(self, name):
        """The row's keras-hub peer (its weights copied into the row's
        backbone), or None when there is none or peers are off."""
        if not self.config.peers:
            return None
        if name not in self._peers:
            self._peers[name] = workloads.keras_hub_peer(self.backbone(name))
        return self._peers[name]

    def in_precision(self, name, precision, peer=False):
        """The row's backbone (``peer``: its keras-hub peer, or None) in
        ``precision`` (``workloads.in_precision``), with the weights of
        the float32 one; built on first use."""
        key = (name, precision, peer)
        if key not in self._precisions:
            # The peer first: building it sets the backbone's weights.
            model = self.peer(name) if self.rows[name]["peer"] else None
            if not peer:
                model = self.backbone(name)
            self._precisions[key] = None if model is None else (
                workloads.in_precision(model, precision))
        return self._precisions[key]

    def release(self):
        """Drops every model of this process."""
        self._backbones.clear()
        self._peers.clear()
        self._precisions.clear()
        gc.collect()

    def inputs(self, name, batch_size, seq_len):
        return text_inputs(batch_size, seq_len,
                                     self.rows[name]["vocabulary_size"])

    # -- timing and progress --------------------------------------------------

    def bar(self, total, desc):
        return tqdm(total=total, desc=desc, disable=not self.config.progress,
                    leave=False, file=sys.stderr)

    def each(self, items, desc):
        """Iterates ``items`` with a progress bar."""
        items = list(items)
        with self.bar(len(items), desc) as bar:
            for item in items:
                yield item
                bar.update(1)

    def rounds(self, calls, rounds, desc, phase=None):
        """``timing.round_robin`` with a progress bar; with ``phase`` the
        per-round seconds are kept in ``results["rounds"][phase]`` (goals
        take ratios of any two rows timed in the same phase)."""
        with self.bar(rounds, desc) as bar:
            times = timing.round_robin(
                calls, rounds=rounds,
                progress=lambda done: bar.update(1) if done <= rounds
                else None)
        if phase is not None:
            self.results.setdefault("rounds", {})[phase] = {
                round_key(key): [float(t) for t in values]
                for key, values in times.items()}
        return times
