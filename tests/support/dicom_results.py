"""Helpers of the DICOM SEG/SR and ``serve`` tests: a tiny trained segmenter (once per session),
phantom DICOM studies, dcmtk and dciodvfy where installed, and a SEG decoded onto a T1 grid by
plain pydicom (independently of the writer's own frame mapping)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

_CACHE: dict[str, Path] = {}

#: A small segmenter that finds both glands and the tumour on phantom studies (about 20 s).
SEGMENTER_FIT = ["--trainer.max_epochs", "12", "--data.image_size", "80", "--data.spacing_mm", "2.0",
                 "--model.channels", "[8,16,32]", "--model.strides", "[2,2]", "--model.num_res_units",
                 "0", "--trainer.precision", "32-true", "--data.batch_size", "8", "--optim.lr", "0.01"]


def trained_segmenter(tmp_path_factory) -> Path:
    """A ``segment fit`` run on six phantom patients (once per session): its best.ckpt."""
    if "segmenter" not in _CACHE:
        from mrparotid.cli.main import main
        from mrparotid.data.phantom import make_cohort

        root = tmp_path_factory.mktemp("serve_models")
        manifest = make_cohort(root / "cohort", 6, seed=0, progress=False)
        assert main(["segment", "fit", "-m", str(manifest), "--out", str(root / "seg"), "-q",
                     *SEGMENTER_FIT]) == 0
        _CACHE["segmenter"] = root / "seg" / "checkpoints" / "best.ckpt"
    return _CACHE["segmenter"]


def tiny_classifier(tmp_path_factory) -> Path:
    """A tiny seeded classifier checkpoint (tests/support/checkpoints.py), once per session."""
    if "classifier" not in _CACHE:
        from checkpoints import tiny_checkpoint

        path = tmp_path_factory.mktemp("serve_cls") / "cls.ckpt"
        tiny_checkpoint(path)
        _CACHE["classifier"] = path
    return _CACHE["classifier"]


def dcmtk(tool: str) -> str | None:
    """The path of dcmtk's ``tool`` (``storescu``, ``storescp``), None where dcmtk is absent
    (pynetdicom installs scripts of the same names, which are not dcmtk's)."""
    for candidate in dict.fromkeys([shutil.which(tool), f"/usr/bin/{tool}"]):
        if candidate and Path(candidate).is_file():
            out = subprocess.run([candidate, "--version"], capture_output=True, text=True, encoding="utf-8", timeout=30)
            if "dcmtk" in (out.stdout + out.stderr).lower():
                return candidate
    return None


def dciodvfy_errors(path: Path) -> list[str]:
    """The ``Error`` lines dciodvfy (dicom3tools) prints for ``path``; skips without dciodvfy."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")
    out = subprocess.run([exe, str(path)], capture_output=True, text=True, encoding="utf-8", timeout=120)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


def t1_frames(t1_files: list[Path]) -> dict[tuple[str, int], tuple[float, ...]]:
    """(SOP Instance UID, frame number) → ImagePositionPatient of every T1 frame (classic or
    enhanced)."""
    out = {}
    for f in t1_files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        if "PerFrameFunctionalGroupsSequence" in ds:
            for n, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
                pos = item.PlanePositionSequence[0].ImagePositionPatient
                out[(str(ds.SOPInstanceUID), n + 1)] = tuple(float(v) for v in pos)
        else:
            out[(str(ds.SOPInstanceUID), 1)] = tuple(float(v) for v in ds.ImagePositionPatient)
    return out


def decode_seg(seg_path: Path, t1: sitk.Image, t1_files: list[Path]) -> dict[str, np.ndarray]:
    """Segment label → uint8 (z, y, x) volume on the grid of ``t1`` (the T1 as read), from the
    SEG's frames placed at the position of the T1 frame each references."""
    seg = pydicom.dcmread(seg_path)
    positions = t1_frames(t1_files)
    pixels = seg.pixel_array.reshape(-1, int(seg.Rows), int(seg.Columns))
    labels = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    size = t1.GetSize()
    out = {label: np.zeros((size[2], size[1], size[0]), np.uint8) for label in labels.values()}
    for frame, item in zip(pixels, seg.PerFrameFunctionalGroupsSequence):
        ref = item.DerivationImageSequence[0].SourceImageSequence[0]
        key = (str(ref.ReferencedSOPInstanceUID), int(ref.get("ReferencedFrameNumber", 1) or 1))
        x, y, z = t1.TransformPhysicalPointToIndex(positions[key])
        assert (x, y) == (0, 0), "a SEG frame does not start at its T1 frame's first pixel"
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        out[labels[number]][z] |= frame.astype(np.uint8)
    return out


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("."))
