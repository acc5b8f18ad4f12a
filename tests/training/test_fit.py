"""Pure pieces of training: schedules, class weights, folds, channel sets, quick metrics."""

from __future__ import annotations

import numpy as np
import pytest

from mrparotid.constants import CLASSES
from mrparotid.errors import ManifestError
from mrparotid.models.lit_module import class_weights_from, lr_factor
from mrparotid.io.manifest import PatientCase
from mrparotid.data.splits import patient_folds
from mrparotid.training.ablate import SERIES_COMBINATIONS, with_mask
from mrparotid.training.fit import quick_metrics

PAPER = {"scheduler": "paper", "hold_epochs": 600, "step_epochs": 100, "gamma": 0.8}


@pytest.mark.parametrize("epoch, factor", [(0, 1.0), (599, 1.0), (600, 0.8), (699, 0.8), (700, 0.64),
                                           (1199, 0.8 ** 6)])
def test_paper_schedule(epoch, factor):
    assert lr_factor(epoch, PAPER, 1200) == pytest.approx(factor)


def test_cosine_schedule_warms_up_then_decays_to_zero():
    cfg = {"scheduler": "cosine", "warmup_epochs": 2}
    f = [lr_factor(e, cfg, 10) for e in range(11)]
    assert f[0] < f[1] < f[2] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[2:], f[3:]))
    assert f[10] == pytest.approx(0.0)
    assert lr_factor(5, {"scheduler": "none"}, 10) == 1.0


def test_class_weights():
    assert class_weights_from(None, [1, 2, 3, 4]) is None
    w = class_weights_from("balanced", [10, 20, 40, 10])
    assert w == pytest.approx([2.0, 1.0, 0.5, 2.0])
    assert class_weights_from([1, 2, 3, 4], [0, 0, 0, 0]) == [1.0, 2.0, 3.0, 4.0]


def test_seven_series_combinations_of_table_3():
    assert len(SERIES_COMBINATIONS) == 7
    sets = with_mask(SERIES_COMBINATIONS, True)
    assert sets[0] == ("T1", "mask") and sets[-1] == ("T1", "CE-T1", "T2", "mask")
    assert with_mask([("T2", "T1")], False) == [("T1", "T2")]


def test_ablate_all_enumerates_the_subsets_of_the_series_the_config_names():
    from mrparotid.config import load_config
    from mrparotid.training.ablate import config_series, series_combinations

    cfg = load_config(overrides=["--data.channels", "T1,CE-T1,T2,ADC,mask"])
    subsets = series_combinations(config_series(cfg))
    assert len(subsets) == 15 and ("ADC",) in subsets and subsets[-1] == ("T1", "CE-T1", "T2", "ADC")
    assert series_combinations(config_series(load_config())) == SERIES_COMBINATIONS


def _cases(n_per=5):
    return [PatientCase(f"{d[:2]}{i}", d, None) for d in ("pleomorphic_adenoma", "warthin", "malignant")
            for i in range(n_per)]


def test_patient_folds_disjoint_and_every_patient_tested_once():
    cases = _cases()
    folds = patient_folds(cases, 5, seed=1)
    tested = [p for f in folds for p in f["test"]]
    assert sorted(tested) == sorted(c.patient_id for c in cases)
    for f in folds:
        members = f["train"] + f["val"] + f["test"]
        assert len(members) == len(set(members)) == len(cases)
        diagnoses = {c.patient_id: c.diagnosis for c in cases}
        assert len({diagnoses[p] for p in f["test"]}) == 3      # stratified
    assert patient_folds(cases, 5, seed=1) == folds             # seeded


def test_patient_folds_bad_k():
    with pytest.raises(ManifestError):
        patient_folds(_cases(1), 5)


def _row(pid, true, probs, index=0):
    row = {"patient_id": pid, "side": "L", "index": index, "true": true,
           "pred": CLASSES[int(np.argmax(probs))]}
    row.update({f"p_{c}": p for c, p in zip(CLASSES, probs)})
    return row


def test_quick_metrics_slice_and_patient_accuracy():
    mal = [0.0, 0.0, 0.1, 0.9]
    pa = [0.1, 0.8, 0.1, 0.0]
    neg = [0.9, 0.05, 0.05, 0.0]
    rows = [_row("A", "malignant", mal, i) for i in range(3)] + [_row("A", "no_tumour", neg, 3)]
    rows += [_row("B", "warthin", pa, i) for i in range(2)] + [_row("B", "no_tumour", mal, 2)]
    m = quick_metrics(rows, 2)
    assert m["slices"] == 7
    assert m["slice_accuracy"] == pytest.approx(4 / 7)
    assert m["patients"] == 2 and m["patient_accuracy"] == pytest.approx(0.5)
    assert quick_metrics([], 2)["patient_accuracy"] is None


def test_warmup_applies_to_the_paper_schedule_too():
    cfg = dict(PAPER, warmup_epochs=3)
    assert [lr_factor(e, cfg, 1200) for e in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lr_factor(700, cfg, 1200) == pytest.approx(0.64)
    assert lr_factor(0, {"scheduler": "none", "warmup_epochs": 3}, 10) == 1.0
