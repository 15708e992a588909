"""Feeding a pretraining run: the training stream and the held-out set.

Both read the sources of ``configs/pretrain.py`` (``data.input``,
``data.eval_input``: TFRecords from ``tools/create_pretraining_data.py`` or
text files; the embedded corpus for an empty ``data.input``) through
``trimzoo.data.pretraining.make_pretraining_dataset``.
"""

import os

from trimzoo.data import pretraining as data_lib

#: Seed of the held-out masks: the same positions at every evaluation, in
#: every run.
EVAL_SEED = 1234


def check_record_metadata(files, data_format, tokenizer, max_seq_length):
    """Refuses TFRecords made with another vocabulary or longer sequences
    (from the ``metadata.json`` that ``create_pretraining_records``
    writes beside them).

    Raises:
        ValueError: naming the folder and the mismatch.
    """
    if data_format == "auto":
        data_format = data_lib.detect_format(files)
    if data_format != "tfrecord":
        return
    vocab = tokenizer.get_vocabulary()
    for folder in sorted({os.path.dirname(f) for f in files}):
        meta = data_lib.read_metadata(folder)
        if meta is None:
            continue
        if meta.get("vocabulary_size") != len(vocab) or (
                meta.get("vocabulary_sha256")
                and meta["vocabulary_sha256"]
                != data_lib.vocabulary_sha256(vocab)):
            raise ValueError(
                f"The TFRecords in {folder!r} were made with another "
                f"vocabulary ({meta.get('vocab')!r}, "
                f"{meta.get('vocabulary_size')} tokens) than the "
                f"training tokenizer ({len(vocab)} tokens); set "
                "data.vocab to the vocabulary they were made with.")
        if meta.get("max_seq_length", 0) > max_seq_length:
            raise ValueError(
                f"The TFRecords in {folder!r} hold sequences of up to "
                f"{meta['max_seq_length']} tokens, more than "
                f"data.max_seq_length={max_seq_length}.")


class PretrainingData:
    """The input pipelines of one pretraining run.

    Args:
        config: ``ConfigDict`` from ``configs/pretrain.py``.
        tokenizer: the run's keras-hub tokenizer.
        special_ids: dict of its special token ids.
        texts: optional list of str, the training corpus in memory
            (replaces ``data.input``).
    """

    def __init__(self, config, tokenizer, special_ids, texts=None):
        self.config = config
        self.tokenizer = tokenizer
        self.special_ids = special_ids
        data = config.data
        if texts is None:
            self.source = data_lib.resolve_sources(data.input)
        else:
            self.source = {"texts": list(texts)}
        self.eval_source = None
        if data.get("eval_input"):
            self.eval_source = {"files": data_lib.list_files(data.eval_input)}
        for source in (self.source, self.eval_source):
            if source and source.get("files"):
                check_record_metadata(source["files"], data.format, tokenizer,
                                      int(data.max_seq_length))

    def _dataset(self, source, batch_size, seed, **kwargs):
        data = self.config.data
        return data_lib.make_pretraining_dataset(
            batch_size=batch_size,
            tokenizer=self.tokenizer,
            special_ids=self.special_ids,
            max_seq_length=int(data.max_seq_length),
            data_format=data.format,
            seed=seed,
            max_predictions=int(data.max_predictions_per_seq) or None,
            mask_rate=float(data.mask_rate),
            mask_token_rate=float(data.mask_token_rate),
            random_token_rate=float(data.random_token_rate),
            cycle_length=int(data.cycle_length),
            **source, **kwargs)

    def training(self, batch_size, start_example=0, num_input_pipelines=1,
                 input_pipeline_id=0):
        """The training stream of one input pipeline, ``start_example``
        examples in (see ``make_pretraining_dataset``)."""
        start_batch, remainder = divmod(int(start_example), int(batch_size))
        if remainder:
            raise ValueError(
                f"Cannot resume at example {start_example}: not a multiple "
                f"of the batch size {batch_size} (the batch size changed "
                "since the checkpoint was written).")
        return self._dataset(
            self.source, batch_size, int(self.config.seed),
            shuffle_buffer=int(self.config.data.shuffle_buffer),
            start_batch=start_batch,
            num_input_pipelines=num_input_pipelines,
            input_pipeline_id=input_pipeline_id)

    def evaluation(self):
        """``data.eval_batches`` global batches of the held-out set, the
        same batches with the same masks every time (no shuffling, seed
        ``EVAL_SEED``), or None without ``data.eval_input``."""
        if self.eval_source is None:
            return None
        dataset = self._dataset(
            self.eval_source, int(self.config.train.batch_size), EVAL_SEED,
            shuffle_buffer=0)
        return dataset.take(int(self.config.data.eval_batches)).cache()

    def benchmark(self, num_batches, batch_size):
        """Examples/s of the training pipeline alone (a separate dataset,
        so the data position is untouched)."""
        return data_lib.benchmark_dataset(self.training(batch_size),
                                          num_batches=num_batches)
