"""``ablate --missing``: one model trained with series dropout, scored on every series subset beside
the dedicated per-subset models of ``ablate --all`` (same patient split).

Output folder ``OUT``::

    OUT/<subset>/             the dedicated model of each of the 7 series subsets (+ mask), trained
                              without dropout -- an ``ablate --all --out OUT`` folder is reused
    OUT/dropout/              the series-dropout model (every series, + mask)
    OUT/dropout/missing/      its test predictions with only the subset's series given
    OUT/missing.csv, missing.md, missing.json   the comparison

A finished run (``summary.json``) already in a subfolder is reused when it was trained on the
same channels, series-dropout rate and patient split; otherwise it is refused unless
``overwrite`` (then retrained).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from mrparotid.config import check_trainer_args, read_yaml_mapping
from mrparotid.data.splits import cohort_split
from mrparotid.errors import ConfigError, ManifestError
from mrparotid.io.atomic import write_json, write_text
from mrparotid.training.ablate import channel_name, config_series, series_combinations, with_mask
from mrparotid.training.fit import fit
from mrparotid.training.run_dir import holds_run, is_worker, prepared_cohort

#: ``augment.series_dropout`` of the dropout model when the config leaves it at 0.
DEFAULT_SERIES_DROPOUT = 0.3

DROPOUT_RUN = "dropout"


def run_matches(run_dir: Path, summary: dict, channels: list[str], series_dropout: float,
                splits: dict[str, list[str]]) -> str | None:
    """Why the finished run in ``run_dir`` (its ``summary.json`` read as ``summary``) does not fit
    (channels, dropout rate, split), or None."""
    if list(summary.get("channels", [])) != list(channels):
        return f"channels {','.join(summary.get('channels', []))}, not {','.join(channels)}"
    saved = read_yaml_mapping(run_dir / "config.yaml", what="run config")
    rate = float((saved.get("augment") or {}).get("series_dropout", 0.0))
    if rate != float(series_dropout):
        return f"augment.series_dropout {rate:g}, not {series_dropout:g}"
    want = {k: sorted(v) for k, v in splits.items() if v}
    have = {k: sorted(v) for k, v in (summary.get("splits") or {}).items() if v}
    if want != have:
        return "another patient split"
    if not (run_dir / "predictions_test.csv").is_file():
        return "no predictions_test.csv"
    return None


def fit_or_reuse(run_cfg: dict, run_dir: Path, *, manifest: Path, splits: dict[str, list[str]],
                 progress: bool, overwrite: bool) -> dict:
    """The summary of the finished matching run in ``run_dir``, else of a new fit there."""
    rate = float(run_cfg["augment"]["series_dropout"])
    if holds_run(run_dir) and not overwrite:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        why = run_matches(run_dir, summary, run_cfg["data"]["channels"], rate, splits)
        if why:
            raise ConfigError(f"this folder holds a run with {why}", path=run_dir,
                              fix="pass --overwrite to retrain it, or choose another --out")
        if progress:
            print(f"reusing the finished run in {run_dir}")
        return summary
    return fit(run_cfg, manifest=manifest, out_dir=run_dir, splits=splits, progress=progress,
               evaluate=True, overwrite=overwrite)


def predict_subsets(checkpoint: str | Path, prepared, test_ids: list[str], out_dir: Path,
                    subsets: list[tuple[str, ...]], *, synthetic: bool, batch_size: int = 64) -> dict:
    """Predict the test slices with the dropout model, once per series subset (the other series
    zeroed and flagged absent); write ``predictions_<subset>.csv``. Returns subset name → path."""
    from mrparotid.data.datamodule import load_split
    from mrparotid.data.series_dropout import mask_series
    from mrparotid.evaluation.predictions import prediction_records, write_predictions
    from mrparotid.inference.predict import default_device, predict_probs
    from mrparotid.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    meta = loaded.meta
    data = load_split(prepared, test_ids, list(loaded.channels), meta.get("series_mask", "none"),
                      **meta.get("channel_options", {}))
    paths = {}
    for subset in subsets:
        x, present = mask_series(data.x, loaded.channels, subset)
        probs = predict_probs(loaded.model, x, present=present, batch_size=batch_size,
                              device=default_device())
        paths[channel_name(subset)] = write_predictions(
            prediction_records(data, probs), out_dir / f"predictions_{channel_name(subset)}.csv",
            synthetic=synthetic)
    return paths


def ablate_missing(cfg: dict, *, manifest: str | Path | None = None, out_dir: str | Path | None = None,
                   mask: bool = True, progress: bool = True, overwrite: bool = False) -> dict:
    """Train (or reuse) the dedicated subset models and one series-dropout model on one split,
    score the dropout model on every series subset and compare (:func:`missing_table`).

    The dropout rate is ``cfg["augment"]["series_dropout"]``, or :data:`DEFAULT_SERIES_DROPOUT`
    when that is 0; the dedicated models are trained without dropout. ``mask``: every model also
    gets the mask channel. Returns ``{"table", "text", "report", "splits", "synthetic", ...}``.
    """
    from mrparotid.evaluation.missing import format_missing, missing_table

    check_trainer_args(cfg["trainer"])
    manifest_path, prepared = prepared_cohort(cfg, manifest, progress=progress)
    mf = prepared.manifest
    splits = cohort_split(prepared.ok_cases(), cfg["data"])
    if not splits["test"]:
        raise ManifestError("the manifest gives no test patients; ablate --missing needs them",
                            path=mf.path, fix="mark some rows split=test, or set --data.test_fraction > 0")
    out_root = Path(out_dir) if out_dir else Path("runs") / ("ablate-missing-" + time.strftime("%Y%m%d-%H%M%S"))
    rate = float(cfg["augment"].get("series_dropout", 0.0)) or DEFAULT_SERIES_DROPOUT
    dedicated = {}
    series = config_series(cfg)              # the series the config names: its subsets are compared
    subsets = series_combinations(series)
    for subset in subsets:
        channels = list(with_mask([subset], mask)[0])
        run_cfg = dict(cfg, data=dict(cfg["data"], channels=channels),
                       augment=dict(cfg["augment"], series_dropout=0.0))
        run_dir = out_root / channel_name(channels)
        fit_or_reuse(run_cfg, run_dir, manifest=manifest_path, splits=splits, progress=progress,
                     overwrite=overwrite)
        dedicated[subset] = run_dir / "predictions_test.csv"
    drop_cfg = dict(cfg, data=dict(cfg["data"], channels=list(with_mask([series], mask)[0])),
                    augment=dict(cfg["augment"], series_dropout=rate))
    summary = fit_or_reuse(drop_cfg, out_root / DROPOUT_RUN, manifest=manifest_path, splits=splits,
                           progress=progress, overwrite=overwrite)
    if is_worker():                  # a DDP worker: rank 0 scores and writes the comparison
        return {}
    best = out_root / DROPOUT_RUN / "checkpoints" / Path(summary["best_checkpoint"]).name
    preds = predict_subsets(best, prepared, splits["test"],
                            out_root / DROPOUT_RUN / "missing", subsets,
                            synthetic=mf.synthetic, batch_size=int(cfg["data"]["batch_size"]))
    rows = [{"subset": channel_name(s), "missing": [x for x in series if x not in s],
             "dedicated": dedicated[s], "dropout": preds[channel_name(s)]}
            for s in sorted(subsets, key=lambda s: (-len(s), subsets.index(s)))]
    table = missing_table(rows, out_root, synthetic=mf.synthetic, dropout_rate=rate)
    from mrparotid.evaluation.missing import subset_answers, subset_answers_markdown
    from mrparotid.training.decision import run_record

    answers = subset_answers(preds, run_record(summary), int(cfg["rule"]["malignant_min_slices"]))
    report = out_root / "missing.md"
    write_text(report, report.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + subset_answers_markdown(answers))
    result = {"series_dropout": rate, "mask": mask, "splits": splits, "synthetic": mf.synthetic,
              "dropout_run": str(out_root / DROPOUT_RUN),
              "dedicated_runs": {channel_name(s): str(p.parent) for s, p in dedicated.items()},
              "table": table.to_dict(orient="records"), "answers": answers, "report": str(out_root / "missing.md")}
    write_json(out_root / "missing.json", result)
    result["text"] = format_missing(table)
    return result

