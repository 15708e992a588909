"""Tasks, data loading, tokenised ``tf.data`` pipelines and official metrics.

The usual path::

    examples, spec = load_task_data("glue/sst2", "train")
    dataset = encode_dataset(examples, tokenizer, spec, max_seq_length=128,
                             batch_size=32, shuffle=True)
    ...
    compute_metrics(spec, labels, predictions)

Submodules: ``tasks`` (task table, metrics), ``glue`` (tfds and TSV),
``rotten_tomatoes`` (embedded real task), ``files`` (CSV/TSV/JSONL),
``pipeline`` (tokenisation and batching). The tokenizers live beside the
models, in ``trimzoo.models.tokenizers``.
"""

from trimzoo.data.files import DataError, read_examples
from trimzoo.data.load import load_task_data
from trimzoo.data.pipeline import encode_dataset, examples_to_dataset
from trimzoo.data.tasks import (METRICS, TASKS, TaskSpec, compute_metrics,
                                files_task, get_task)

__all__ = [
    "DataError",
    "METRICS",
    "TASKS",
    "TaskSpec",
    "compute_metrics",
    "encode_dataset",
    "examples_to_dataset",
    "files_task",
    "get_task",
    "load_task_data",
    "read_examples",
]
