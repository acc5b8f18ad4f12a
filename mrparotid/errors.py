"""Error hierarchy. Every error the user can fix prints as one line and exits with code 2.

Messages say *what* is wrong, *where* (patient, file), and *what to do*::

    patient P007: file P007/T2.nii.gz: does not overlap the T1 field of view -> re-export T2 ...
"""

from __future__ import annotations

from pathlib import Path


class MrParotidError(Exception):
    """Base class: a problem the user can fix. The CLI prints ``str(err)`` and exits 2."""

    exit_code = 2

    def __init__(self, message: str, *, patient: str | None = None,
                 path: str | Path | None = None, fix: str | None = None):
        self.message = message
        self.patient = patient
        self.path = None if path is None else str(path)
        self.fix = fix
        super().__init__(self.format())

    def format(self) -> str:
        parts = []
        if self.patient:
            parts.append(f"patient {self.patient}")
        if self.path:
            parts.append(f"file {self.path}")
        head = ": ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        if self.fix:
            text += f" -> {self.fix}"
        return text.replace("\n", " ")


class InputError(MrParotidError):
    """Bad patient data: missing/duplicate/unreadable series, bad masks, geometry."""


class MissingSeriesError(InputError):
    """A series (T1, CE-T1 or T2) that the task needs is not in the patient folder; ``role`` names it."""

    def __init__(self, message: str, *, role: str, **kw):
        self.role = role
        super().__init__(message, **kw)


class ManifestError(MrParotidError):
    """Bad cohort manifest: unknown diagnosis, duplicate patient_id, missing folder."""


class ConfigError(MrParotidError):
    """Bad configuration value or command-line override."""


class CheckpointError(MrParotidError):
    """Checkpoint missing, not an mrparotid checkpoint, or incompatible with the data."""


class OutputError(MrParotidError):
    """An output file or folder cannot be written (permissions, full disk)."""


class CohortError(MrParotidError):
    """A cohort run met bad patients and ``--skip-bad`` was not given."""

    def __init__(self, bad: list[MrParotidError]):
        self.bad = bad
        lines = "; ".join(str(e) for e in bad)
        super().__init__(f"{len(bad)} bad patient(s): {lines}",
                         fix="fix them, or pass --skip-bad to go on without them")
