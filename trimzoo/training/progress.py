"""Progress lines for training runs whose output is not a terminal (logs,
CI, ``make demo``), where Keras' progress bar is either one line per epoch
or a flood of carriage returns."""

import datetime
import sys
import time

import keras

#: Lines per run when ``every`` is not given.
DEFAULT_LINES = 20


class ProgressLogger(keras.callbacks.Callback):
    """Prints one line every ``every`` training steps: step, epoch, loss,
    examples per second and the estimated time left.

    Example line::

        step 40/200 (epoch 1/2)  loss 0.6412  212.5 examples/s  ETA 0:00:45

    Args:
        batch_size: int. Global batch size (examples per step).
        every: int or None. Steps between lines; None: about 20 lines per
            run. Defaults to None.
        stream: file. Defaults to ``sys.stdout``.

    Examples:
    >>> import io, numpy as np, keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> out = io.StringIO()
    >>> _ = model.fit(np.zeros((8, 2)), np.zeros(8), batch_size=2, epochs=2,
    ...               verbose=0, callbacks=[ProgressLogger(2, every=2,
    ...                                                    stream=out)])
    >>> [line.split("  ")[0] for line in out.getvalue().splitlines()]
    ['step 2/8 (epoch 1/2)', 'step 4/8 (epoch 1/2)', 'step 6/8 (epoch 2/2)', 'step 8/8 (epoch 2/2)']
    """

    def __init__(self, batch_size, every=None, stream=None):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        if every is not None and every < 1:
            raise ValueError(f"every must be positive, got {every}.")
        self.batch_size = int(batch_size)
        self.every = every
        self.stream = stream
        self.epoch = 0

    def on_train_begin(self, logs=None):
        self.start = None
        self.start_step = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        steps = self.params.get("steps") or 0
        epochs = self.params.get("epochs") or 1
        if not steps:
            return  # Unknown epoch length: no total, no ETA.
        step = self.epoch * steps + batch + 1
        total = epochs * steps
        now = time.perf_counter()
        if self.start is None:  # The first step includes tracing: skip it.
            self.start, self.start_step = now, step
        every = self.every or max(1, total // DEFAULT_LINES)
        if step % every and step != total:
            return
        done = step - self.start_step
        seconds = now - self.start
        rate = done / seconds if done and seconds > 0 else None
        parts = [f"step {step}/{total} (epoch {self.epoch + 1}/{epochs})"]
        if logs and "loss" in logs:
            parts.append(f"loss {float(logs['loss']):.4f}")
        if rate:
            eta = datetime.timedelta(seconds=round((total - step) / rate))
            parts += [f"{rate * self.batch_size:.1f} examples/s", f"ETA {eta}"]
        print("  ".join(parts), file=self.stream or sys.stdout, flush=True)


def progress_callbacks(batch_size, interactive, every=None):
    """``[ProgressLogger]`` when output is not a terminal, else ``[]`` (the
    Keras progress bar is shown there)."""
    return [] if interactive else [ProgressLogger(batch_size, every)]
