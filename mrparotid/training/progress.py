"""Lightning's progress: its tqdm bars on a terminal; without one (a log file, a pipe) one line
per epoch (``epoch 3/20: train/loss 0.512, val/acc 0.810 (4.2 s)``) and one per test or predict
stage, on stderr, from the global-zero process only.

``pl.Trainer(..., **trainer_progress(progress))`` picks the one that fits.
"""

from __future__ import annotations

import sys
import time

from pytorch_lightning.callbacks import ProgressBar

from mrparotid.io.progress import on_terminal


class EpochLines(ProgressBar):
    """A Lightning progress bar that writes one plain line per training epoch and per
    test/predict stage (no ``\\r``)."""

    def __init__(self):
        super().__init__()
        self._enabled = True
        self._start = time.monotonic()

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _line(self, text: str) -> None:
        if self._enabled:
            print(text, file=sys.stderr, flush=True)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.monotonic()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        metrics = {k: v for k, v in self.get_metrics(trainer, pl_module).items() if k != "v_num"}
        shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in sorted(metrics.items()))
        self._line(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
                   + (f": {shown}" if shown else "") + f" ({time.monotonic() - self._start:.1f} s)")

    def on_test_start(self, trainer, pl_module) -> None:
        self._start = time.monotonic()

    def on_test_end(self, trainer, pl_module) -> None:
        self._line(f"test: {_batches(trainer.num_test_batches)} batch(es) "
                   f"({time.monotonic() - self._start:.1f} s)")

    def on_predict_start(self, trainer, pl_module) -> None:
        self._start = time.monotonic()

    def on_predict_end(self, trainer, pl_module) -> None:
        self._line(f"predict: {_batches(trainer.num_predict_batches)} batch(es) "
                   f"({time.monotonic() - self._start:.1f} s)")


def _batches(counts) -> int:
    return int(sum(c for c in counts if c != float("inf")))


def trainer_progress(progress: bool) -> dict:
    """``enable_progress_bar`` and ``callbacks`` for a Trainer: nothing when ``progress`` is
    False, Lightning's bar on a terminal, else :class:`EpochLines`."""
    if not progress:
        return {"enable_progress_bar": False, "callbacks": []}
    if on_terminal():
        return {"enable_progress_bar": True, "callbacks": []}
    return {"enable_progress_bar": True, "callbacks": [EpochLines()]}
