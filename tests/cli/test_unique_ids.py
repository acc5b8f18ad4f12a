"""Two patients whose outputs would collide (same id, or ids that give the same file or folder
name) are refused before any work, naming both source folders; ``index`` never takes the index
page."""

from __future__ import annotations

import pytest

from checkpoints import tiny_checkpoint
from patients import write_patient
from mrparotid.cli.main import main
from mrparotid.report.html import page_name


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mrparotid: error:"), err
    return err[0]


def test_diagnose_refuses_two_folders_of_the_same_name(tmp_path, capsys):
    a, b = write_patient(tmp_path / "a" / "P001"), write_patient(tmp_path / "b" / "P001")
    tiny_checkpoint(tmp_path / "m.ckpt")
    out = tmp_path / "r.json"
    assert main(["diagnose", str(a), str(b), "--checkpoint", str(tmp_path / "m.ckpt"),
                 "--json", str(out), "--html", str(tmp_path / "pages")]) == 2
    line = _one_error_line(capsys)
    assert str(a) in line and str(b) in line and "same id" in line
    assert not out.exists() and not (tmp_path / "pages").exists()     # refused before any work


@pytest.mark.parametrize("names", [("P 001", "P_001"), ("P001", "p001"), ("index", "patient_index")])
def test_diagnose_refuses_ids_that_give_the_same_page(tmp_path, capsys, names):
    folders = [write_patient(tmp_path / n) for n in names]
    tiny_checkpoint(tmp_path / "m.ckpt")
    assert main(["diagnose", *map(str, folders), "--checkpoint", str(tmp_path / "m.ckpt"),
                 "--html", str(tmp_path / "pages"), "-q"]) == 2
    line = _one_error_line(capsys)
    assert all(str(f) in line for f in folders) and "same name" in line
    assert not (tmp_path / "pages").exists()


def test_a_patient_named_index_does_not_take_the_index_page():
    assert page_name("index") == page_name("INDEX".lower()) == "patient_index.html"
    assert page_name("Index") != "index.html" and page_name("P 1/2") == "P_1_2.html"


def test_segment_refuses_two_folders_of_the_same_name(tmp_path, capsys):
    a, b = write_patient(tmp_path / "a" / "P001"), write_patient(tmp_path / "b" / "P001")
    assert main(["segment", str(a), str(b), "--out", str(tmp_path / "auto"),
                 "--checkpoint", str(tmp_path / "no-such.ckpt")]) == 2
    line = _one_error_line(capsys)                 # the collision, before the checkpoint is read
    assert str(a) in line and str(b) in line and "output folders" in line
    assert not (tmp_path / "auto").exists()


def test_evaluate_refuses_ids_that_give_the_same_picture_name(tmp_path, capsys):
    head = "patient_id,side,index,true,pred,p_no_tumour,p_pleomorphic_adenoma,p_warthin,p_malignant\n"
    rows = "".join(f"{pid},L,{k},malignant,malignant,0.1,0.1,0.1,0.7\n"
                   for pid in ("P 001", "P_001") for k in range(3))
    (tmp_path / "p.csv").write_text(head + rows, encoding="utf-8")
    assert main(["evaluate", "--predictions", str(tmp_path / "p.csv"), "--out", str(tmp_path / "e")]) == 2
    line = _one_error_line(capsys)
    assert "'P 001'" in line and "'P_001'" in line
    assert not (tmp_path / "e").exists()
