"""A Lightning callback that scores each validation epoch at the patient level: the log loss of
the calibrated patient p(malignant) (:func:`mrparotid.decision.fit.selection_figure`), logged as
``val/patient_log_loss``, the figure ``best.ckpt`` is chosen on (lower is better)."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch

from mrparotid.decision.fit import selection_figure

MONITOR = "val/patient_log_loss"


class PatientValidation(pl.Callback):
    """Collects the validation slice probabilities (in loader order, which is the split's slice
    order) and logs :data:`MONITOR` at the end of each validation epoch. ``patient_ids`` and
    ``labels`` are the validation split's, one per slice. Epochs before ``from_epoch`` log inf,
    so the checkpoint is chosen among the later ones (early epochs still move fast, and a figure
    on a few validation patients can favour a model that has barely learnt); ``history`` keeps
    every epoch's value."""

    def __init__(self, patient_ids: np.ndarray, labels: np.ndarray, from_epoch: int = 0):
        self.patient_ids = np.asarray(patient_ids)
        self.labels = np.asarray(labels)
        self.from_epoch = int(from_epoch)
        self._probs: list[torch.Tensor] = []
        self.history: list[float] = []

    def state_dict(self) -> dict:
        """``history`` goes into every checkpoint, so a resumed run keeps the epochs before it
        (the curve, and the chosen epoch :func:`mrparotid.training.selection.add_validation_curve`
        reads from it, stay those of ``best.ckpt``)."""
        return {"history": [None if v is None else float(v) for v in self.history]}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = list(state_dict.get("history", []))

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._probs = []

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if outputs is not None:
            self._probs.append(outputs.detach().float().cpu())

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not self._probs:
            return
        probs = torch.cat(self._probs)
        if trainer.world_size > 1:   # DDP: each process saw every world_size-th slice (padded)
            probs = interleave(pl_module.all_gather(probs.to(pl_module.device)).cpu(), len(self.labels))
        probs = probs.numpy()
        if len(probs) != len(self.labels):      # a partial loop (limit_val_batches): not a figure
            return
        value = selection_figure(probs, self.labels, self.patient_ids)
        while len(self.history) < trainer.current_epoch:      # epochs before a resume: not seen here
            self.history.append(None)
        self.history.append(value)
        eligible = trainer.current_epoch >= self.from_epoch and np.isfinite(value)
        pl_module.log(MONITOR, float(value) if eligible else float("inf"), prog_bar=True)


def interleave(gathered: torch.Tensor, n: int) -> torch.Tensor:
    """The slices in split order from ``all_gather`` of each process's share (world, m, C): a
    ``DistributedSampler`` without shuffling gives process ``w`` the slices ``w, w + world, ...``
    (padded from the start to equal shares), so row ``j * world + w`` is ``gathered[w, j]``."""
    return gathered.permute(1, 0, 2).reshape(-1, gathered.shape[-1])[:n]
