"""The patient split: a patient's split depends only on its id, the seed and the manifest column;
leave-one-centre-out folds hold each centre in one role."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from mrparotid.data.splits import patient_unit, split_patients
from mrparotid.errors import ConfigError
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


# --- leave-one-centre-out ----------------------------------------------------------------------


def centre_cohort(spec: list[tuple[int, int]]) -> list[PatientCase]:
    """Patients from (centre index, diagnosis index) pairs; centre ``C<i>``."""
    return [PatientCase(f"P{i:03d}", DIAGNOSES[d], None, None, f"C{c}") for i, (c, d) in enumerate(spec)]


COHORTS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), min_size=2, max_size=40).filter(
    lambda spec: len({c for c, _ in spec}) >= 2)


@settings(max_examples=60, deadline=None)
@given(spec=COHORTS, seed=st.integers(0, 9), val_fraction=st.sampled_from([0.0, 0.1, 0.3]))
def test_a_centre_is_in_one_role_per_fold_and_validation_never_from_the_test_centre(spec, seed, val_fraction):
    from mrparotid.data.splits import centre_folds

    cases = centre_cohort(spec)
    centre_of = {c.patient_id: c.center for c in cases}
    centres, folds = centre_folds(cases, seed=seed, val_fraction=val_fraction)
    assert centres == sorted(set(centre_of.values())) and len(folds) == len(centres)
    tested = []
    for centre, split in zip(centres, folds):
        roles = {}
        for role, ids in (("test", split["test"]), ("dev", split["train"] + split["val"])):
            for pid in ids:
                roles.setdefault(centre_of[pid], set()).add(role)
        assert all(len(r) == 1 for r in roles.values())               # one role per centre
        assert {centre_of[p] for p in split["test"]} == {centre}        # the whole held-out centre ...
        assert sorted(split["test"]) == sorted(p for p, c in centre_of.items() if c == centre)
        assert centre not in {centre_of[p] for p in split["val"]}       # ... never validates
        assert sorted(split["train"] + split["val"] + split["test"]) == sorted(centre_of)
        tested += split["test"]
    assert sorted(tested) == sorted(centre_of)                          # each patient tested once


def test_loco_validation_is_stratified_by_diagnosis():
    from mrparotid.data.splits import centre_folds

    cases = centre_cohort([(i % 2, 0) for i in range(30)] + [(i % 2, 1) for i in range(20)]
                          + [(i % 2, 2) for i in range(10)])       # 3:2:1, two centres
    _, folds = centre_folds(cases, seed=0, val_fraction=0.3)
    dx = {c.patient_id: c.diagnosis for c in cases}
    for split in folds:
        rest = split["train"] + split["val"]
        for d in DIAGNOSES:
            share = sum(dx[p] == d for p in rest) / len(rest)
            assert abs(sum(dx[p] == d for p in split["val"]) / len(split["val"]) - share) < 0.1


def test_loco_refuses_patients_without_a_centre_and_a_single_centre():
    from mrparotid.data.splits import centre_folds

    cases = centre_cohort([(0, 0), (1, 1), (1, 2)])
    cases[1] = PatientCase("NOC", "warthin", None, None, None)
    with pytest.raises(ConfigError, match="NOC") as err:
        centre_folds(cases)
    assert "--centre-from-dicom" in str(err.value)
    with pytest.raises(ConfigError, match="at least 2 centres"):
        centre_folds(centre_cohort([(0, 0), (0, 1), (0, 2)]))


def test_centre_held_out_assertion_catches_leakage():
    from mrparotid.data.splits import assert_centre_held_out

    centre_of = {"A1": "A", "A2": "A", "B1": "B"}
    assert_centre_held_out({"train": ["B1"], "val": [], "test": ["A1", "A2"]}, centre_of, "A")
    with pytest.raises(AssertionError, match="centre-level leakage"):
        assert_centre_held_out({"train": ["B1"], "val": ["A2"], "test": ["A1"]}, centre_of, "A")


def test_in_centre_folds_are_stratified_by_centre_and_diagnosis_and_keep_the_patient_folds():
    from mrparotid.data.splits import patient_folds

    cases = centre_cohort([(c, d) for c in range(3) for d in range(3) for _ in range(3)])
    folds = patient_folds(cases, 3, seed=1, by_centre=True)
    for split in folds:       # 27 patients, 3 per (centre, diagnosis): each fold tests one of each
        strata = sorted((c.center, c.diagnosis) for c in cases if c.patient_id in split["test"])
        assert strata == sorted({(c.center, c.diagnosis) for c in cases})
    assert sorted(p for s in folds for p in s["test"]) == sorted(c.patient_id for c in cases)
    assert patient_folds(cases, 3, seed=1) == patient_folds(cases, 3, seed=1, by_centre=False)


def test_cv_validation_is_stratified_by_diagnosis_in_every_fold():
    """Each fold's validation holds each diagnosis in proportion (within one patient), so a fold
    does not fail closed for want of malignant validation patients by chance."""
    from mrparotid.data.splits import patient_folds

    cases = [PatientCase(f"P{i:03d}", DIAGNOSES[i % 3], None, None, "ABC"[(i // 3) % 3]) for i in range(120)]
    for by_centre in (False, True):
        for fold in patient_folds(cases, 3, seed=1, val_fraction=0.4, by_centre=by_centre):
            counts = Counter(next(c.diagnosis for c in cases if c.patient_id == p) for p in fold["val"])
            assert len(fold["val"]) == 32 and max(counts.values()) - min(counts.values()) <= 1
