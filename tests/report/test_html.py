"""The report pages, parsed as a browser would (html5lib): images from the file itself, every slice
row, no URL, the banner and the disclaimer; the ``diagnose --explain --html`` command."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace

import html5lib
import pytest

from checkpoints import tiny_checkpoint
from explained import explained_patient
from patients import write_patient
from mrparotid.cli.main import main
from mrparotid.errors import OutputError
from mrparotid.report.html import (DISCLAIMER, index_page, page_name, patient_page, prepare_out_dir,
                                   write_patient_report)
from mrparotid.report.model_card import model_card

NS = "{http://www.w3.org/1999/xhtml}"


def parse(text: str):
    return html5lib.parse(text)


def check_self_contained(text: str) -> None:
    """Every image is a data: URI holding a PNG; nothing refers to another file or a URL."""
    doc = parse(text)
    for img in doc.iter(f"{NS}img"):
        src = img.get("src")
        assert src.startswith("data:image/png;base64,"), src[:40]
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for el in doc.iter():
        for attr in ("src", "href", "action", "poster", "srcset"):
            value = el.get(attr)
            if value is not None:
                assert not re.match(r"\s*(https?:|//|file:)", value), value
    for tag in ("script", "link", "iframe", "object", "embed"):
        assert not list(doc.iter(f"{NS}{tag}")), tag
    assert not re.search(r"https?://|url\(|@import", text)


def texts(el) -> str:
    return " ".join("".join(e.itertext()) for e in [el])


def test_patient_page_is_self_contained_with_every_slice_row(explained):
    card = model_card(explained.loaded)
    page = patient_page(explained.report, b"\x89PNG\r\n\x1a\n" + b"x" * 10, card)
    check_self_contained(page)
    doc = parse(page)
    rows = [tr for tr in doc.iter(f"{NS}tr") if "slice-row" in (tr.get("class") or "")]
    assert len(rows) == len(explained.report["slices"]) > 0
    for tr, s in zip(rows, explained.report["slices"]):
        cells = [texts(td).strip() for td in tr.iter(f"{NS}td")]
        assert cells[:3] == [s["side"], str(s["index"]), f"{s['z_mm']:.1f}"]
        peak = s["cam"]["peak_mm"]
        assert (", ".join(f"{v:.1f}" for v in peak) if peak else "empty map") in cells
    body = texts(doc)
    assert "SYNTHETIC data or model" in body and DISCLAIMER in body
    assert "How the rule reached it" in body and "Where the masks came from" in body
    assert "Model and training cohort" in body and "T1, CE-T1, T2, mask" in body


def test_no_banner_without_synthetic_but_always_the_disclaimer(explained):
    report = dict(explained.report, synthetic=False)
    card = dict(model_card(explained.loaded), synthetic=False)
    body = texts(parse(patient_page(report, None, card)))
    assert "SYNTHETIC" not in body and DISCLAIMER in body
    assert DISCLAIMER in texts(parse(index_page([report], card)))


def test_fields_added_by_other_stages_are_shown_and_escaped(explained):
    report = dict(explained.report, patient_id="<script>alert(1)</script>", p_malignant=0.81234,
                  answer="refer", headline="ANSWER: REFER to a radiologist (<b>band</b>)",
                  decision={"operating_point": "malignant at p >= 0.700, benign below 0.300", "record": "m.ckpt's own"},
                  masks={"gland": "auto", "tumour": "given"}, missing_series=["CE-T1"], a_new_field={"x": 1})
    page = patient_page(report, None, model_card(explained.loaded))
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "<b>band" not in page
    body = texts(parse(page))
    assert "REFER to a radiologist" in body and "p(malignant) = 0.812" in body
    assert "malignant at p >= 0.700, benign below 0.300" in body and "gland: automatic (segmenter)" in body
    assert "Missing series: CE-T1" in body and "a_new_field" in body and '{"x": 1}' in body


def test_a_patient_without_selected_slices_gets_a_page_that_says_so(explained, tmp_path):
    ev = explained.evidence
    none = replace(ev.slices, crops=ev.slices.crops[:0], labels=ev.slices.labels[:0],
                   sides=ev.slices.sides[:0], slice_index=ev.slices.slice_index[:0],
                   z_mm=ev.slices.z_mm[:0])
    empty = replace(ev, slices=none, x=ev.x[:0], probs=ev.probs[:0])
    from mrparotid.inference.diagnose import build_report
    from mrparotid.inference.explain import explain_patient

    report = build_report(empty, explained.loaded)
    cams = explain_patient(empty, explained.loaded, report)
    assert cams.shape[0] == 0 and report["slices"] == []
    page = write_patient_report(tmp_path, empty, report, cams, explained.loaded)
    text = page.read_text(encoding="utf-8")
    check_self_contained(text)
    assert "No slices were selected for this patient" in texts(parse(text))
    assert not list(parse(text).iter(f"{NS}img")) and not list(tmp_path.glob("*.png"))


def test_one_patient_page_at_224_px_is_at_most_3_mb(tmp_path):
    ex = explained_patient(tmp_path, "--data.image_size", "224", bilateral=True, tumour_slices=(2, 10))
    assert len(ex.report["slices"]) >= 12
    (tmp_path / "out").mkdir()
    page = write_patient_report(tmp_path / "out", ex.evidence, ex.report, ex.cams, ex.loaded)
    size = page.stat().st_size
    print(f"page of one patient, {len(ex.report['slices'])} slices at 224 px: {size / 2**20:.2f} MiB")
    assert size <= 3 * 2**20, f"{size / 2**20:.2f} MiB"
    check_self_contained(page.read_text(encoding="utf-8"))


def test_out_dir_refusals(tmp_path):
    assert prepare_out_dir(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "new" / "old.html").write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match="not empty") as err:
        prepare_out_dir(tmp_path / "new")
    assert "--overwrite" in err.value.fix
    assert prepare_out_dir(tmp_path / "new", overwrite=True).is_dir()
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match="needs a folder"):
        prepare_out_dir(tmp_path / "file", overwrite=True)
    assert page_name("P 1/2") == "P_1_2.html" and page_name("index") == "patient_index.html"


def test_diagnose_explain_html_on_two_patients(tmp_path, capfd):
    write_patient(tmp_path / "A")
    write_patient(tmp_path / "B", tumour_side="R")
    tiny_checkpoint(tmp_path / "m.ckpt")
    out = tmp_path / "pages"
    argv = ["diagnose", str(tmp_path / "A"), str(tmp_path / "B"), "--checkpoint",
            str(tmp_path / "m.ckpt"), "--explain", "--html", str(out), "--json", str(tmp_path / "r.json")]
    assert main(argv) == 0
    printed = capfd.readouterr().out
    assert printed.count("heat maps: Grad-CAM") == 2 and "report pages:" in printed
    reports = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert all("cam" in s for r in reports for s in r["slices"])
    assert sorted(p.name for p in out.iterdir()) == ["A.html", "A_montage.png", "B.html",
                                                     "B_montage.png", "index.html"]
    index = (out / "index.html").read_text(encoding="utf-8")
    check_self_contained(index)
    links = [a.get("href") for a in parse(index).iter(f"{NS}a")]
    assert links == ["A.html", "B.html"]
    for r in reports:
        page = (out / f"{r['patient_id']}.html").read_text(encoding="utf-8")
        check_self_contained(page)
        assert len(list(parse(page).iter(f"{NS}img"))) == 1
    capfd.readouterr()
    assert main(argv) == 2                                      # the folder is not empty now
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not empty" in err[0] and "--overwrite" in err[0]
    assert main(argv + ["--overwrite", "-q"]) == 0
    assert capfd.readouterr().out == ""


def test_explain_alone_writes_no_pages(tmp_path, capsys):
    write_patient(tmp_path / "A")
    tiny_checkpoint(tmp_path / "m.ckpt")
    assert main(["diagnose", str(tmp_path / "A"), "--checkpoint", str(tmp_path / "m.ckpt"),
                 "--explain"]) == 0
    out = capsys.readouterr().out
    assert "heat maps: Grad-CAM" in out and "peak at LPS" in out and "report pages" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A", "m.ckpt"]
