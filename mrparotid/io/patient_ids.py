"""Patient ids as output names: one safe file/folder stem per id, and the check that no two
patients of one command would write the same output.

An id becomes a file name by keeping letters, digits and ``._-`` and replacing anything else by
``_`` (so "P 001", "P_001" and "P/001" all become ``P_001``); the id ``index`` becomes
``patient_index`` so that it never replaces a cohort's ``index.html``. Names are compared without
letter case, since macOS and Windows file systems do not tell ``P001`` from ``p001``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from mrparotid.errors import InputError

#: Stems that a cohort's own outputs use (``index.html``), which no patient may take.
RESERVED_STEMS = frozenset({"index"})


def safe_stem(patient_id: str) -> str:
    """The file-name stem of a patient's outputs: letters, digits and ``._-`` kept, anything else
    ``_``; a reserved stem (``index``, any case) gets the prefix ``patient_``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(patient_id))
    return ("patient_" if safe.lower() in RESERVED_STEMS else "") + safe


def output_key(patient_id: str) -> str:
    """What two patients must not share: the stem, letter case ignored."""
    return safe_stem(patient_id).casefold()


def check_unique(patients: Iterable[tuple[str, str | Path | None]], *, what: str = "outputs") -> None:
    """Refuse two patients with the same id, or whose ids give the same output name.

    ``patients``: (patient id, where it came from: its folder, or None) in command order;
    ``what`` names the outputs in the message (e.g. ``report pages``).

    Raises
    ------
    InputError
        Naming both patients and both source folders.
    """
    seen: dict[str, tuple[str, str | Path | None]] = {}
    for pid, source in patients:
        key = output_key(pid)
        if key in seen:
            first, first_source = seen[key]
            same = "the same id" if first == pid else f"ids that give the same name ({safe_stem(pid)})"
            where = (f" (folders {first_source} and {source})" if first_source is not None and
                     source is not None else "")
            raise InputError(f"two patients, {first!r} and {pid!r}, have {same}{where}, so their "
                             f"{what} would overwrite each other", patient=pid,
                             fix="rename one of the folders (or give distinct patient_id values in "
                                 "the manifest) and run again")
        seen[key] = (pid, source)
