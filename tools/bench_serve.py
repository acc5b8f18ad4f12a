"""Benchmark of ``mrparotid serve`` (never run by the tests): the time from the last received
instance of a 30-slice phantom study to its SEG and SR stored at the destination, warm (models
loaded, after one study), target <= 10 s on 2 CPU cores.

    python tools/bench_serve.py --segmenter runs/seg/checkpoints/best.ckpt [--checkpoint CKPT]
        [--slices 30] [--studies 4] [--idle-s 1]

The node runs as a subprocess (``python -m mrparotid serve``); a pynetdicom Storage SCP in this
process plays PACS and a pynetdicom SCU plays the modality. Without ``--checkpoint`` a classifier
of the default recipe (reduced ResNet18, 224 px) with random weights is written: its answers mean
nothing, its inference costs what a trained one does. Every figure includes ``--idle-s`` (the
wait that tells a study is complete); the line also gives the time without it. SYNTHETIC data.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pydicom

SEG_SOP, SR_SOP = "1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.88.34"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_classifier(path: Path) -> Path:
    """A default-recipe classifier checkpoint with seeded random weights (timing only)."""
    import torch

    from mrparotid.config import load_config
    from mrparotid.models.checkpoint import checkpoint_meta
    from mrparotid.models.factory import build_classifier

    cfg = load_config(None, [])
    torch.manual_seed(0)
    model = build_classifier(cfg["model"], len(cfg["data"]["channels"]), pretrained=False)
    torch.save({"state_dict": {"model." + k: v for k, v in model.state_dict().items()},
                "mrparotid": checkpoint_meta(cfg, synthetic=True)}, path)
    return path


class Pacs:
    """A SEG/SR Storage SCP that records when each object arrived."""

    def __init__(self):
        from pynetdicom import AE, evt

        self.arrived: list[tuple[float, str, str]] = []
        self.lock = threading.Lock()
        ae = AE(ae_title="PACS")
        for sop in (SEG_SOP, SR_SOP):
            ae.add_supported_context(sop)
        self.port = free_port()
        self.server = ae.start_server(("127.0.0.1", self.port), block=False,
                                      evt_handlers=[(evt.EVT_C_STORE, self.store)])

    def store(self, event) -> int:
        ds = event.dataset
        with self.lock:
            self.arrived.append((time.time(), str(ds.StudyInstanceUID), str(ds.SOPClassUID)))
        return 0x0000

    def done(self, study_uid: str) -> float | None:
        """When both the SEG and the SR of ``study_uid`` had arrived, or None."""
        with self.lock:
            got = {c: t for t, s, c in self.arrived if s == study_uid}
        return max(got.values()) if {SEG_SOP, SR_SOP} <= set(got) else None


def send(files: list[Path], port: int) -> float:
    """C-STORE the study as MODALITY1; returns when the last instance's response came back."""
    from pynetdicom import AE

    datasets = [pydicom.dcmread(f) for f in files]
    ae = AE(ae_title="MODALITY1")
    ae.add_requested_context(str(datasets[0].SOPClassUID))
    assoc = ae.associate("127.0.0.1", port, ae_title="MRPAROTID")
    if not assoc.is_established:
        sys.exit("the node refused the association")
    for ds in datasets:
        assoc.send_c_store(ds)
    last = time.time()
    assoc.release()
    return last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segmenter", required=True, help="a segmenter checkpoint ('segment fit')")
    ap.add_argument("--checkpoint", help="classifier (default: random weights, default recipe)")
    ap.add_argument("--slices", type=int, default=30)
    ap.add_argument("--studies", type=int, default=4)
    ap.add_argument("--idle-s", type=float, default=1.0)
    a = ap.parse_args()
    from mrparotid.data.phantom_dicom import write_phantom_study

    work = Path(tempfile.mkdtemp(prefix="mrparotid-bench-serve-"))
    checkpoint = Path(a.checkpoint) if a.checkpoint else random_classifier(work / "cls.ckpt")
    pacs, port = Pacs(), free_port()
    log = open(work / "serve-stderr.txt", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "mrparotid", "serve", "--port", str(port), "--allow",
                             "MODALITY1", "--send-to", f"PACS@127.0.0.1:{pacs.port}", "--checkpoint",
                             str(checkpoint), "--segmenter", a.segmenter, "--out", str(work / "node"),
                             "--idle-s", str(a.idle_s)], stdout=log, stderr=log)
    t0 = time.time()
    while "listening" not in (work / "serve-stderr.txt").read_text(errors="replace"):
        if proc.poll() is not None:
            sys.exit((work / "serve-stderr.txt").read_text()[-3000:])
        time.sleep(0.1)
    print(f"node started in {time.time() - t0:.1f} s (imports, models); SYNTHETIC phantom studies")
    took = []
    try:
        for i in range(a.studies):
            study = write_phantom_study(work / f"S{i}", patient_id=f"BENCH{i}", seed=100 + i,
                                        slices=a.slices)
            files = sorted(f for fs in study.files.values() for f in fs)
            last = send(files, port)
            while (done := pacs.done(study.study_uid)) is None:
                if proc.poll() is not None or time.time() - last > 300:
                    sys.exit((work / "serve-stderr.txt").read_text()[-3000:])
                time.sleep(0.02)
            took.append(done - last)
            print(f"study {i + 1}: {len(files)} instances ({a.slices} T1 slices): SEG + SR stored "
                  f"{took[-1]:.2f} s after the last instance ({took[-1] - a.idle_s:.2f} s without "
                  f"the {a.idle_s:g} s idle wait){'  [first: warm-up]' if i == 0 else ''}")
    finally:
        proc.terminate()
        proc.wait(60)
        pacs.server.shutdown()
    warm = took[1:] or took
    print(f"warm median: {statistics.median(warm):.2f} s from the last instance to SEG + SR at the "
          f"destination (target <= 10 s), {statistics.median(warm) - a.idle_s:.2f} s of it after "
          f"the idle wait; folder {work}")


if __name__ == "__main__":
    main()
