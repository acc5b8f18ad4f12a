"""DataModule: patient-level splits, channel selection, uint8 batches → float [0, 1], augmentation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from patients import write_cohort
from mrparotid.data.cache import load_slices
from mrparotid.config import load_config
from mrparotid.data.datamodule import ParotidDataModule
from mrparotid.errors import ManifestError
from mrparotid.data.crops import PLANES

DIAGNOSES = ("pleomorphic_adenoma", "warthin", "malignant")


def config(*overrides: str) -> dict:
    return load_config(None, ["--data.image_size", "16", "--data.batch_size", "4",
                              "--data.test_fraction", "0.34", "--data.val_fraction", "0.5", *overrides])


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Nine patients, three per diagnosis, no split column; prepared once (16 px crops)."""
    root = tmp_path_factory.mktemp("dm")
    rows = [(f"P{i:02d}", DIAGNOSES[i % 3], {"tumour_side": "LR"[i % 2]}) for i in range(9)]
    path = write_cohort(root, rows)
    ParotidDataModule(config(), path, progress=False).prepare_data()
    return path


def make_dm(path, *overrides, **kwargs) -> ParotidDataModule:
    dm = ParotidDataModule(config(*overrides), path, progress=False, **kwargs)
    dm.setup("fit")
    return dm


def ids_of(dm) -> dict[str, set]:
    return {split: set(data.patient_id.tolist()) for split, data in dm.data.items()}


def test_split_is_seeded_and_disjoint(cohort):
    a, b = make_dm(cohort), make_dm(cohort)
    assert a.splits == b.splits and ids_of(a) == ids_of(b)
    assert all(a.splits.values())                     # 9 patients at 0.34 / 0.5: every split used
    seen = [p for ids in a.splits.values() for p in ids]
    assert len(seen) == len(set(seen)) == 9
    other = make_dm(cohort, "--data.split_seed", "3")
    assert other.splits != a.splits                   # the seed matters (and nothing else changed)
    for split, ids in ids_of(a).items():
        assert ids == set(a.splits[split])            # slices follow their patient


def test_manifest_split_column_is_respected(cohort, tmp_path):
    text = cohort.read_text(encoding="utf-8").splitlines()   # the split column is there, empty
    assert text[0] == "patient_id,diagnosis,patient_dir,split"
    fixed = {"P00": "test", "P01": "val", "P02": "train", "P05": "train"}
    lines = [text[0]] + [ln + fixed.get(ln.split(",")[0], "") for ln in text[1:]]
    path = cohort.parent / "with_split.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dm = make_dm(path)
    for pid, split in fixed.items():
        assert pid in dm.splits[split]
    assert sum(len(v) for v in dm.splits.values()) == 9


def test_overlapping_splits_are_refused(cohort):
    with pytest.raises(AssertionError, match="patient P00 is in split 'train' and 'test'"):
        make_dm(cohort, splits={"train": ["P00", "P01"], "val": ["P02"], "test": ["P00"]})


def test_no_training_patients(cohort):
    with pytest.raises(ManifestError, match="no training patients"):
        make_dm(cohort, splits={"train": [], "val": ["P02"], "test": ["P00"]})


def test_setup_is_idempotent(cohort):
    dm = make_dm(cohort)
    before = dm.data["train"]
    dm.setup("test")
    assert dm.data["train"] is before


@pytest.mark.parametrize("channels,n", [("T1,CE-T1,T2,mask", 4), ("T2,mask", 2), ("CE-T1", 1)])
def test_batches_are_float_unit_range_with_the_chosen_channels(cohort, channels, n):
    dm = make_dm(cohort, "--data.channels", channels)
    dm.trainer = SimpleNamespace(training=False)
    x8, y = next(iter(dm.val_dataloader()))
    assert x8.dtype == torch.uint8 and x8.shape[1:] == (n, 16, 16) and y.dtype == torch.int64
    x, y2 = dm.on_after_batch_transfer((x8, y), 0)
    assert x.dtype == torch.float32 and 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
    torch.testing.assert_close(x, x8.float() / 255.0)              # validation: no augmentation
    assert torch.equal(y2, y)


def test_inputs_match_the_cached_planes(cohort):
    dm = make_dm(cohort, "--data.channels", "mask,T2")
    data = dm.data["train"]
    pid = data.patient_id[0]
    stored, _ = load_slices(dm.prepared.entries[pid])
    first = data.patient_id == pid
    np.testing.assert_array_equal(data.x[first].numpy()[:, 0], stored.crops[:, PLANES.index("T2")])
    np.testing.assert_array_equal(data.x[first].numpy()[:, 1], stored.crops[:, PLANES.index("gland")])
    np.testing.assert_array_equal(data.y[first].numpy(), stored.labels)
    np.testing.assert_array_equal(data.side[first], stored.sides)
    np.testing.assert_array_equal(data.index[first], stored.slice_index)


def test_series_mask_tumour_blanks_the_series_outside_the_tumour(cohort):
    dm = make_dm(cohort, "--data.series_mask", "tumour", "--data.channels", "T2,mask")
    data = dm.data["train"]
    negatives = data.y == 0
    assert negatives.any() and not data.x[negatives, 0].any()       # no tumour: empty T2
    assert data.x[~negatives, 0].any() and data.x[negatives, 1].any()   # the mask channel stays


def test_training_batches_are_augmented(cohort):
    dm = make_dm(cohort)
    torch.manual_seed(0)
    x8, y = next(iter(dm.train_dataloader()))
    assert len(y) == 4                                               # drop_last with a full batch
    dm.trainer = SimpleNamespace(training=True)
    x, _ = dm.on_after_batch_transfer((x8.clone(), y), 0)
    assert x.dtype == torch.float32 and x.shape == x8.shape
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert not torch.allclose(x, x8.float() / 255.0)
    dm.trainer = None                                                # outside a Trainer: plain
    x, _ = dm.on_after_batch_transfer((x8.clone(), y), 0)
    torch.testing.assert_close(x, x8.float() / 255.0)


def test_loaders_and_class_counts(cohort):
    dm = make_dm(cohort)
    counts = dm.class_counts()
    assert counts.shape == (4,) and counts.sum() == len(dm.data["train"]) and counts[0] > 0
    assert sum(len(b[1]) for b in dm.test_dataloader()) == len(dm.data["test"])
    assert sum(len(b[1]) for b in dm.val_dataloader()) == len(dm.data["val"])
    # no validation patients: no validation slices, never the training slices
    dm2 = make_dm(cohort, splits={"train": ["P00", "P01", "P02"], "val": [], "test": ["P03"]})
    assert not dm2.has_val() and len(dm2.val_dataloader()) == 0
