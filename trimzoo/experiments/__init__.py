"""Experiments that reproduce the papers' claims on real text and write
them up as tables and figures (``docs/``):

- :mod:`trimzoo.experiments.ablation`: pretraining ablations (FFN
  sublayers, layernorms, attention normalisers, distillation) at small
  scale (``tools/ablate.py``);
- :mod:`trimzoo.experiments.compression_table`: every way to get a smaller
  model from a fine-tuned one, fine-tuned with and without distillation,
  measured in one run (``tools/compression_table.py``).

They use models, data, checkpoints, training, export and the speed
benchmark's timed calls (``trimzoo.bench.workloads``); nothing in trimzoo
imports them.
"""
