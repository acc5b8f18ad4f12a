"""The default checkpoints of ``diagnose``: the newest classifier and segmenter runs under ``runs/``.

A run's kind is read from its checkpoint's format record (``ckpt["mrparotid"]["format"]``), never
from folder names. Checkpoints are opened with ``weights_only=True`` and memory-mapped, so the
weights are not read.
"""

from __future__ import annotations

from pathlib import Path

from mrparotid.errors import ConfigError, MrParotidError

#: Checkpoint kinds ``diagnose`` looks for.
KINDS: tuple[str, ...] = ("classifier", "segmenter")

#: Where run checkpoints lie, relative to the runs folder (newest file wins).
PATTERNS: tuple[str, ...] = ("*/checkpoints/best.ckpt", "*/checkpoints/last.ckpt")


def checkpoint_kind(path: str | Path) -> str | None:
    """``"classifier"``, ``"segmenter"`` or None (not an mrparotid checkpoint, or unreadable)."""
    import torch

    from mrparotid.models.checkpoint import FORMAT, checkpoint_record

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # a damaged or foreign file is simply not a candidate
        return None
    meta = checkpoint_record(ckpt)
    fmt = meta.get("format") if meta is not None else None
    if fmt == FORMAT:
        return "classifier"
    if isinstance(fmt, str) and fmt.startswith("mrparotid-segmenter"):
        return "segmenter"
    return None


def newest_checkpoint(kind: str, runs_dir: str | Path = "runs") -> Path | None:
    """The newest (by modification time) checkpoint of ``kind`` of a finished run (one with
    ``summary.json``) under ``runs_dir``; a run's ``best.ckpt`` is preferred to its ``last.ckpt``.
    None when there is none."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    runs_dir = Path(runs_dir)
    best = {p.parent: p for p in runs_dir.glob(PATTERNS[0])}
    found = [p for p in list(best.values()) + [p for p in runs_dir.glob(PATTERNS[1]) if p.parent not in best]
             if (p.parent.parent / "summary.json").is_file()]           # finished runs only
    for path in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True):
        if checkpoint_kind(path) == kind:
            return path
    return None


def default_classifier(runs_dir: str | Path = "runs") -> Path:
    """:func:`newest_checkpoint` of a classifier run.

    Raises
    ------
    ConfigError
        No classifier run under ``runs_dir``.
    """
    return required_checkpoint("classifier", runs_dir, ConfigError(
        f"no --checkpoint given and no classifier run under {Path(runs_dir)}/ (checkpoints/best.ckpt)",
        fix="train one with 'mrparotid fit' or pass --checkpoint PATH"))


def required_checkpoint(kind: str, runs_dir: str | Path, missing: MrParotidError) -> Path:
    """:func:`newest_checkpoint` of ``kind`` under ``runs_dir``; raises ``missing`` (a typed
    error that names the fix) when there is none."""
    path = newest_checkpoint(kind, runs_dir)
    if path is None:
        raise missing
    return path
