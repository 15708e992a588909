"""The speed benchmark (``tools/benchmark.py``): parameters, FLOPs,
latency, throughput, memory, the report and its plots. The experiments
that reproduce the papers' tables are in ``trimzoo.experiments``."""
