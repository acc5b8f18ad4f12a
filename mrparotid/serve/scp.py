"""The Storage SCP (pynetdicom): MR instances from allowed calling AE titles → the queue on disk.

Associations are accepted only from the AE titles of ``node.allow`` and only when they call our
AE title; only MR Image Storage and Enhanced MR Image Storage (any transfer syntax) and
Verification (C-ECHO) are offered, so any other object is refused at association. Each instance
is written whole to the queue (:meth:`mrparotid.serve.queue.StudyQueue.store`) before the
C-STORE response goes back.
"""

from __future__ import annotations

from collections.abc import Callable

from mrparotid.serve.queue import StudyQueue

#: SOP classes the node stores (MR Image Storage, Enhanced MR Image Storage).
MR_STORAGE = ("1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1")
#: C-STORE statuses.
SUCCESS, OUT_OF_RESOURCES, NOT_MATCHING, CANNOT_UNDERSTAND = 0x0000, 0xA700, 0xA900, 0xC000


def handle_store(event, queue: StudyQueue, log: Callable[[str], None]) -> int:
    """EVT_C_STORE: keep the instance, then answer (never raises)."""
    try:
        ds = event.dataset
        study = str(ds.get("StudyInstanceUID", "") or "")
        sop = str(event.request.AffectedSOPInstanceUID or ds.get("SOPInstanceUID", ""))
    except Exception as exc:  # noqa: BLE001 - a dataset pydicom cannot decode
        log(f"refused an instance that cannot be decoded ({type(exc).__name__})")
        return CANNOT_UNDERSTAND
    if not study or not sop:
        log("refused an instance without StudyInstanceUID/SOPInstanceUID")
        return NOT_MATCHING
    try:
        queue.store(study, sop, event.encoded_dataset(include_meta=True))
    except OSError as exc:
        log(f"cannot keep an instance on disk ({exc.strerror or exc}): answered out of resources")
        return OUT_OF_RESOURCES
    return SUCCESS


def make_ae(ae_title: str, allow: list[str], timeout_s: float):
    """The pynetdicom AE of the listening side: our title, the allow-list, the MR contexts."""
    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title=ae_title)
    ae.require_calling_aet = list(allow)
    ae.require_called_aet = True
    ae.acse_timeout = ae.network_timeout = timeout_s
    ae.dimse_timeout = timeout_s
    ae.maximum_associations = 8
    for sop_class in MR_STORAGE:
        ae.add_supported_context(sop_class, ALL_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification)
    return ae


def start_scp(cfg: dict, queue: StudyQueue, log: Callable[[str], None], ssl_context=None):
    """Start listening in background threads; returns the pynetdicom server (``.shutdown()``).

    Raises
    ------
    OSError
        The port cannot be bound (in use, or below 1024 without the right).
    """
    from pynetdicom import evt

    node = cfg["node"]
    ae = make_ae(node["ae_title"], node["allow"], float(cfg["send"]["timeout_s"]))

    def rejected(event):
        log(f"refused an association from AE title {event.assoc.requestor.ae_title!r} (not in "
            f"node.allow, or it did not call {node['ae_title']!r})")

    handlers = [(evt.EVT_C_STORE, handle_store, [queue, log]), (evt.EVT_REJECTED, rejected)]
    return ae.start_server((node["host"], int(node["port"])), block=False, ssl_context=ssl_context,
                           evt_handlers=handlers)
