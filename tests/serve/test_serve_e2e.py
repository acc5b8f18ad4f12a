"""End to end: ``mrparotid serve`` on a free local port; a modality (dcmtk's ``storescu``, or
pynetdicom where dcmtk is absent) sends a phantom study, a study without CE-T1/T2 and, from an AE
title that is not allowed, a third; dcmtk's ``storescp`` (or a pynetdicom SCP) plays PACS. A SEG
and an SR arrive and are valid, the incomplete study is kept in failed/ with its reason, the
status and the log name no patient, and SIGTERM stops the node with exit code 0."""

from __future__ import annotations

import signal
import socket
import subprocess

import highdicom as hd
import pydicom
import pytest
from dicom_results import dcmtk, dciodvfy_errors, tiny_classifier, trained_segmenter
from serve_node import SEG_SOP, SR_SOP, Pacs, free_port, send_study, start_serve, wait_for

from mrparotid.cli.main import main
from mrparotid.data.phantom_dicom import write_phantom_study

pytestmark = pytest.mark.slow


def start_storescp(folder, port: int) -> subprocess.Popen | None:
    """dcmtk's storescp as PACS (None without dcmtk); returns once it accepts connections."""
    exe = dcmtk("storescp")
    if exe is None:
        return None
    folder.mkdir()
    proc = subprocess.Popen([exe, "-aet", "PACS", "-od", str(folder), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def accepts():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(accepts, 30, "storescp to listen")
    return proc


def modality_send(folder, port: int, calling_ae: str = "MODALITY1") -> bool:
    """Send every file under ``folder`` as a modality would; True when all were stored."""
    exe = dcmtk("storescu")
    if exe is not None:
        return subprocess.run([exe, "-aet", calling_ae, "-aec", "MRPAROTID", "127.0.0.1", str(port),
                               "+sd", "+r", str(folder)], capture_output=True, timeout=120).returncode == 0
    statuses = send_study(sorted(p for p in folder.rglob("*.dcm")), port, calling_ae=calling_ae)
    return bool(statuses) and set(statuses) == {0}


def test_serve_receives_processes_and_sends(tmp_path_factory, tmp_path, capsys):
    checkpoint, segmenter = tiny_classifier(tmp_path_factory), trained_segmenter(tmp_path_factory)
    study = write_phantom_study(tmp_path / "A", patient_id="PATA", seed=5, slices=24)
    t1_only = write_phantom_study(tmp_path / "B", patient_id="PATB", seed=6, slices=12)
    for role in ("CE-T1", "T2"):
        for f in t1_only.files[role]:
            f.unlink()
    pacs_port = free_port()
    storescp = start_storescp(tmp_path / "pacs", pacs_port)
    pacs = Pacs(tmp_path / "pacs") if storescp is None else None
    dest = f"PACS@127.0.0.1:{pacs_port if pacs is None else pacs.port}"
    out, port = tmp_path / "node", free_port()
    proc = start_serve(out, port, dest, checkpoint, segmenter, idle_s=1.0)
    try:
        assert modality_send(study.folder, port)
        assert modality_send(t1_only.folder, port)
        assert not modality_send(study.folder, port, calling_ae="INTRUDER")   # refused

        def arrived():
            found = [pydicom.dcmread(p) for p in (tmp_path / "pacs").iterdir() if p.is_file()]
            return found if len(found) >= 2 else None

        objects = wait_for(arrived, 90, "SEG and SR at the PACS", step_s=0.2)
        wait_for(lambda: list((out / "failed").iterdir()), 60, "the incomplete study in failed/")
        by_class = {str(ds.SOPClassUID): ds for ds in objects}
        assert sorted(by_class) == sorted([SEG_SOP, SR_SOP]) and len(objects) == 2
        t1 = pydicom.dcmread(study.files["T1"][0], stop_before_pixels=True)
        for ds in objects:
            assert (ds.PatientID, ds.StudyInstanceUID) == (t1.PatientID, t1.StudyInstanceUID)
        for p in (tmp_path / "pacs").iterdir():
            assert dciodvfy_errors(p) == []
        sr = hd.sr.Comprehensive3DSR.from_dataset(by_class[SR_SOP])
        (group,) = sr.content.get_image_measurement_groups()
        assert "mrparotid answer" in {q.name.meaning for q in group.get_qualitative_evaluations()}
        seg = hd.seg.Segmentation.from_dataset(by_class[SEG_SOP])
        assert {s.SegmentLabel for s in seg.SegmentSequence} >= {"Right parotid gland", "Left parotid gland"}

        capsys.readouterr()
        assert main(["serve", "--status", "--out", str(out)]) == 0
        status = capsys.readouterr().out
        assert "a node is running" in status and "done: 1" in status and "failed: 1" in status
        assert "CE-T1" in status                                  # the failure's reason
        log = (out / "serve.log").read_text(encoding="utf-8")
        assert "INTRUDER" in log and log.count("FAILED") == 1 and "stored at PACS" in log
        for text in (log, status):
            assert "PATA" not in text and "PATB" not in text and "PHANTOM" not in text
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        if storescp is not None:
            storescp.kill()
            storescp.wait()
        if pacs is not None:
            pacs.close()
    assert code == 0 and "stopped" in (out / "serve.log").read_text(encoding="utf-8")
    assert list((out / "incoming").iterdir()) == [] and list((out / "outbox").iterdir()) == []
