"""``--pseudonymise``: no patient folder name or id in any page, JSON, CSV, file name or log line
of ``diagnose``, ``segment`` and ``evaluate``; the same salt file gives the same pseudonyms."""

from __future__ import annotations

import json
import re
from pathlib import Path

from checkpoints import split_cohort, tiny_checkpoint
from patients import write_patient
from mrparotid.cli.main import main

MRNS = ("MRN40417733", "MRN40417734")
SALT_FILE = "pseudonym_salt.txt"       # kept in the output folder


TEXT = {".csv", ".json", ".md", ".txt", ".html"}


def leaks(root: Path, names) -> list[str]:
    """Every file name, and every text file's content (embedded images left out), under ``root``
    that holds one of ``names`` as a whole word."""
    found = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        text = (re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", path.read_text(encoding="utf-8"))
                if path.suffix in TEXT else "")
        found += [f"{path}: {n}" for n in names
                  if n in path.name or re.search(rf"(?<![A-Za-z0-9]){n}(?![A-Za-z0-9])", text)]
    return found


def test_diagnose_pages_json_csv_and_logs_carry_no_folder_name(tmp_path, capfd):
    folders = [write_patient(tmp_path / "in" / n) for n in MRNS]
    bad = tmp_path / "in" / "MRN40417735"
    write_patient(bad, omit=("T2",))                       # an error line that names its folder
    tiny_checkpoint(tmp_path / "m.ckpt")
    out = tmp_path / "out"
    argv = ["diagnose", *map(str, folders), str(bad), "--checkpoint", str(tmp_path / "m.ckpt"),
            "--html", str(out / "pages"), "--json", str(out / "r.json"), "--csv", str(out / "s.csv"),
            "--pseudonymise", "--skip-bad"]
    assert main(argv) == 0
    logs = capfd.readouterr()
    names = (*MRNS, "MRN40417735")
    assert not leaks(out, names)
    assert not [n for n in names if n in logs.out + logs.err], logs.err
    assert "skipped: patient anon-" in logs.err
    reports = json.loads((out / "r.json").read_text(encoding="utf-8"))
    ids = [r["patient_id"] for r in reports]
    assert all(re.fullmatch(r"anon-[0-9a-f]{12}", i) for i in ids) and len(set(ids)) == 2
    assert sorted(p.name for p in (out / "pages").iterdir()) == sorted(
        [SALT_FILE, "index.html"] + [f"{i}{s}" for i in ids for s in (".html", "_montage.png")])
    assert main(argv + ["--overwrite"]) == 0                # the same salt: the same pseudonyms
    again = json.loads((out / "r.json").read_text(encoding="utf-8"))
    assert [r["patient_id"] for r in again] == ids


def test_diagnose_pseudonymise_needs_a_place_for_the_salt(tmp_path, capsys):
    folder = write_patient(tmp_path / MRNS[0])
    tiny_checkpoint(tmp_path / "m.ckpt")
    argv = ["diagnose", str(folder), "--checkpoint", str(tmp_path / "m.ckpt"), "--pseudonymise"]
    assert main(argv) == 2 and "--salt-file" in capsys.readouterr().err
    assert main(argv + ["--salt-file", str(tmp_path / "salt.txt")]) == 0
    printed = capsys.readouterr().out
    assert MRNS[0] not in printed and "patient anon-" in printed


def test_evaluate_predictions_pseudonymised(tmp_path, capfd):
    head = "patient_id,side,index,true,pred,p_no_tumour,p_pleomorphic_adenoma,p_warthin,p_malignant\n"
    rows = [f"{MRNS[0]},L,{k},malignant,malignant,0.1,0.1,0.1,0.7\n" for k in range(3)]
    rows += [f"{MRNS[1]},R,{k},warthin,malignant,0.1,0.1,0.3,0.5\n" for k in range(3)]
    (tmp_path / "p.csv").write_text(head + "".join(rows), encoding="utf-8")
    out = tmp_path / "eval"
    assert main(["evaluate", "--predictions", str(tmp_path / "p.csv"), "--out", str(out),
                 "--pseudonymise"]) == 0
    logs = capfd.readouterr()
    assert not leaks(out, MRNS) and not [n for n in MRNS if n in logs.out + logs.err]
    assert (out / SALT_FILE).is_file() and "anon-" in (out / "patients.csv").read_text(encoding="utf-8")


def test_evaluate_checkpoint_pseudonymised_with_montages(tmp_path, capfd):
    manifest = split_cohort(tmp_path)
    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(tmp_path / "m.ckpt"), "--manifest", str(manifest),
                 "--out", str(out), "--pseudonymise", "-q"]) == 0
    logs = capfd.readouterr()
    ids = ("A1", "A2", "A3")
    assert not leaks(out, ids) and not [i for i in ids if re.search(rf"\b{i}\b", logs.out + logs.err)]
    preds = (out / "predictions_test.csv").read_text(encoding="utf-8")
    assert len(set(re.findall(r"anon-[0-9a-f]{12}", preds))) == 3
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    wrong = [d["patient_id"] for d in metrics["patient"]["rule"]["misdiagnosed"]]
    assert wrong                                           # the tiny model gets some wrong
    assert sorted(p.name for p in out.glob("misdiagnosed_*.png")) == sorted(
        f"misdiagnosed_{pid}.png" for pid in wrong)        # found in the cache by the real id
