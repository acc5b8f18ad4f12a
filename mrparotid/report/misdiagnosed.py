"""``evaluate --checkpoint``: a montage per misdiagnosed test patient, so an error analysis starts
from pictures.

The montages come from the run's cached crops: the same labelled slices, cut with the checkpoint's
preprocessing, that the test predictions were made and scored on (the cache is keyed by them, so
``evaluate`` has just built or reused exactly these entries). Each patient's slices are predicted
again by the checkpoint (same input, same precision) for the Grad-CAM maps of the predicted class.
Re-diagnosing the patient folder instead would predict ``diagnose``'s slice set, which need not be
the set the error was counted on.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mrparotid.io.atomic import write_bytes

#: The report.md paragraph on where the pictures come from.
SOURCE_NOTE = ("Montages are made from the run's cached crops: the labelled test slices the "
               "predictions above were scored on, predicted again by the checkpoint, with the "
               "Grad-CAM heat map of each slice's predicted class. Rows: the slices of the class "
               "that decided the (wrong) diagnosis.")
NEEDS_CHECKPOINT = ("Montages of the misdiagnosed patients need the crops: run evaluate with "
                    "--checkpoint and --manifest instead of --predictions.")


def montage_name(patient_id: str) -> str:
    """File name of a misdiagnosed patient's montage (letters, digits, ``._-``)."""
    import re

    return "misdiagnosed_" + re.sub(r"[^A-Za-z0-9._-]", "_", str(patient_id)) + ".png"


def error_montages(checkpoint: str | Path, cfg: dict, misdiagnosed: list[dict], out_dir: str | Path,
                   *, synthetic: bool, ids: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Write ``misdiagnosed_<patient>.png`` into ``out_dir`` for each ``{patient_id, true,
    diagnosis}`` (the evaluation's ``patient.rule.misdiagnosed``); returns patient → path.

    ``cfg`` is the evaluate command's config (its ``data.manifest`` and cache settings); the
    preprocessing and channels come from the checkpoint, as in
    :func:`mrparotid.training.fit.predict_split`. ``ids`` maps a shown (pseudonymised) id to the
    manifest's, to find the patient's crops; titles and file names use the shown id.
    """
    from mrparotid.data.cache import load_slices, prepare_patients
    from mrparotid.data.crops import select_channels
    from mrparotid.inference.explain import grad_cam
    from mrparotid.inference.predict import predict_probs
    from mrparotid.io.manifest import read_manifest
    from mrparotid.models.checkpoint import load_checkpoint
    from mrparotid.report.montage import montage_png

    if not misdiagnosed:
        return {}
    loaded = load_checkpoint(checkpoint)
    meta = loaded.meta
    options = meta.get("channel_options", {})
    series_mask = meta.get("series_mask", "none")
    run_cfg = loaded.run_config(cfg)
    mf = read_manifest(run_cfg["data"]["manifest"], check_dirs=False)
    cohort_id = dict(ids or {})
    prepared = prepare_patients(mf, [cohort_id.get(d["patient_id"], d["patient_id"])
                                     for d in misdiagnosed], run_cfg)
    rule_n = int(meta.get("rule", {}).get("malignant_min_slices", 2))
    precision = cfg.get("trainer", {}).get("precision", "auto")
    out, written = Path(out_dir), {}
    for d in misdiagnosed:
        pid = d["patient_id"]
        if cohort_id.get(pid, pid) not in prepared.entries:
            continue
        slices, _ = load_slices(prepared.entries[cohort_id.get(pid, pid)])
        x = select_channels(slices.crops, loaded.channels, series_mask, planes=slices.planes, **options)
        probs = predict_probs(loaded.model, x, precision=precision)
        cams = grad_cam(loaded.model, x, probs.argmax(1), path=str(loaded.path))
        title = (f"patient {pid}: true {d['true'].replace('_', ' ')}, rule says "
                 f"{d['diagnosis'].replace('_', ' ')} (misdiagnosed)")
        png = montage_png(slices, probs, cams, diagnosis=d["diagnosis"],
                          malignant_min_slices=rule_n, title=title, synthetic=synthetic)
        if png:
            written[pid] = out / montage_name(pid)
            write_bytes(written[pid], png)
    return written


def montage_section(misdiagnosed: list[dict], written: dict[str, Path] | None) -> str:
    """The report.md section: each misdiagnosed patient's montage, or why there is none
    (``written`` None: the evaluation had no crops)."""
    lines = ["", "## Misdiagnosed test patients: pictures", ""]
    if not misdiagnosed:
        return "\n".join(lines + ["No test patient was misdiagnosed by the rule.", ""])
    if written is None:
        return "\n".join(lines + [NEEDS_CHECKPOINT, ""])
    lines += [SOURCE_NOTE, ""]
    for d in misdiagnosed:
        pid = d["patient_id"]
        head = (f"**{pid}**: true {d['true'].replace('_', ' ')}, rule says "
                f"{d['diagnosis'].replace('_', ' ')}")
        lines += ([f"{head}", "", f"![{pid}]({written[pid].name})", ""] if pid in written else
                  [f"{head}: no montage (the patient's crops are not in the cache)", ""])
    return "\n".join(lines)
