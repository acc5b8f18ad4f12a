"""Tiny classifier checkpoints (seeded weights, 32 px), the carved test patient and a scored
cohort with its checkpoint, for the diagnosis, clinic and report tests."""

from __future__ import annotations

import torch

from patients import patient_arrays, write_cohort
from mrparotid.config import load_config
from mrparotid.data.splits import split_patients, split_record
from mrparotid.io.manifest import read_manifest
from mrparotid.models.checkpoint import checkpoint_meta, load_checkpoint
from mrparotid.models.factory import build_classifier


def tiny_checkpoint(path, *overrides: str, split: dict | None = None, **meta_extra):
    """A tiny_resnet checkpoint with seeded weights at 32 px (with series flags when the overrides
    set ``augment.series_dropout``); ``split`` (a split record) and ``meta_extra`` go into its
    meta. Returns (config, loaded model)."""
    cfg = load_config(None, ["--model.name", "tiny_resnet", "--data.image_size", "32", *overrides])
    meta = {**checkpoint_meta(cfg, synthetic=True, split=split), **meta_extra}
    torch.manual_seed(0)
    model = build_classifier(cfg["model"], len(cfg["data"]["channels"]), pretrained=False,
                             series_flags=tuple(meta.get("series_flags", ())))
    torch.save({"state_dict": {"model." + k: v for k, v in model.state_dict().items()},
                "mrparotid": meta}, path)
    return cfg, load_checkpoint(path)


def carved_arrays():
    """The default patient, but the gland contour leaves the tumour out (as phantom contours do)."""
    arrays = patient_arrays(tumour_side="L")
    arrays["gland"][arrays["tumour"] > 0] = 0
    return arrays


def split_cohort(root):
    """A SYNTHETIC cohort under ``root`` whose saved split holds three test patients (A1 Warthin,
    left; A2 malignant, right; A3 pleomorphic adenoma, left) and one training patient, with a
    tiny checkpoint recording that split at ``root/m.ckpt``. Returns the manifest path."""
    rows = [("A1", "warthin", {"tumour_side": "L"}, "test"),
            ("A2", "malignant", {"tumour_side": "R"}, "test"),
            ("A3", "pleomorphic_adenoma", {"tumour_side": "L"}, "test"),
            ("T1", "warthin", {"tumour_side": "R"}, "train")]
    manifest = write_cohort(root, rows, comment="SYNTHETIC test cohort")
    cases = read_manifest(manifest).cases
    tiny_checkpoint(root / "m.ckpt", split=split_record(split_patients(cases), cases))
    return manifest
