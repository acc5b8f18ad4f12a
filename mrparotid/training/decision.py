"""After training: choose the decision record on the run's validation predictions and store it in
the checkpoint whose predictions chose it (``meta["decision"]``), and nowhere else.

The checkpoint file is re-saved atomically with the record added to its ``"mrparotid"`` entry;
everything else in it is kept as it was. Any other checkpoint of the run (``last.ckpt``) has its
record removed, so it never carries a decision chosen on another model's predictions.
"""

from __future__ import annotations

from pathlib import Path

from mrparotid.errors import CheckpointError


def store_decision(checkpoint: str | Path, record: dict | None) -> None:
    """Write ``record`` into ``checkpoint``'s ``"mrparotid"`` meta as ``"decision"`` (None removes
    it); atomic re-save, loads with ``weights_only=True``."""
    import torch

    from mrparotid.io.atomic import atomic_path
    from mrparotid.models.checkpoint import checkpoint_record, torch_load_safely

    path = Path(checkpoint)
    ckpt = torch_load_safely(path, "mrparotid checkpoint", "re-run 'mrparotid fit'")
    meta = checkpoint_record(ckpt)
    if meta is None:
        raise CheckpointError("not an mrparotid checkpoint", path=path, fix="re-run 'mrparotid fit'")
    meta.pop("calibration", None)          # the record before decision records
    if record is None:
        if "decision" not in meta:
            return
        meta.pop("decision")
    else:
        meta["decision"] = dict(record)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def auto_mask_patients(checkpoint: Path, segmenter, cases, *, roles_file=None, progress: bool = True) -> dict:
    """Validation patients predicted as ``diagnose`` sees them from their series alone: patient id →
    (true diagnosis, raw slice probabilities, the automatic tumour mask's slices), for
    :func:`mrparotid.decision.fit.fit_decision`. A patient whose automatic masks hold no gland is
    predicted with no slice (its answer refers)."""
    import numpy as np
    from tqdm.auto import tqdm

    from mrparotid.data.preprocess import load_study
    from mrparotid.errors import InputError
    from mrparotid.inference.masks import resolve_masks
    from mrparotid.inference.missing import read_series
    from mrparotid.inference.procedure import predict_study
    from mrparotid.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    out = {}
    for case in tqdm(cases, desc="validation on automatic masks", unit="patient", disable=not progress):
        study = load_study(case, mode="train", roles_file=roles_file, read_series=read_series(loaded))
        try:
            masks = resolve_masks(study, segmenter, use_given=False)
        except InputError:
            out[case.patient_id] = (case.diagnosis, np.zeros((0, 4)), np.zeros(0, bool))
            continue
        pred = predict_study(masks.study, loaded, None, labelled=False)
        out[case.patient_id] = (case.diagnosis, pred.probs, pred.slices.tumour_on_slices)
    return out


def choose_decision(run_dir: str | Path, cfg: dict, chosen: Path, others: list[Path], *,
                    val_csv: Path | None, masks: str = "given", patients: dict | None = None,
                    note: str = "") -> dict:
    """Fit the decision record on ``val_csv`` (this run's validation predictions of ``chosen``;
    None: no validation, the record is not validated and every answer refers) or on ``patients``
    (:func:`auto_mask_patients`, with ``masks="auto"``), store it in ``chosen``, remove any record
    from ``others``, print one line and return the record as a dict."""
    from mrparotid.decision.fit import fit_decision
    from mrparotid.evaluation.metrics import patient_slices
    from mrparotid.evaluation.predictions import read_predictions

    if patients is not None:
        source = f"{len(patients)} validation patients predicted on automatic masks"
    else:
        patients = patient_slices(read_predictions(val_csv))[0] if val_csv is not None else {}
        source = (f"{val_csv.name} ({len(patients)} validation patients, {masks} masks)" if val_csv is not None
                  else "no validation predictions")
    source += f"; {note}" if note else ""
    record = fit_decision(patients, cfg.get("decision"), masks=masks, source=source, checkpoint=chosen.name)
    store_decision(chosen, record.to_dict())
    for path in others:
        if Path(path).is_file() and Path(path) != Path(chosen):
            store_decision(path, None)
    print(f"decision ({chosen.name}): temperature {record.temperature:.3f}, p(malignant) = "
          f"{record.aggregation.replace('_', '-')} over tumour slices; {record.operating_point()}")
    return record.to_dict()


def run_record(summary: dict):
    """The decision record a finished run's ``best.ckpt`` carries, from the run's summary (written
    with the checkpoint by :func:`choose_decision`), without loading the network again; from the
    checkpoint only for a summary that predates the record."""
    from mrparotid.decision.record import DecisionRecord, record_of

    best = Path(summary["best_checkpoint"])
    if summary.get("decision"):
        return DecisionRecord.from_dict(summary["decision"], best)
    from mrparotid.models.checkpoint import load_checkpoint

    return record_of(load_checkpoint(best).meta, best)

