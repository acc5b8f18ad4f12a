"""``fit --cv --group centre``: leave-one-centre-out beside an in-centre CV of the same patients, on
a tiny two-centre cohort (16 px, one epoch, tiny_resnet), and the command's refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mrparotid.cli.main import main
from patients import write_cohort

DIAGNOSES = ("pleomorphic_adenoma", "warthin", "malignant")
TINY = ["--data.image_size", "16", "--data.batch_size", "8", "--model.name", "tiny_resnet",
        "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--optim.ema_decay", "0",
        "--data.val_fraction", "0.2", "-q"]


def centre_cohort(root: Path, centres: dict[str, str | None], column: str = "site") -> Path:
    """write_cohort's patients and manifest, plus a centre column (``column``)."""
    rows = [(pid, DIAGNOSES[i % 3], {"tumour_side": "LR"[i % 2]}) for i, pid in enumerate(centres)]
    path = write_cohort(root, rows)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines = [lines[0] + f",{column}"] + [f"{ln},{centres[ln.split(',')[0]] or ''}" for ln in lines[1:]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


SIX = {f"A{i}": "Alpha" for i in range(3)} | {f"B{i}": "Beta" for i in range(3)}


@pytest.mark.slow
def test_leave_one_centre_out_writes_the_per_centre_tables(tmp_path, capsys):
    manifest = centre_cohort(tmp_path / "cohort", SIX)
    out = tmp_path / "cv"
    assert main(["fit", "--cv", "--group", "centre", "-m", str(manifest), "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "leave-one-centre-out over 2 centres" in printed and "all centres" in printed
    plan = json.loads((out / "cv_plan.json").read_text(encoding="utf-8"))
    assert plan["group"] == "centre" and plan["centres"] == ["Alpha", "Beta"]
    for i, centre in enumerate(plan["centres"], start=1):       # the fold's own split, as trained
        split = json.loads((out / "loco" / f"fold{i}" / "split.json").read_text())["splits"]
        assert {p[0] for p in split["test"]} == {centre[0]}
        assert not {p[0] for p in split["train"] + split["val"]} & {centre[0]}
    tested = [p for i in (1, 2) for p in json.loads(
        (out / "in_centre" / f"fold{i}" / "split.json").read_text())["splits"]["test"]]
    assert sorted(tested) == sorted(SIX)                        # in centre: each patient tested once
    rows = list(csv.DictReader(ln for ln in (out / "loco" / "predictions_oof.csv").open(encoding="utf-8")
                               if not ln.startswith("#")))
    assert {r["patient_id"]: r["centre"] for r in rows} == SIX
    pooled = json.loads((out / "loco" / "pooled" / "metrics.json").read_text(encoding="utf-8"))
    assert set(pooled["per_centre"]) == {"Alpha", "Beta"}
    assert "## Per centre" in (out / "loco" / "pooled" / "report.md").read_text(encoding="utf-8")
    summary = json.loads((out / "cv_summary.json").read_text(encoding="utf-8"))
    groups = summary["comparison"]["groups"]
    assert set(groups) == {"Alpha", "Beta", "all centres"} and groups["Alpha"]["n_patients"] == 3
    gap = groups["all centres"]["gap"]["lesion_slice_accuracy"]
    assert gap["lo"] <= gap["estimate"] <= gap["hi"]
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| Alpha | 3 |" in report and "paired bootstrap over patients, 2000 resamples" in report
    # resume: the finished folds are kept, the plan's grouping carries over
    assert main(["fit", "--resume", str(out), "-q"]) == 0
    assert json.loads((out / "cv_summary.json").read_text(encoding="utf-8"))["centres"] == ["Alpha", "Beta"]


@pytest.mark.parametrize("centres, argv, message", [
    (SIX | {"B2": None}, ["--cv", "--group", "centre"], "B2"),
    ({k: "Alpha" for k in SIX}, ["--cv", "--group", "centre"], "at least 2 centres"),
    (SIX, ["--cv", "3", "--group", "centre"], "2 centres"),
    (SIX, ["--group", "centre"], "--cv"),
    (SIX, ["--cv"], "needs K"),
])
def test_the_command_refuses_in_one_line(tmp_path, capsys, centres, argv, message):
    manifest = centre_cohort(tmp_path, centres)
    assert main(["fit", *argv, "-m", str(manifest), "--out", str(tmp_path / "cv"), *TINY]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "cv").exists()                     # refused before any work
