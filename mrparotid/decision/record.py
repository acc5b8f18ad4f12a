"""The decision record: a frozen, versioned description of how a checkpoint turns slice
probabilities into the answer, chosen on the validation predictions of that checkpoint and stored
in it (``meta["decision"]``) and nowhere else. :meth:`DecisionRecord.from_dict` validates what it
reads; a record that fails is a :class:`~mrparotid.errors.CheckpointError`.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from mrparotid.decision.aggregate import AGGREGATIONS
from mrparotid.errors import CheckpointError

SCHEMA = "mrparotid-decision-1"

#: Defaults of the ``decision:`` config section.
DEFAULTS = {"target_sensitivity": 0.95, "target_specificity": 0.90, "min_val_patients": 10,
            "cross_fit": 0, "masks": "given", "min_seg_dice_gland": 0.70, "min_seg_dice_tumour": 0.50}


@dataclass(frozen=True)
class DecisionRecord:
    """How a checkpoint answers, as chosen on its validation patients.

    ``temperature`` divides the slice logits (fitted on ``temperature_slices``); ``aggregation``
    pools the tumour slices' calibrated malignant probability into p(malignant) (length-free);
    ``lo``/``hi`` are the rule-out and rule-in cuts (malignant at or above ``hi``, benign below
    ``lo``, refer between), with ``sensitivity``/``specificity`` the counts they keep on
    validation (``{cut, k, n, lower, target}``; ``lower``: one-sided 95 % Clopper-Pearson).
    ``validated`` is False below ``min_val_patients`` malignant or benign validation patients:
    the answer then always refers (fail closed). ``soft_threshold`` is the soft vote's cut,
    chosen by the same method as ``lo``. ``masks``: the masks the validation predictions were
    made on (``given`` or ``auto``); ``val_patients``: whose predictions chose it (so a test can
    show that no answered patient chose its own cut); ``checkpoint``: the file whose predictions
    chose it."""

    temperature: float
    aggregation: str
    lo: float
    hi: float
    validated: bool
    n_val_malignant: int
    n_val_benign: int
    min_val_patients: int
    target_sensitivity: float
    target_specificity: float
    soft_threshold: float
    sensitivity: dict = field(default_factory=dict)
    specificity: dict = field(default_factory=dict)
    given_up: str | None = None
    temperature_note: str | None = None
    temperature_slices: str = ""
    n_val_slices: int = 0
    val_log_loss: dict = field(default_factory=dict)
    masks: str = "given"
    val_patients: list = field(default_factory=list)
    source: str = ""
    checkpoint: str = ""
    schema: str = SCHEMA

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data, path: str | Path | None = None) -> DecisionRecord:
        """A validated record from a checkpoint's ``meta["decision"]``.

        Raises
        ------
        CheckpointError
            Not a mapping, an unknown schema or key, a missing key, a wrong type, a temperature that
            is not finite and > 0, an unknown aggregation, cuts outside [0, 1] or lo > hi.
        """
        fix = "re-run 'mrparotid fit' (or 'mrparotid evaluate --checkpoint' to refit the decision)"
        where = "decision record: "
        if not isinstance(data, dict):
            raise CheckpointError(f"{where}not a mapping ({type(data).__name__})", path=path, fix=fix)
        if data.get("schema") != SCHEMA:
            raise CheckpointError(f"{where}unknown schema {data.get('schema')!r} (expected {SCHEMA})",
                                  path=path, fix=fix)
        known = {f.name: f for f in fields(cls)}
        extra = sorted(set(data) - set(known))
        if extra:
            raise CheckpointError(f"{where}unknown key(s) {', '.join(map(str, extra))}", path=path, fix=fix)
        required = [n for n, f in known.items() if f.default is MISSING and f.default_factory is MISSING]
        missing = [n for n in required if n not in data]
        if missing:
            raise CheckpointError(f"{where}missing {', '.join(missing)}", path=path, fix=fix)
        try:
            record = cls(**data)
            record.check()
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}{exc}", path=path, fix=fix) from None
        return record

    def check(self) -> None:
        """ValueError/TypeError unless every field has its type and range."""
        t = _number("temperature", self.temperature)
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"temperature must be finite and > 0, got {self.temperature!r}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {self.aggregation!r} (one of {', '.join(AGGREGATIONS)})")
        lo, hi = _number("lo", self.lo), _number("hi", self.hi)
        for name, v in (("lo", lo), ("hi", hi), ("soft_threshold", _number("soft_threshold", self.soft_threshold)),
                        ("target_sensitivity", _number("target_sensitivity", self.target_sensitivity)),
                        ("target_specificity", _number("target_specificity", self.target_specificity))):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {v!r}")
        if lo > hi:
            raise ValueError(f"lo {lo!r} above hi {hi!r}")
        if not isinstance(self.validated, bool):
            raise TypeError(f"validated must be true or false, got {self.validated!r}")
        for name in ("n_val_malignant", "n_val_benign", "min_val_patients", "n_val_slices"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise TypeError(f"{name} must be a count >= 0, got {v!r}")
        if self.validated and min(self.n_val_malignant, self.n_val_benign) < self.min_val_patients:
            raise ValueError("marked validated with fewer validation patients than min_val_patients")
        for name in ("sensitivity", "specificity", "val_log_loss"):
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"{name} must be a mapping")
        for name in ("given_up", "temperature_note"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be text or null")
        if not isinstance(self.val_patients, list) or not all(isinstance(p, str) for p in self.val_patients):
            raise TypeError("val_patients must be a list of patient ids")
        for name in ("temperature_slices", "masks", "source", "checkpoint", "schema"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be text")

    def operating_point(self) -> str:
        """One line: the targets, the cuts and the validation counts they were chosen on."""
        if not self.validated:
            return (f"operating point not validated ({self.n_val_malignant} malignant, "
                    f"{self.n_val_benign} benign validation patients; {self.min_val_patients} of each needed)")
        s, p = self.sensitivity, self.specificity
        text = (f"malignant at p >= {self.hi:.3f}, benign below {self.lo:.3f}, refer between; "
                f"sensitivity >= {self.target_sensitivity:g} chosen on {s['n']} malignant validation "
                f"patients ({s['k']}/{s['n']}, lower bound {s['lower']:.2f}); specificity >= "
                f"{self.target_specificity:g} on {p['n']} benign ({p['k']}/{p['n']}, lower bound "
                f"{p['lower']:.2f}); {self.masks} masks")
        return text + (f"; {self.given_up}" if self.given_up else "")


def _number(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{name} must be a number, got {v!r}")
    return float(v)


def record_of(meta: dict, path: str | Path | None = None) -> DecisionRecord | None:
    """The checkpoint meta's validated decision record; None when it has none (for instance
    ``last.ckpt``, or a checkpoint written before decision records)."""
    data = meta.get("decision") if isinstance(meta, dict) else None
    return None if data is None else DecisionRecord.from_dict(data, path)
