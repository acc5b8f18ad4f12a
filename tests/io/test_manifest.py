"""Cohort manifest: parsing, the checks at load time, and the patient-level split."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrparotid.errors import ManifestError
from mrparotid.data.splits import assert_disjoint, split_patients
from mrparotid.io.manifest import PatientCase, read_manifest, write_manifest

HEADER = "patient_id,diagnosis,patient_dir,split,center"


def write_csv(tmp_path: Path, *rows: str, header: str = HEADER, make_dirs: bool = True) -> Path:
    for row in rows:
        if make_dirs and not row.startswith("#") and row.count(",") >= 2:
            (tmp_path / row.split(",")[2]).mkdir(parents=True, exist_ok=True)
    path = tmp_path / "cohort.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_read_manifest(tmp_path):
    path = write_csv(tmp_path, "P001,pleomorphic_adenoma,patients/P001,train,A",
                     "P002, Warthin ,patients/P002,,", "P003,MALIGNANT,patients/P003,TEST,B")
    m = read_manifest(path)
    assert len(m) == 3 and not m.synthetic and m.path == path.resolve()
    p1, p2, p3 = m.cases
    assert p1 == PatientCase("P001", "pleomorphic_adenoma", (tmp_path / "patients/P001").resolve(),
                             "train", "A")
    assert (p2.diagnosis, p2.split, p2.center) == ("warthin", None, None)
    assert (p3.diagnosis, p3.split) == ("malignant", "test")
    assert p1.patient_dir.is_absolute()
    assert set(m.by_id()) == {"P001", "P002", "P003"}


def test_optional_columns_may_be_absent(tmp_path):
    path = write_csv(tmp_path, "P001,warthin,p/P001", header="patient_id,diagnosis,patient_dir")
    case = read_manifest(path).cases[0]
    assert case.split is None and case.center is None


def test_comments_blank_lines_and_synthetic_mark(tmp_path):
    path = write_csv(tmp_path, "# made by hand", "", "P001,warthin,p/P001,,")
    assert not read_manifest(path).synthetic
    path.write_text("# SYNTHETIC phantom cohort: not patient data\n" + path.read_text(encoding="utf-8"))
    m = read_manifest(path)
    assert m.synthetic and [c.patient_id for c in m.cases] == ["P001"]


def test_patient_dir_is_relative_to_the_manifest(tmp_path, monkeypatch):
    sub = tmp_path / "cohorts"
    sub.mkdir()
    path = write_csv(sub, "P001,warthin,../data/P001,,")
    monkeypatch.chdir(tmp_path / "data")
    assert read_manifest(path).cases[0].patient_dir == (tmp_path / "data" / "P001").resolve()


@pytest.mark.parametrize("rows,header,message,patient", [
    (["P001,warthin,p/P001,,", "P002,malignant,p/P002,,", "P001,malignant,p/P003,,"], HEADER,
     r"duplicate patient_id \(rows 2 and 4\)", "P001"),
    (["P001,warthin,p/P001,,", "P002,lipoma,p/P002,,"], HEADER,
     r"cohort.csv row 3: unknown diagnosis 'lipoma' -> use one of pleomorphic_adenoma, warthin, "
     r"malignant", "P002"),
    (["P001,warthin,p/P001,training,"], HEADER, r"row 2: unknown split 'training'", "P001"),
    ([",warthin,p/P001,,"], HEADER, r"row 2: empty patient_id", None),
    (["P001,warthin"], "patient_id,diagnosis", r"missing column\(s\) patient_dir", None),
    ([], HEADER, r"manifest lists no patients", None),
])
def test_bad_manifests_are_one_line_errors(tmp_path, rows, header, message, patient):
    path = write_csv(tmp_path, *rows, header=header)
    with pytest.raises(ManifestError, match=message) as exc:
        read_manifest(path)
    text = str(exc.value)
    assert "\n" not in text and "->" in text and str(path) in text
    if patient:
        assert text.startswith(f"patient {patient}: file {path}:")


def test_row_numbers_count_comment_lines(tmp_path):
    path = write_csv(tmp_path, "# a comment", "", "P001,warthin,p/P001,,", "P002,benign,p/P002,,")
    with pytest.raises(ManifestError, match="cohort.csv row 5: unknown diagnosis 'benign'"):
        read_manifest(path)


def test_missing_patient_dir(tmp_path):
    path = write_csv(tmp_path, "P001,warthin,p/P001,,", "P002,warthin,p/P002,,", make_dirs=False)
    (tmp_path / "p" / "P001").mkdir(parents=True)
    with pytest.raises(ManifestError) as exc:
        read_manifest(path)
    text = str(exc.value)
    assert text.startswith(f"patient P002: file {tmp_path / 'p' / 'P002'}: patient_dir missing")
    assert "cohort.csv row 3" in text
    assert len(read_manifest(path, check_dirs=False)) == 2     # cohort runs report it per patient


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "nope.csv")


def test_write_then_read_round_trip(tmp_path):
    cases = [PatientCase("A1", "warthin", tmp_path / "patients" / "A1", "train", "X"),
             PatientCase("A2", "malignant", tmp_path / "patients" / "A2", None, None)]
    for c in cases:
        c.patient_dir.mkdir(parents=True)
    path = tmp_path / "m.csv"
    write_manifest(path, cases, comment="SYNTHETIC test\nsecond line")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# SYNTHETIC test\n# second line\n") and "patients/A1" in text
    m = read_manifest(path)
    assert m.synthetic and list(m.cases) == [
        PatientCase(c.patient_id, c.diagnosis, c.patient_dir.resolve(), c.split, c.center) for c in cases]


# --- split -----------------------------------------------------------------------------------

def cohort(n_per_class: int = 10, splits: dict[str, str] | None = None) -> list[PatientCase]:
    out = []
    for d, diagnosis in enumerate(("pleomorphic_adenoma", "warthin", "malignant")):
        for i in range(n_per_class):
            pid = f"{diagnosis[:2].upper()}{i:02d}"
            out.append(PatientCase(pid, diagnosis, Path("/x") / pid, (splits or {}).get(pid)))
    return out


def test_split_is_seeded_per_patient_and_disjoint():
    cases = cohort(10)
    a = split_patients(cases, test_fraction=0.2, val_fraction=0.25, seed=7)
    assert a == split_patients(list(reversed(cases)), test_fraction=0.2, val_fraction=0.25, seed=7)
    assert a != split_patients(cases, test_fraction=0.2, val_fraction=0.25, seed=8)
    assert sorted(sum(a.values(), [])) == sorted(c.patient_id for c in cases)
    assert_disjoint(a)
    assert all(ids == sorted(ids) for ids in a.values())
    assert all(a.values())                          # 30 patients at 0.2 / 0.25: every split used


def test_split_small_cohorts_keep_a_training_patient():
    b = split_patients(cohort(1), test_fraction=0.9, val_fraction=0.9, seed=0)
    assert len(b["train"]) >= 1 and sum(map(len, b.values())) == 3
    c = split_patients(cohort(5), test_fraction=0.0, val_fraction=0.0, seed=0)
    assert [len(c[s]) for s in ("train", "val", "test")] == [15, 0, 0]


def test_manifest_split_column_is_respected():
    fixed = {"PL00": "test", "PL01": "test", "WA03": "val", "MA04": "train"}
    cases = cohort(6, fixed)
    a = split_patients(cases, test_fraction=0.5, val_fraction=0.5, seed=1)
    for pid, split in fixed.items():
        assert pid in a[split]
    assert_disjoint(a)
    # the others are drawn each on its own: the fixed rows change nobody else's split
    free = [c for c in cases if c.patient_id not in fixed]
    alone = split_patients(free, test_fraction=0.5, val_fraction=0.5, seed=1)
    assert all(p in a[s] for s, ids in alone.items() for p in ids)


def test_assert_disjoint_raises_on_overlap():
    assert_disjoint({"train": ["A", "B"], "val": ["C"], "test": []})
    with pytest.raises(AssertionError, match="patient B is in split 'train' and 'test'"):
        assert_disjoint({"train": ["A", "B"], "val": [], "test": ["B"]})
    with pytest.raises(AssertionError, match="leakage"):
        assert_disjoint({"train": ["A", "A"]})


def test_spreadsheet_exports(tmp_path):
    (tmp_path / "p" / "P001").mkdir(parents=True)
    path = tmp_path / "cohort.csv"
    path.write_bytes(b"\xef\xbb\xbfpatient_id,diagnosis,patient_dir\r\nP001,warthin,p/P001\r\n")
    assert read_manifest(path).cases[0].patient_id == "P001"          # UTF-8 BOM, CRLF
    path.write_bytes("patient_id,diagnosis,patient_dir\nP001,warthin,p/P\u00f6\n".encode("latin-1"))
    with pytest.raises(ManifestError, match="not UTF-8 text .* -> save the CSV as UTF-8"):
        read_manifest(path)


def test_empty_patient_dir_is_an_error(tmp_path):
    path = write_csv(tmp_path, "P001,warthin,,,", make_dirs=False)
    with pytest.raises(ManifestError, match="patient P001: .*row 2: empty patient_dir"):
        read_manifest(path, check_dirs=False)
