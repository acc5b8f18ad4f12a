"""``mrparotid serve``: the node's threads around the queue on disk.

- the Storage SCP (:mod:`mrparotid.serve.scp`) writes instances into ``incoming/``;
- the worker claims each study idle for ``node.idle_s`` seconds, runs segment + diagnose
  (:mod:`mrparotid.serve.pipeline`) and commits the results to ``outbox/`` (or ``failed/``);
- the sender C-STOREs each outbox job to ``send.to`` with retries (:mod:`mrparotid.serve.sender`)
  and moves it to ``done/`` (or ``failed/``).

One line per study goes to stderr and ``OUT/serve.log``; it names the study by its key, never by
a patient identifier. SIGTERM (or SIGINT) stops the listener, lets the step under way finish and
exits 0; whatever is not finished is taken up by the next start. ``OUT/serve.lock`` keeps a second
node off the same folder.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import threading
import time
from pathlib import Path

from mrparotid.errors import ConfigError, MrParotidError
from mrparotid.serve.config import parse_destination
from mrparotid.serve.queue import StudyQueue
from mrparotid.serve.sender import SendError, SendStopped, send_with_retries

LOCK_FILE, LOG_FILE = "serve.lock", "serve.log"
POLL_S = 0.2
RESULT_FILES = ("SEG.dcm", "SR.dcm")


class Node:
    """One running node on ``cfg['out']`` with loaded ``models``
    (:class:`mrparotid.serve.pipeline.Models`)."""

    def __init__(self, cfg: dict, models, *, stream=None):
        self.cfg, self.models = cfg, models
        self.out = Path(cfg["out"])
        self.stop = threading.Event()
        self.stream = stream or sys.stderr
        self.dest = parse_destination(cfg["send"]["to"])
        self._log_lock = threading.Lock()
        self.queue: StudyQueue | None = None
        self.server = None
        self.port: int | None = None

    def log(self, line: str) -> None:
        """One timestamped line to stderr and ``OUT/serve.log`` (never a patient identifier)."""
        text = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} mrparotid serve: {line}"
        with self._log_lock:
            print(text, file=self.stream, flush=True)
            with open(self.out / LOG_FILE, "a", encoding="utf-8") as fh:
                fh.write(text + "\n")

    def start(self) -> None:
        """Take the folder's lock, recover the queue and start listening and working."""
        from mrparotid.serve.scp import start_scp
        from mrparotid.serve.tls import client_context, server_context

        self.out.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.out / LOCK_FILE, "a+", encoding="utf-8")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError("another mrparotid serve is running on this folder", path=self.out,
                              fix="stop it first, or give another --out") from None
        self._lock_fh.seek(0)
        self._lock_fh.truncate()
        self._lock_fh.write(f"{os.getpid()}\n")
        self._lock_fh.flush()
        self.queue = StudyQueue(self.out)
        pending = self.queue.recover()
        self.client_tls = client_context(self.cfg["tls"])
        try:
            self.server = start_scp(self.cfg, self.queue, self.log, server_context(self.cfg["tls"]))
        except OSError as exc:
            raise ConfigError(f"cannot listen on port {self.cfg['node']['port']} "
                              f"({exc.strerror or exc})", fix="choose a free port (--port), "
                              "or run as a user allowed to bind it") from None
        self.port = self.server.server_address[1]
        resumed, to_send = len(pending), len(self.queue.jobs("outbox"))
        self.threads = [threading.Thread(target=self.work, args=(pending,), name="serve-worker", daemon=True),
                        threading.Thread(target=self.send_loop, name="serve-sender", daemon=True)]
        for t in self.threads:
            t.start()
        node = self.cfg["node"]
        self.log(f"listening as {node['ae_title']} on port {self.port}"
                 f"{' (TLS)' if self.cfg['tls']['enabled'] else ''}; allowed: "
                 f"{', '.join(node['allow'])}; results to {self.dest}; idle {node['idle_s']:g} s; "
                 f"{resumed} study(ies) resumed, {to_send} to send")

    def shutdown(self, timeout_s: float = 120.0) -> None:
        """Stop listening, let the step under way finish (up to ``timeout_s``), release the lock."""
        self.stop.set()
        if self.server is not None:
            self.server.shutdown()
        for t in getattr(self, "threads", []):
            t.join(timeout_s)
        self.log("stopped")
        fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
        self._lock_fh.close()

    def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, shut down cleanly; exit code 0."""
        self.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())
        while not self.stop.wait(0.5):
            pass
        self.log("stop signal: finishing the step under way, then stopping")
        self.shutdown()
        return 0

    # ------------------------------------------------------------------ worker
    def work(self, pending: list[Path]) -> None:
        """Process resumed jobs, then each study that has gone idle, one at a time."""
        idle_s = float(self.cfg["node"]["idle_s"])
        while not self.stop.is_set():
            try:
                job = pending.pop(0) if pending else self.claim_next(idle_s)
                if job is None:
                    self.stop.wait(POLL_S)
                    continue
                self.process(job)
            except OSError as exc:         # disk full, folder gone: say so, keep the node up
                self.log(f"worker: {exc.strerror or exc} ({exc.filename or 'queue'}); retrying")
                self.stop.wait(5.0)

    def claim_next(self, idle_s: float) -> Path | None:
        for key in self.queue.idle(idle_s):
            job = self.queue.claim(key, idle_s)
            if job is not None:
                return job
        return None

    def process(self, job: Path) -> None:
        from mrparotid.serve.pipeline import job_record, process_job

        record = job_record(job)
        try:
            process_job(job, self.models, roles_file=self.cfg["node"]["roles"])
        except MrParotidError as err:
            failed = self.queue.fail(job, "inference", str(err))
            self.log(f"study {record['key']}: FAILED (inference): {err} -> kept in failed/{failed.name}")
            return
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the node
            failed = self.queue.fail(job, "inference", f"internal error: {type(exc).__name__}: {exc}")
            self.log(f"study {record['key']}: FAILED (internal error {type(exc).__name__}) -> kept "
                     f"in failed/{failed.name}; please report it")
            return
        self.queue.commit_results(job)

    # ------------------------------------------------------------------ sender
    def send_loop(self) -> None:
        while not self.stop.is_set():
            try:
                jobs = self.queue.jobs("outbox")
                if not jobs:
                    self.stop.wait(POLL_S)
                    continue
                self.send(jobs[0])
            except OSError as exc:         # disk full, folder gone: say so, keep the node up
                self.log(f"sender: {exc.strerror or exc} ({exc.filename or 'queue'}); retrying")
                self.stop.wait(5.0)

    def send(self, job: Path) -> None:
        from mrparotid.serve.pipeline import job_record

        record = job_record(job)
        send = self.cfg["send"]
        files = [job / name for name in RESULT_FILES if (job / name).is_file()]

        def retry(attempt: int, reason: str, delay: float) -> None:
            self.log(f"study {record['key']}: send attempt {attempt} failed ({reason}); "
                     f"retrying in {delay:g} s")

        try:
            attempts = send_with_retries(files, self.dest, calling_ae=send["ae_title"],
                                         timeout_s=float(send["timeout_s"]), retries=int(send["retries"]),
                                         backoff_s=float(send["backoff_s"]), stop=self.stop,
                                         tls=self.client_tls, on_retry=retry)
        except SendStopped:
            return                                  # stays in the outbox for the next start
        except SendError as err:
            failed = self.queue.fail(job, "send", err.message)
            self.log(f"study {record['key']}: FAILED (send): {err.message} -> kept in failed/{failed.name}")
            return
        except Exception as exc:  # noqa: BLE001 - e.g. a result file that cannot be read
            failed = self.queue.fail(job, "send", f"internal error: {type(exc).__name__}: {exc}")
            self.log(f"study {record['key']}: FAILED (send, {type(exc).__name__}) -> kept in "
                     f"failed/{failed.name}")
            return
        done_at = time.time()
        summary = study_summary(job, record, str(self.dest), attempts, done_at)
        self.queue.finish(job, summary)
        self.log(summary_line(summary))


def study_summary(job: Path, record: dict, dest: str, attempts: int, done_at: float) -> dict:
    """What ``done/<job>/summary.json`` and the log line say of a finished study."""
    import json

    try:
        report = json.loads((job / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report = {}
    last = record.get("last_instance_at")
    return {"key": record.get("key"), "job": job.name, "instances": record.get("instances"),
            "answer": report.get("answer"), "diagnosis": report.get("diagnosis"),
            "p_malignant": report.get("p_malignant"), "synthetic": report.get("synthetic"),
            "sent": [p for p in RESULT_FILES if (job / p).is_file()], "destination": dest,
            "attempts": attempts, "done_at": done_at,
            "seconds_after_last_instance": None if last is None else round(done_at - float(last), 2)}


def summary_line(s: dict) -> str:
    """The one log line of a finished study (no patient identifier)."""
    p = s.get("p_malignant")
    took = s.get("seconds_after_last_instance")
    return (f"study {s['key']}: {s.get('instances')} instances -> answer {s.get('answer')} (rule "
            f"{s.get('diagnosis')}, p(malignant) {'n/a' if p is None else f'{p:.3f}'})"
            f"{' [SYNTHETIC]' if s.get('synthetic') else ''}; {'+'.join(f[:-4] for f in s['sent'])} "
            f"stored at {s['destination']}"
            + ("" if took is None else f" {took:.1f} s after the last instance"))
