"""The node's queue on disk: every state is a folder, every step a rename, so a ``serve`` killed at
any moment and started again processes every received study exactly once.

```
OUT/incoming/<key>/<sop>.dcm     instances as received (written whole, fsync'ed, then renamed)
OUT/processing/<job>/            a complete study being processed (its instances; results.tmp/)
OUT/outbox/<job>/                SEG.dcm, SR.dcm, report.json, job.json: results to send
OUT/done/<job>/                  the same, sent (summary.json says where and when)
OUT/failed/<job>/                a study that could not be processed or sent, with reason.json
```

``<key>`` is a hash of the StudyInstanceUID (no identifier reaches a folder name or a log line);
``<job>`` is ``<key>-<milliseconds>``. A study is complete when no instance has arrived for
``idle_s`` seconds (counted from the node's start for studies found on disk at start). Instances of
a study that arrive after it was claimed start a new job. Recovery at start: a job whose results
were committed goes on to the outbox; any other job in ``processing`` is run again from its
instances (its half-written results are dropped); the outbox is sent again. A result sent twice
(killed after PACS stored it, before the outbox moved) carries the same SOP Instance UID, which
PACS stores once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path

STATES = ("incoming", "processing", "outbox", "done", "failed")
RESULTS, RESULTS_TMP = "results", "results.tmp"


def study_key(study_uid: str) -> str:
    """The folder and log name of a study: 12 hex digits of SHA-256 of its StudyInstanceUID."""
    return hashlib.sha256(str(study_uid).encode()).hexdigest()[:12]


def instance_name(sop_uid: str) -> str:
    """The file name of a received instance (a hash of its SOP Instance UID, so a resent instance
    replaces itself)."""
    return hashlib.sha256(str(sop_uid).encode()).hexdigest()[:24] + ".dcm"


def durable_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``path``, fsync it, rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_durably(path: Path, obj: dict) -> None:
    durable_write(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


class StudyQueue:
    """The folders under ``root`` and the arrival clock of the studies being received. Receiving
    (the SCP's threads) and claiming (the worker) hold one lock, so an instance is never written
    into a study that is being moved."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        for state in STATES:
            (self.root / state).mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.started = time.time()
        self.last: dict[str, float] = {}

    def folder(self, state: str) -> Path:
        return self.root / state

    def jobs(self, state: str) -> list[Path]:
        """The job (or study) folders in ``state``, oldest name first."""
        return sorted(p for p in self.folder(state).iterdir() if p.is_dir())

    def store(self, study_uid: str, sop_uid: str, data: bytes) -> Path:
        """Keep one received instance on disk before the C-STORE response is sent."""
        key = study_key(study_uid)
        with self.lock:
            folder = self.folder("incoming") / key
            folder.mkdir(exist_ok=True)
            path = folder / instance_name(sop_uid)
            durable_write(path, data)
            self.last[key] = time.time()
        return path

    def idle(self, idle_s: float, now: float | None = None) -> list[str]:
        """The incoming studies with no instance for ``idle_s`` seconds."""
        now = time.time() if now is None else now
        keys = [p.name for p in self.jobs("incoming")]
        return [k for k in keys if now - self.last.get(k, self.started) >= idle_s]

    def claim(self, key: str, idle_s: float) -> Path | None:
        """Move a complete study to ``processing/<job>`` (None if an instance just arrived or it
        holds no instance); ``job.json`` there records its key and last arrival."""
        with self.lock:
            src = self.folder("incoming") / key
            if key not in self.idle(idle_s) or not src.is_dir():
                return None
            instances = sorted(src.glob("*.dcm"))
            if not instances:
                shutil.rmtree(src, ignore_errors=True)
                return None
            last = self.last.get(key, self.started)
            job = self.folder("processing") / f"{key}-{int(time.time() * 1000)}"
            # job.json first, then the rename: a job in processing/ always has its record, also
            # when the node is killed right after the claim
            write_json_durably(src / "job.json", {"key": key, "job": job.name, "instances": len(instances),
                                                  "last_instance_at": last, "claimed_at": time.time()})
            os.replace(src, job)
            self.last.pop(key, None)
        return job

    def commit_results(self, job: Path) -> Path:
        """``results.tmp`` → ``results`` (the commit point of processing), then the results folder
        becomes ``outbox/<job>`` and the instances go."""
        if (job / RESULTS_TMP).is_dir():
            os.replace(job / RESULTS_TMP, job / RESULTS)
        target = self.folder("outbox") / job.name
        if (job / RESULTS).is_dir():
            shutil.copy2(job / "job.json", job / RESULTS / "job.json")
            os.replace(job / RESULTS, target)
        shutil.rmtree(job, ignore_errors=True)
        return target

    def finish(self, job: Path, summary: dict) -> Path:
        """A sent outbox job → ``done/<job>`` with ``summary.json``."""
        write_json_durably(job / "summary.json", summary)
        target = self.folder("done") / job.name
        os.replace(job, target)
        return target

    def fail(self, job: Path, stage: str, reason: str) -> Path:
        """Keep a job (instances or results) in ``failed/<job>`` with ``reason.json``."""
        shutil.rmtree(job / RESULTS_TMP, ignore_errors=True)
        shutil.rmtree(job / "patient", ignore_errors=True)
        write_json_durably(job / "reason.json", {"stage": stage, "reason": reason, "at": time.time()})
        target = self.folder("failed") / job.name
        os.replace(job, target)
        return target

    def recover(self) -> list[Path]:
        """Put the folders left by a killed node in order; returns the jobs to process again."""
        for study in self.jobs("incoming"):
            for tmp in study.glob(".*.tmp*"):
                tmp.unlink(missing_ok=True)
        pending = []
        for job in self.jobs("processing"):
            if (self.folder("outbox") / job.name).exists():
                shutil.rmtree(job, ignore_errors=True)          # committed, then killed
            elif (job / RESULTS).is_dir():
                self.commit_results(job)
            else:
                shutil.rmtree(job / RESULTS_TMP, ignore_errors=True)
                shutil.rmtree(job / "patient", ignore_errors=True)
                if not (job / "job.json").is_file():          # claimed by an older node, killed at once
                    write_json_durably(job / "job.json", {
                        "key": job.name.rsplit("-", 1)[0], "job": job.name,
                        "instances": len(list(job.glob("*.dcm"))), "last_instance_at": None,
                        "claimed_at": time.time()})
                pending.append(job)
        for job in self.jobs("outbox"):
            for tmp in job.glob(".*.tmp*"):
                tmp.unlink(missing_ok=True)
        return pending
