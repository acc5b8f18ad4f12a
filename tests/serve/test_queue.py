"""The queue on disk: a study is claimed once it has been idle, its results are committed by a
rename, and a node killed between any two steps finds every study again, exactly once."""

from __future__ import annotations

import json

from mrparotid.serve.queue import RESULTS, RESULTS_TMP, StudyQueue, study_key


def received(queue: StudyQueue, study: str = "1.2.3", n: int = 3) -> str:
    for i in range(n):
        queue.store(study, f"{study}.{i}", b"DICM" + bytes([i]))
    return study_key(study)


def test_a_study_is_claimed_only_after_idle_s(tmp_path):
    queue = StudyQueue(tmp_path)
    key = received(queue)
    assert queue.idle(30.0) == [] and queue.claim(key, 30.0) is None
    job = queue.claim(key, 0.0)
    assert job is not None and len(list(job.glob("*.dcm"))) == 3
    assert not (tmp_path / "incoming" / key).exists()
    record = json.loads((job / "job.json").read_text())
    assert record["key"] == key and record["instances"] == 3
    queue.store("1.2.3", "1.2.3.9", b"late")              # after the claim: a new study folder
    assert (tmp_path / "incoming" / key).is_dir() and len(list(job.glob("*.dcm"))) == 3


def test_the_same_instance_twice_is_kept_once(tmp_path):
    queue = StudyQueue(tmp_path)
    key = received(queue)
    received(queue)
    assert len(list((tmp_path / "incoming" / key).glob("*.dcm"))) == 3


def test_studies_on_disk_at_start_wait_idle_s_from_the_start(tmp_path):
    key = received(StudyQueue(tmp_path))
    queue = StudyQueue(tmp_path)                           # a restarted node
    assert queue.idle(5.0, now=queue.started + 4.0) == []
    assert queue.idle(5.0, now=queue.started + 5.0) == [key]


def test_commit_then_finish(tmp_path):
    queue = StudyQueue(tmp_path)
    job = queue.claim(received(queue), 0.0)
    (job / RESULTS_TMP).mkdir()
    (job / RESULTS_TMP / "SEG.dcm").write_bytes(b"seg")
    outbox = queue.commit_results(job)
    assert not job.exists() and (outbox / "SEG.dcm").read_bytes() == b"seg" and (outbox / "job.json").is_file()
    assert [p.name for p in outbox.glob("*.dcm")] == ["SEG.dcm"]      # the instances are gone
    done = queue.finish(outbox, {"key": "k"})
    assert json.loads((done / "summary.json").read_text())["key"] == "k"
    assert queue.jobs("outbox") == [] and queue.jobs("done") == [done]


def test_recovery_after_a_kill_at_each_step(tmp_path):
    queue = StudyQueue(tmp_path)
    running = queue.claim(received(queue, "1.1"), 0.0)          # killed during inference
    (running / RESULTS_TMP).mkdir()
    (running / RESULTS_TMP / "SEG.dcm").write_bytes(b"half")
    committed = queue.claim(received(queue, "2.2"), 0.0)        # killed after the commit rename
    (committed / RESULTS).mkdir()
    (committed / RESULTS / "SEG.dcm").write_bytes(b"whole")
    moved = queue.claim(received(queue, "3.3"), 0.0)            # killed after moving to the outbox
    (tmp_path / "outbox" / moved.name).mkdir()
    receiving = tmp_path / "incoming" / received(queue, "4.4")  # killed mid-write of an instance
    (receiving / ".x.dcm.tmp123").write_bytes(b"part")

    pending = StudyQueue(tmp_path).recover()
    assert pending == [running] and not (running / RESULTS_TMP).exists()
    assert len(list(running.glob("*.dcm"))) == 3                # its instances, to run again
    assert (tmp_path / "outbox" / committed.name / "SEG.dcm").read_bytes() == b"whole"
    assert not committed.exists() and not moved.exists()
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == sorted([committed.name, moved.name])
    assert [p.name for p in receiving.iterdir() if p.name.startswith(".")] == []


def test_fail_keeps_the_study_with_its_reason(tmp_path):
    queue = StudyQueue(tmp_path)
    job = queue.claim(received(queue), 0.0)
    failed = queue.fail(job, "inference", "no T2 series")
    assert json.loads((failed / "reason.json").read_text())["reason"] == "no T2 series"
    assert len(list(failed.glob("*.dcm"))) == 3 and queue.jobs("processing") == []


def test_a_job_claimed_then_killed_at_once_has_its_record_and_runs_again(tmp_path):
    import json

    queue = StudyQueue(tmp_path)
    job = queue.claim(received(queue, "5.5"), 0.0)
    assert json.loads((job / "job.json").read_text())["job"] == job.name     # the record moved with it
    (job / "job.json").unlink()                   # as a node killed between rename and record left it
    pending = StudyQueue(tmp_path).recover()
    assert pending == [job] and json.loads((job / "job.json").read_text())["key"] == job.name.rsplit("-", 1)[0]
