"""Resuming a killed run, and the Lightning parts that make a run resumable.

A run folder is *complete* when it holds ``summary.json`` (written last, atomically). A folder
with ``config.yaml`` but no ``summary.json`` is an interrupted run, which
``mrparotid fit --resume RUN_DIR`` continues from ``checkpoints/last.ckpt`` with the run's own
``config.yaml`` and ``split.json`` (``mrparotid segment fit --resume`` a segmenter run, whose
``config.yaml`` says ``kind: segmenter``: :func:`run_kind`). What carries over: weights, optimiser and LR-scheduler states,
the epoch, ModelCheckpoint's best score and path (Lightning's checkpoint), and the Python, NumPy
and torch (CPU and CUDA) random states (:class:`RngStates`). Lightning checkpoints at the end of
each epoch, so a run killed mid-epoch repeats that epoch from its start, with the same random
draws: with ``trainer.deterministic: true`` the resumed run ends with the weights of an
uninterrupted one.

A trainer is resumable with ``pl.Trainer(..., **resumable_trainer_parts())`` (callbacks plus an
atomic checkpoint writer) and ``trainer.fit(..., ckpt_path=point.checkpoint, weights_only=True)``
where ``point = resume_point(run_dir)``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pytorch_lightning import Callback
from pytorch_lightning.plugins import TorchCheckpointIO

from mrparotid.config import load_config, read_yaml_mapping
from mrparotid.errors import CheckpointError, ConfigError
from mrparotid.io.atomic import atomic_path
from mrparotid.training.run_dir import holds_run

RUN_CONFIG = "config.yaml"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
RUN_KEYS_NOT_CONFIG = ("git", "version", "kind")   # recorded beside the config (kind: segmenter)
RESUME_FIX = ("the run's checkpoint is damaged or was replaced: restore the file the run wrote, or "
              "start the run again without --resume")


@dataclass(frozen=True)
class ResumePoint:
    """Where an interrupted run stands.

    ``cfg``: the run's config (its ``config.yaml``, validated); ``splits``: patient ids per split
    from ``split.json`` (None when the run was killed before writing it); ``checkpoint``:
    ``checkpoints/last.ckpt`` (None when killed before the first epoch ended: training restarts
    from epoch 0 in the same folder); ``complete``: ``summary.json`` is there, nothing to do;
    ``kind``: ``classifier`` (``fit``) or ``segmenter`` (``segment fit``).
    """

    run_dir: Path
    cfg: dict
    splits: dict[str, list[str]] | None
    checkpoint: Path | None
    complete: bool
    kind: str = "classifier"


def run_config(folder: str | Path) -> dict:
    """The validated config a run (or a cv/ablate folder) recorded in ``config.yaml``: a
    classifier's (:func:`mrparotid.config.load_config`) or, for ``kind: segmenter``, a
    segmenter's (:func:`mrparotid.segmentation.config.load_segment_config`).

    Raises
    ------
    ConfigError
        No ``config.yaml`` there (not a run folder, or killed before the run began).
    """
    saved = _saved_config(folder)
    body = {k: v for k, v in saved.items() if k not in RUN_KEYS_NOT_CONFIG}
    if saved.get("kind") == "segmenter":
        from mrparotid.segmentation.config import load_segment_config

        return load_segment_config(None, body)
    return load_config(None, body)


def run_kind(folder: str | Path) -> str:
    """``segmenter`` for a ``segment fit`` run folder, else ``classifier``.

    Raises
    ------
    ConfigError
        No ``config.yaml`` there.
    """
    return "segmenter" if _saved_config(folder).get("kind") == "segmenter" else "classifier"


def _saved_config(folder: str | Path) -> dict:
    path = Path(folder) / RUN_CONFIG
    if not path.is_file():
        raise ConfigError("not a run folder (no config.yaml): nothing to resume", path=folder,
                          fix="start the run again without --resume")
    return read_yaml_mapping(path, what="run config")


def resume_point(run_dir: str | Path) -> ResumePoint:
    """Read an interrupted (or complete) run folder; see :class:`ResumePoint`.

    Raises
    ------
    ConfigError
        ``run_dir`` holds no ``config.yaml``.
    CheckpointError
        An interrupted run's ``last.ckpt`` is not one it can resume from (:func:`resume_checkpoint`).
    """
    run_dir = Path(run_dir)
    cfg = run_config(run_dir)
    last = run_dir / LAST_CHECKPOINT
    kind = run_kind(run_dir)
    complete = holds_run(run_dir)
    if last.is_file() and not complete:
        resume_checkpoint(last, kind)          # refused here, before any data is read
    return ResumePoint(run_dir, cfg, saved_splits(run_dir), last if last.is_file() else None,
                       complete, kind)


def resume_checkpoint(path: Path, kind: str | None = None) -> dict:
    """The Lightning checkpoint a run resumes from (or tests with), loaded with
    ``weights_only=True`` and checked: its record (:mod:`mrparotid.models.checkpoint_schema`; a
    ``kind`` run's format when given), its weights (they fit the network the record describes) and
    the training state Lightning restores.

    Raises
    ------
    CheckpointError
        Not loadable safely (e.g. it holds pickled code), not an mrparotid run's checkpoint, or a
        section missing, of the wrong type or out of range.
    """
    from mrparotid.models.checkpoint import checkpoint_record, classifier_from, torch_load_safely
    from mrparotid.models.checkpoint_schema import CLASSIFIER_FORMAT, SEGMENTER_FORMAT, check_training_state
    from mrparotid.segmentation.infer import segmenter_from

    path = Path(path)
    if not path.is_file():
        raise CheckpointError("checkpoint not found", path=path, fix=RESUME_FIX)
    ckpt = torch_load_safely(path, "mrparotid training checkpoint", RESUME_FIX)
    meta = checkpoint_record(ckpt)
    wanted = {"classifier": (CLASSIFIER_FORMAT,), "segmenter": (SEGMENTER_FORMAT,)}.get(
        kind, (CLASSIFIER_FORMAT, SEGMENTER_FORMAT))
    if meta is None or meta.get("format") not in wanted:
        raise CheckpointError(f"not the checkpoint of an mrparotid {kind or 'training'} run", path=path,
                              fix=RESUME_FIX)
    (classifier_from if meta["format"] == CLASSIFIER_FORMAT else segmenter_from)(ckpt, path, RESUME_FIX)
    check_training_state(ckpt, path, RESUME_FIX)
    return ckpt


def saved_splits(run_dir: str | Path) -> dict[str, list[str]] | None:
    """Patient ids per split from a run's ``split.json``; None when there is none."""
    split_file = Path(run_dir) / "split.json"
    if not split_file.is_file():
        return None
    record = json.loads(split_file.read_text(encoding="utf-8"))
    return {k: list(v) for k, v in record["splits"].items()}


def resume_fit(run_dir: str | Path, *, progress: bool = True) -> dict:
    """``mrparotid fit --resume RUN_DIR``: finish an interrupted run (its summary, as ``fit``)."""
    from mrparotid.training.fit import fit

    point = resume_point(run_dir)
    if point.kind == "segmenter":
        raise ConfigError("this is a segmenter run, not a classifier run", path=run_dir,
                          fix=f"resume it with: mrparotid segment fit --resume {run_dir}")
    return fit(point.cfg, manifest=point.cfg["data"]["manifest"], out_dir=point.run_dir,
               splits=point.splits, progress=progress, resume=True)


# ----------------------------------------------------------------------------------------------
# random states: plain lists and tensors only, so that checkpoints still load with weights_only

def capture_rng() -> dict[str, Any]:
    """Python, NumPy and torch (CPU, and every CUDA device) random states."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": [kind, [int(k) for k in keys], int(pos), int(has_gauss), float(gauss)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Set the random states :func:`capture_rng` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


class RngStates(Callback):
    """Saves the random states in every checkpoint (at the end of an epoch, after its validation);
    after a resume, sets them back at ``on_fit_start``. That is before Lightning makes the first
    training iterator (whose base seed and shuffle draw from them); the sanity validation between
    runs inside Lightning's ``isolate_rng``. The next epoch's shuffling and augmentation then
    repeat those of the uninterrupted run."""

    def __init__(self) -> None:
        self._pending: dict | None = None

    def state_dict(self) -> dict[str, Any]:
        return capture_rng()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_fit_start(self, trainer, pl_module) -> None:
        if self._pending is not None:
            restore_rng(self._pending)
            self._pending = None


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, through :func:`mrparotid.io.atomic.atomic_path`: a kill or a
    full disk never leaves a truncated ``last.ckpt`` (OutputError names the path). Its reader
    (resuming, ``trainer.test(ckpt_path=...)``) is :func:`resume_checkpoint`: a damaged or unsafe
    file is a CheckpointError, for ``fit``, ``segment fit``, ``--cv`` and ablation folds alike."""

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        return resume_checkpoint(Path(path))

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


def resumable_trainer_parts(last: str | Path) -> dict[str, list]:
    """``callbacks`` and ``plugins`` to add to a ``pl.Trainer`` so that its run can resume: a
    checkpoint written to ``last`` (``RUN_DIR/checkpoints/last.ckpt``) at the end of every epoch
    (Lightning's own ``save_last`` only follows an improved best), the random states in it, and
    an atomic checkpoint writer. Put a monitoring ModelCheckpoint (best) before these callbacks,
    so that ``ckpt_path="best"`` finds it."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    last = Path(last)
    every_epoch = ModelCheckpoint(dirpath=last.parent, filename=last.stem, monitor=None,
                                  save_top_k=1, enable_version_counter=False,
                                  auto_insert_metric_name=False)
    return {"callbacks": [every_epoch, RngStates()], "plugins": [AtomicCheckpointIO()]}


# ----------------------------------------------------------------------------------------------
# cv and ablate folders: the plan (folds or channel sets and the split) is saved before any fold

def write_plan(out_root: Path, name: str, cfg: dict, plan: dict) -> None:
    """Save a multi-run folder's config (``config.yaml``) and ``plan`` (``<name>.json``)."""
    from mrparotid.config import dump_config
    from mrparotid.io.atomic import write_json

    out_root.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out_root / RUN_CONFIG)
    write_json(out_root / f"{name}.json", plan)


def read_plan(out_root: str | Path, name: str) -> tuple[dict, dict]:
    """(config, plan) that :func:`write_plan` saved.

    Raises
    ------
    ConfigError
        The folder holds no such plan.
    """
    path = Path(out_root) / f"{name}.json"
    if not path.is_file():
        raise ConfigError(f"no {name}.json here: not a folder this command started", path=out_root,
                          fix="pass the folder the interrupted command wrote (its --out)")
    return run_config(out_root), json.loads(path.read_text(encoding="utf-8"))
