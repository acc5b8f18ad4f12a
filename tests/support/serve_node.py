"""Running ``mrparotid serve`` in the tests: a free port, the node as a subprocess, a PACS (a
pynetdicom Storage SCP in this process, with an optional hold on each C-STORE), a modality that
sends a study (pynetdicom's SCU; the tests use dcmtk's ``storescu`` where installed)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pydicom

SEG_SOP, SR_SOP = "1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.88.34"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str, step_s: float = 0.02):
    """Poll ``predicate`` until it is truthy (returned) or fail naming ``what``."""
    end = time.time() + timeout_s
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def start_serve(out: Path, port: int, dest: str, checkpoint: Path, segmenter: Path, *extra: str,
                idle_s: float = 1.0, allow: str = "MODALITY1") -> subprocess.Popen:
    """``mrparotid serve`` in a subprocess; returns once it listens (its stderr goes to a file)."""
    out.mkdir(parents=True, exist_ok=True)
    before = listening_lines(out)
    log = open(out.parent / f"{out.name}-stderr.txt", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "mrparotid", "serve", "--port", str(port),
                             "--allow", allow, "--send-to", dest, "--checkpoint", str(checkpoint),
                             "--segmenter", str(segmenter), "--out", str(out), "--idle-s", str(idle_s),
                             "--send.backoff_s", "0.2", *extra], stdout=log, stderr=log)
    log.close()

    def listening():
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: "
                                 + (out.parent / f"{out.name}-stderr.txt").read_text()[-2000:])
        return listening_lines(out) > before

    wait_for(listening, 120, "serve to listen", step_s=0.1)
    return proc


def listening_lines(out: Path) -> int:
    """How many times a node on ``out`` has started listening (its log is appended to)."""
    log = out / "serve.log"
    return log.read_text(encoding="utf-8").count(" listening as ") if log.is_file() else 0


class Pacs:
    """A Storage SCP for SEG and SR in this process: keeps each received object by SOP Instance
    UID (``received``: every C-STORE, in order). While ``hold`` is clear, a C-STORE stores its
    object, sets ``entered`` and waits for ``hold`` before answering."""

    def __init__(self, folder: Path, ae_title: str = "PACS"):
        from pynetdicom import AE, evt

        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.received: list[tuple[str, str]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()
        ae = AE(ae_title=ae_title)
        for sop in (SEG_SOP, SR_SOP):
            ae.add_supported_context(sop)
        self.port = free_port()
        self.server = ae.start_server(("127.0.0.1", self.port), block=False,
                                      evt_handlers=[(evt.EVT_C_STORE, self._store)])

    def _store(self, event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        ds.save_as(self.folder / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
        self.received.append((str(ds.SOPClassUID), str(ds.SOPInstanceUID)))
        self.entered.set()
        self.hold.wait(60)
        return 0x0000

    def objects(self) -> dict[str, pydicom.Dataset]:
        """SOP Instance UID → the object kept for it."""
        return {p.stem: pydicom.dcmread(p) for p in sorted(self.folder.glob("*.dcm"))}

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()


def send_study(files: list[Path], port: int, *, calling_ae: str = "MODALITY1",
               called_ae: str = "MRPAROTID") -> list[int]:
    """C-STORE ``files`` with pynetdicom (as a modality); returns the statuses (-1: no response,
    an empty list: the association was refused)."""
    from pynetdicom import AE

    datasets = [pydicom.dcmread(f) for f in files]
    ae = AE(ae_title=calling_ae)
    for sop in dict.fromkeys(str(ds.SOPClassUID) for ds in datasets):
        ae.add_requested_context(sop)
    assoc = ae.associate("127.0.0.1", port, ae_title=called_ae)
    if not assoc.is_established:
        return []
    statuses = []
    try:
        for ds in datasets:
            if not assoc.is_established:          # the node went away mid-study
                statuses.append(-1)
                break
            status = assoc.send_c_store(ds)
            statuses.append(int(status.Status) if "Status" in status else -1)
    finally:
        if assoc.is_established:
            assoc.release()
    return statuses
