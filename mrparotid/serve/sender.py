"""Results → the destination by C-STORE (pynetdicom), over one association per attempt, with
retries and exponential backoff. A file already stored (``.sent-<name>`` beside it) is not sent
again, so an outbox interrupted mid-way resumes where it stopped."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from pathlib import Path

from mrparotid.errors import MrParotidError
from mrparotid.serve.config import Destination


class SendError(MrParotidError):
    """The destination refused an association or an instance, or could not be reached."""


class SendStopped(Exception):
    """The node is stopping: the job stays in the outbox for the next start."""


def sent_marker(path: Path) -> Path:
    return path.with_name(f".sent-{path.name}")


def store_files(files: list[Path], dest: Destination, *, calling_ae: str, timeout_s: float,
                tls: ssl.SSLContext | None = None) -> int:
    """C-STORE each of ``files`` not yet marked sent, over one association; returns the number
    stored now.

    Raises
    ------
    SendError
        No association (refused, unreachable, timeout) or a failure status for an instance.
    """
    import pydicom
    from pynetdicom import AE

    todo = [f for f in files if not sent_marker(f).exists()]
    if not todo:
        return 0
    datasets = [pydicom.dcmread(f) for f in todo]
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    for sop_class in dict.fromkeys(str(ds.SOPClassUID) for ds in datasets):
        ae.add_requested_context(sop_class, [str(datasets[0].file_meta.TransferSyntaxUID),
                                             "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    tls_args = (tls, dest.host) if tls is not None else None
    try:
        assoc = ae.associate(dest.host, dest.port, ae_title=dest.ae_title, tls_args=tls_args)
    except (OSError, ssl.SSLError) as exc:
        raise SendError(f"cannot reach {dest}: {exc}") from None
    if not assoc.is_established:
        why = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "not established"
        raise SendError(f"association with {dest} {why}")
    try:
        for path, ds in zip(todo, datasets):
            status = assoc.send_c_store(ds)
            code = getattr(status, "Status", None)
            if code is None or not (code == 0x0000 or 0xB000 <= code <= 0xBFFF):
                what = "no response" if code is None else f"status 0x{code:04X}"
                raise SendError(f"{dest} did not store {path.name} ({what})")
            sent_marker(path).touch()
    finally:
        if assoc.is_established:
            assoc.release()
    return len(todo)


def send_with_retries(files: list[Path], dest: Destination, *, calling_ae: str, timeout_s: float,
                      retries: int, backoff_s: float, stop: threading.Event,
                      tls: ssl.SSLContext | None = None,
                      on_retry: Callable[[int, str, float], None] | None = None) -> int:
    """:func:`store_files`, tried ``1 + retries`` times, waiting ``backoff_s * 2**k`` before retry
    ``k``; returns the attempts used. A set ``stop`` ends the waiting early.

    Raises
    ------
    SendError
        Every attempt failed (the last reason).
    SendStopped
        ``stop`` was set while waiting to retry.
    """
    for attempt in range(retries + 1):
        try:
            store_files(files, dest, calling_ae=calling_ae, timeout_s=timeout_s, tls=tls)
            return attempt + 1
        except SendError as err:
            if attempt == retries:
                raise SendError(f"{err.message} (after {retries + 1} attempts)") from None
            delay = backoff_s * 2 ** attempt
            if on_retry is not None:
                on_retry(attempt + 1, err.message, delay)
            if stop.wait(delay):
                raise SendStopped(err.message) from None
    return retries + 1
