"""``mrparotid serve``: a DICOM node beside PACS (pynetdicom).

In: MR instances by C-STORE from the calling AE titles of an allow-list, kept on disk as they
arrive (queue.py); a study is complete when none has arrived for ``node.idle_s`` seconds.
Out: per study, the same path as ``segment`` + ``diagnose --dicom-out`` (pipeline.py) and its
DICOM SEG and SR C-STOREd to the destination with retries (sender.py); failures in ``failed/``
with their reason; one log line per study and ``--status`` (status.py), no patient identifiers.
"""
