"""Run folders: where a run goes, what it records about itself, and the embedded phantom cohort.

A run folder holds ``config.yaml`` (resolved, with git hash), ``split.json`` (the patient split,
fixed once made), ``checkpoints/best.ckpt`` and ``checkpoints/last.ckpt``, ``metrics.csv``
(Lightning's CSV logger), ``predictions_val.csv`` / ``predictions_test.csv`` (the evaluation
format), ``summary.json`` and ``evaluation/``.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from mrparotid.errors import ConfigError

RANK_VARIABLES = ("LOCAL_RANK", "NODE_RANK", "RANK")   # set by Lightning / torchrun in workers


def mrparotid_home() -> Path:
    return Path(os.environ.get("MRPAROTID_HOME", Path.home() / ".cache" / "mrparotid"))


def default_manifest(cfg: dict, *, progress: bool = True) -> Path:
    """The manifest to use: ``data.manifest``, else the embedded SYNTHETIC phantom cohort
    (written under ``$MRPAROTID_HOME`` on first use)."""
    if cfg["data"].get("manifest"):
        return Path(cfg["data"]["manifest"])
    from mrparotid.data.phantom import make_cohort

    n = int(cfg["data"]["phantom_patients"])
    root = mrparotid_home() / f"phantom-v2-{n}"   # v2: three centres, DWI and ADC
    manifest = root / "manifest.csv"
    if not manifest.exists():
        print(f"making the embedded SYNTHETIC phantom cohort ({n} patients) in {root}")
        make_cohort(root, n, seed=0, progress=progress)
    return manifest


def prepared_cohort(cfg: dict, manifest: str | Path | None, *, progress: bool = True):
    """(manifest path, :class:`~mrparotid.data.cache.PreparedCohort`) of ``manifest``, else of
    the embedded phantom cohort, with every patient's crops cached."""
    from mrparotid.data.cache import prepare_cohort
    from mrparotid.io.manifest import read_manifest

    manifest_path = Path(manifest) if manifest else default_manifest(cfg, progress=progress)
    return manifest_path, prepare_cohort(read_manifest(manifest_path, check_dirs=False), cfg,
                                         progress=progress)


def resolve_run_dir(out_dir: str | Path | None, trainer_cfg: dict, *, overwrite: bool = False) -> Path:
    """``out_dir``, else ``runs/<timestamp>``.

    A run in several processes (DDP) needs ``out_dir``: every process re-runs the command and must
    find the same folder. A folder that already holds a finished run (``summary.json``, written
    last) is refused unless ``overwrite``, so a finished run is never silently replaced, while a
    run that failed part-way never blocks its rerun; DDP worker processes (rank > 0) join the
    folder that rank 0 made.
    """
    if out_dir is None:
        if process_count(trainer_cfg) != 1:
            raise ConfigError("a run in several processes needs an explicit run folder",
                              fix="pass --out RUN_DIR (on a filesystem every process can reach)")
        out_dir = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(out_dir)
    if not is_worker() and not overwrite and holds_run(run_dir):
        raise ConfigError("this folder already holds a run", path=run_dir,
                          fix="choose another --out, or pass --overwrite to replace it")
    return run_dir


def holds_run(run_dir: Path) -> bool:
    """True when ``run_dir`` holds a finished run (fit writes ``summary.json`` last)."""
    return (Path(run_dir) / "summary.json").is_file()


def require_complete_run(checkpoint: str | Path) -> None:
    """Refuse a checkpoint of an interrupted run: its run folder (the checkpoint's parent's parent)
    has ``config.yaml`` but no ``summary.json``. A checkpoint outside a run folder passes.

    Raises
    ------
    CheckpointError
        The run was killed or failed before it finished; the fix names ``fit --resume`` (``segment
        fit --resume`` for a segmenter run).
    """
    from mrparotid.errors import CheckpointError

    run_dir = Path(checkpoint).resolve().parent.parent
    if (run_dir / "config.yaml").is_file() and not holds_run(run_dir):
        from mrparotid.training.resume import run_kind

        verb = "segment fit" if run_kind(run_dir) == "segmenter" else "fit"
        raise CheckpointError("the checkpoint's run did not finish (no summary.json in its run "
                              "folder), so its model is not final", path=checkpoint,
                              fix=f"finish it with: mrparotid {verb} --resume {run_dir}")


def is_worker() -> bool:
    """True in a DDP worker process (rank > 0)."""
    return any(os.environ.get(var, "0") != "0" for var in RANK_VARIABLES)


def process_count(trainer_cfg: dict) -> int | None:
    """Processes a Trainer config asks for (devices x nodes); None when it cannot tell ("auto")."""
    devices = trainer_cfg.get("devices", "auto")
    nodes = int(trainer_cfg.get("num_nodes", 1) or 1)
    if isinstance(devices, (list, tuple)):
        count = len(devices)
    elif isinstance(devices, int) or (isinstance(devices, str) and devices.strip().isdigit()):
        count = int(devices)
    else:
        return None
    return count * nodes


def git_hash() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def quiet_lightning() -> None:
    """Keep Lightning's console to progress bars and real warnings."""
    import logging
    import warnings

    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (".*exists and is not empty.*", ".*LeafSpec.*", ".*does not have many workers.*",
                    ".*litlogger.*", ".*the number of training batches.*",
                    ".*multiple `ModelCheckpoint` callbacks.*"):   # best + every-epoch last
        warnings.filterwarnings("ignore", message=pattern)
