"""A node killed (SIGKILL) while it receives a study, while it runs inference on it and while it
sends the results, and started again each time, processes the study exactly once: one SEG and one
SR (one SOP Instance UID each) at the PACS, one job in done/, nothing left anywhere else."""

from __future__ import annotations

import signal
import threading

import pytest
from dicom_results import tiny_classifier, trained_segmenter
from serve_node import SEG_SOP, SR_SOP, Pacs, free_port, send_study, start_serve, wait_for

from mrparotid.data.phantom_dicom import write_phantom_study
from mrparotid.serve.queue import study_key

pytestmark = pytest.mark.slow


def test_killed_during_receive_inference_and_send_the_study_is_processed_once(tmp_path_factory, tmp_path):
    checkpoint, segmenter = tiny_classifier(tmp_path_factory), trained_segmenter(tmp_path_factory)
    study = write_phantom_study(tmp_path / "A", patient_id="KILL1", seed=7, slices=24)
    files = sorted(f for fs in study.files.values() for f in fs)
    key = study_key(study.study_uid)
    pacs = Pacs(tmp_path / "pacs")
    out, port = tmp_path / "node", free_port()

    def start():
        return start_serve(out, port, f"PACS@127.0.0.1:{pacs.port}", checkpoint, segmenter, idle_s=2.0)

    def kept() -> int:
        return len(list((out / "incoming" / key).glob("*.dcm")))

    try:
        # 1. killed while the modality sends: part of the study is on disk
        proc = start()
        modality = threading.Thread(target=send_study, args=(files, port))
        modality.start()
        wait_for(lambda: kept() >= 10, 60, "10 instances on disk")
        proc.kill()
        proc.wait()
        modality.join(60)
        assert 10 <= kept() < len(files)

        # 2. started again, the modality sends the study again; killed during inference
        proc = start()
        assert send_study(files, port) == [0] * len(files)
        (job,) = wait_for(lambda: list((out / "processing").iterdir()), 60, "the study to be claimed")
        proc.kill()
        proc.wait()
        assert not (job / "results").exists() and list((out / "outbox").iterdir()) == []

        # 3. started again: the study is run again and sent; killed while PACS holds the SEG
        pacs.hold.clear()
        proc = start()
        wait_for(pacs.entered.is_set, 90, "the results to reach the PACS")
        proc.kill()
        proc.wait()
        pacs.hold.set()
        assert [p.name for p in (out / "outbox").iterdir()] == [job.name]

        # 4. started again: the rest is sent, once
        proc = start()
        wait_for(lambda: list((out / "done").iterdir()), 60, "the study in done/")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        pacs.close()
    assert [p.name for p in (out / "done").iterdir()] == [job.name]
    for state in ("incoming", "processing", "outbox", "failed"):
        assert list((out / state).iterdir()) == [], state
    stored = {}
    for sop_class, uid in pacs.received:
        stored.setdefault(sop_class, set()).add(uid)
    assert {c: len(u) for c, u in stored.items()} == {SEG_SOP: 1, SR_SOP: 1}   # one object each
    assert len(pacs.received) == 3         # the SEG whose answer the kill cut was sent again
    objects = pacs.objects()
    assert len(objects) == 2 and {ds.PatientID for ds in objects.values()} == {"KILL1"}
