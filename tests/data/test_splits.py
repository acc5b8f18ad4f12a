"""The patient split: a patient's split depends only on its id, the seed and the manifest column."""

from __future__ import annotations

import pytest

from mrparotid.data.splits import patient_unit, split_patients
from mrparotid.io.manifest import PatientCase

DIAGNOSES = ("pleomorphic_adenoma", "warthin", "malignant")


def cohort(n: int) -> list[PatientCase]:
    return [PatientCase(f"P{i:03d}", DIAGNOSES[i % 3], None) for i in range(n)]


def where(splits: dict) -> dict[str, str]:
    return {pid: name for name, ids in splits.items() for pid in ids}


def test_removing_any_one_patient_moves_no_other():
    cases = cohort(30)
    full = where(split_patients(cases, test_fraction=0.2, val_fraction=0.2, seed=42))
    for i in range(len(cases)):
        rest = where(split_patients(cases[:i] + cases[i + 1:], test_fraction=0.2, val_fraction=0.2,
                                    seed=42))
        assert rest == {p: s for p, s in full.items() if p != cases[i].patient_id}


def test_adding_patients_moves_no_one():
    small = where(split_patients(cohort(20), seed=7))
    big = where(split_patients(cohort(60), seed=7))
    assert all(big[p] == s for p, s in small.items())


def test_fractions_are_roughly_met_on_200_patients():
    counts = {k: len(v) for k, v in split_patients(cohort(200), test_fraction=0.1, val_fraction=0.1,
                                                   seed=42).items()}
    # expected 20 test, 18 val, 162 train; binomial SD about 4
    assert 8 <= counts["test"] <= 32 and 6 <= counts["val"] <= 30 and counts["train"] >= 140


def test_seed_matters_and_draws_are_uniform():
    assert split_patients(cohort(40), seed=1) != split_patients(cohort(40), seed=2)
    units = [patient_unit(f"P{i}", 3) for i in range(2000)]
    assert all(0 <= u < 1 for u in units) and abs(sum(units) / len(units) - 0.5) < 0.03


def test_manifest_column_first_and_a_training_patient_kept():
    cases = [PatientCase("A", "warthin", None, split="test"), PatientCase("B", "warthin", None)]
    assert split_patients(cases, test_fraction=0.99, val_fraction=0.0) == {
        "train": ["B"], "val": [], "test": ["A"]}
    assert split_patients(cohort(5), test_fraction=0.0, val_fraction=0.0)["train"] == [
        f"P{i:03d}" for i in range(5)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_patient_twice(seed):
    splits = split_patients(cohort(50), test_fraction=0.3, val_fraction=0.3, seed=seed)
    ids = [p for v in splits.values() for p in v]
    assert len(ids) == len(set(ids)) == 50


def test_a_train_test_manifest_gets_validation_carved_from_train_never_from_test():
    from mrparotid.data.splits import split_record

    cases = [PatientCase(f"P{i:03d}", DIAGNOSES[i % 3], None, "test" if i < 10 else "train") for i in range(60)]
    splits = split_patients(cases, test_fraction=0.1, val_fraction=0.2, seed=1)
    assert len(splits["val"]) == 10 and len(splits["test"]) == 10
    assert not set(splits["val"]) & {f"P{i:03d}" for i in range(10)}
    assert split_patients(cases, test_fraction=0.1, val_fraction=0.2, seed=1) == splits   # seeded
    assert split_record(splits, cases)["val_carved_from_train"] == splits["val"]
    explicit = [PatientCase("V1", "malignant", None, "val")] + cases
    assert split_patients(explicit, val_fraction=0.2, seed=1)["val"] == ["V1"]           # explicit wins
