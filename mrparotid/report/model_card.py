"""What a report says about the model: run id, channels, split sizes and test accuracy with CI.

Read from the checkpoint's meta and, when the checkpoint sits in a run folder
(``RUN/checkpoints/*.ckpt``), from ``RUN/summary.json`` and ``RUN/evaluation/metrics.json``.
A missing or unreadable file leaves its figures "not recorded"; nothing here raises.
"""

from __future__ import annotations

import json
from pathlib import Path

from mrparotid.models.checkpoint import LoadedModel


def run_folder(checkpoint: str | Path) -> Path | None:
    """The run folder of a checkpoint in ``RUN/checkpoints/``, else None."""
    path = Path(checkpoint).resolve()
    return path.parent.parent if path.parent.name == "checkpoints" else None


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _rate(r: dict | None) -> str | None:
    """``0.800 [0.49, 0.94] (8/10, method)`` of a ``{estimate, lo, hi, k, n, method}`` rate."""
    if not isinstance(r, dict) or r.get("estimate") is None:
        return None
    text = f"{r['estimate']:.3f}"
    if r.get("lo") is not None and r.get("hi") is not None:
        text += f" [{r['lo']:.3f}, {r['hi']:.3f}] 95% CI"
    if r.get("k") is not None and r.get("n") is not None:
        text += f" ({r['k']}/{r['n']})"
    if r.get("method"):
        text += f", {r['method']}"
    return text


def model_card(loaded: LoadedModel) -> dict:
    """``checkpoint, run_id, model, config_hash, channels, synthetic, split_sizes`` and
    ``accuracy`` (a list of ``{name, text}``: test patient and slice accuracy with their CIs
    where ``evaluation/metrics.json`` has them, else the run summary's point estimates),
    ``sources`` (the files read)."""
    meta = loaded.meta
    run = run_folder(loaded.path)
    splits = (meta.get("split") or {}).get("splits") or {}
    card = {"checkpoint": str(loaded.path), "run_id": run.name if run else None,
            "model": (meta.get("model") or {}).get("name"), "config_hash": meta.get("config_hash"),
            "channels": list(loaded.channels), "synthetic": bool(meta.get("synthetic")),
            "split_sizes": {k: len(v) for k, v in splits.items()}, "accuracy": [], "sources": []}
    if run is None:
        return card
    metrics = _read_json(run / "evaluation" / "metrics.json")
    summary = _read_json(run / "summary.json")
    if metrics:
        card["sources"].append(str(run / "evaluation" / "metrics.json"))
        patient = _rate(((metrics.get("patient") or {}).get("rule") or {}).get("accuracy"))
        slice_ = _rate((metrics.get("slice") or {}).get("accuracy"))
        answer = (metrics.get("answer") or {})
        rates = (answer.get("patient") or {}).get("rates") or {}
        for name, key in (("the answer: coverage (test patients answered)", "coverage"),
                          ("the answer: accuracy among the answered", "accuracy"),
                          ("the answer: malignant sensitivity among the answered", "sensitivity")):
            text = _rate(rates.get(key))
            card["accuracy"] += [{"name": name, "text": text}] if text else []
        if answer.get("operating_point"):
            card["accuracy"].append({"name": "the answer: operating point (chosen on validation)",
                                     "text": str(answer["operating_point"])})
        card["accuracy"] += [{"name": "the paper's rule: test patient accuracy", "text": patient}] if patient else []
        card["accuracy"] += [{"name": "test slice accuracy", "text": slice_}] if slice_ else []
    if summary:
        card["sources"].append(str(run / "summary.json"))
        card["synthetic"] = card["synthetic"] or bool(summary.get("synthetic"))
        test = summary.get("test") or {}
        if not card["accuracy"] and test:
            for name, key, n in (("the paper's rule: test patient accuracy", "patient_accuracy", "patients"),
                                 ("test slice accuracy", "slice_accuracy", "slices")):
                if test.get(key) is not None:
                    card["accuracy"].append({"name": name, "text": f"{test[key]:.3f} (n = {test.get(n)}; "
                                             "no CI: the run has no evaluation/metrics.json)"})
    return card
