"""Progress lines of a training run: one line per logged interval with the
step, the epoch, the loss, the speed and the estimated time left, printed
to stdout (terminals, logs, CI and ``make demo`` alike)."""

import datetime
import sys
import time

from trimzoo.training.loop import Hook

#: Lines per run when the caller does not choose the interval.
DEFAULT_LINES = 20


def log_every(total_steps, lines=DEFAULT_LINES):
    """Steps between progress lines for about ``lines`` lines per run.

    >>> log_every(200), log_every(3)
    (10, 1)
    """
    return max(1, int(total_steps) // int(lines))


class ProgressPrinter(Hook):
    """Prints a line at every logged interval of ``Trainer.train``.

    Example line::

        step 40/200 (epoch 1/2)  loss 0.6412  212.5 examples/s  ETA 0:00:45

    Args:
        total_steps: int.
        steps_per_epoch: int or None. Adds ``(epoch e/E)``.
        stream: file. Defaults to ``sys.stdout``.

    Examples:

    >>> import io
    >>> out = io.StringIO()
    >>> printer = ProgressPrinter(8, steps_per_epoch=4, stream=out)
    >>> for step in (1, 4, 8):
    ...     printer.on_log(None, step, {"loss": 0.5, "examples_per_sec": 10.0})
    >>> [line.split("  ")[0] for line in out.getvalue().splitlines()]
    ['step 1/8 (epoch 1/2)', 'step 4/8 (epoch 1/2)', 'step 8/8 (epoch 2/2)']
    """

    def __init__(self, total_steps, steps_per_epoch=None, stream=None):
        if total_steps < 1:
            raise ValueError(f"total_steps must be positive, got "
                             f"{total_steps}.")
        self.total = int(total_steps)
        self.steps_per_epoch = steps_per_epoch
        self.stream = stream
        self.start = self.start_step = None

    def on_log(self, trainer, step, values):
        now = time.perf_counter()
        first = self.start is None
        if first:  # The first interval includes tracing: no speed, no ETA.
            self.start, self.start_step = now, step
        parts = [f"step {step}/{self.total}"]
        if self.steps_per_epoch:
            epochs = -(-self.total // self.steps_per_epoch)
            epoch = -(-step // self.steps_per_epoch)
            parts[0] += f" (epoch {epoch}/{epochs})"
        if "loss" in values:
            parts.append(f"loss {float(values['loss']):.4f}")
        if values.get("examples_per_sec") and not first:
            parts.append(f"{values['examples_per_sec']:.1f} examples/s")
        done, seconds = step - self.start_step, now - self.start
        if done > 0 and seconds > 0:
            eta = (self.total - step) * seconds / done
            parts.append(f"ETA {datetime.timedelta(seconds=round(eta))}")
        print("  ".join(parts), file=self.stream or sys.stdout, flush=True)
