"""``ablate``: one model per channel subset, trained and tested on the same patient split, and
their comparison (the paper's Table 3)."""

from __future__ import annotations

import time
from itertools import combinations
from pathlib import Path

from mrparotid.config import check_trainer_args
from mrparotid.constants import CHANNELS, PAPER_SERIES, SERIES, parse_channels
from mrparotid.data.splits import cohort_split
from mrparotid.errors import ManifestError
from mrparotid.io.atomic import write_json
from mrparotid.training.fit import fit
from mrparotid.training.resume import read_plan, write_plan
from mrparotid.training.run_dir import prepared_cohort

ABLATE_PLAN = "ablate_plan"   # ablate_plan.json: channel sets and split, saved before the first run


def channel_name(channels) -> str:
    return "+".join(channels)


def config_series(cfg: dict) -> tuple[str, ...]:
    """The MR series a config's ``data.channels`` name, in fixed order (what ``ablate --all`` and
    ``ablate --missing`` enumerate subsets of)."""
    return tuple(c for c in parse_channels(cfg["data"]["channels"]) if c in SERIES)


def series_combinations(series: tuple[str, ...] = PAPER_SERIES) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``series``, by size, then in fixed order (for the paper's three
    series the 7 rows of its Table 3; 15 with a fourth series such as ADC)."""
    return [c for r in range(1, len(series) + 1) for c in combinations(series, r)]


SERIES_COMBINATIONS: list[tuple[str, ...]] = series_combinations()


def ablate(cfg: dict, channel_sets: list[tuple[str, ...]], *, manifest: str | Path | None = None,
           out_dir: str | Path | None = None, progress: bool = True, overwrite: bool = False,
           resume: bool = False) -> dict:
    """Train and test one model per channel set on the same split; compare them.

    ``resume``: continue the interrupted ablation in ``out_dir`` with its saved config, channel
    sets and split (``cfg``, ``channel_sets`` and ``manifest`` are then ignored), run by run.
    """
    if resume:
        cfg, plan = read_plan(out_dir, ABLATE_PLAN)
        channel_sets, manifest = [tuple(c) for c in plan["channel_sets"]], cfg["data"]["manifest"]
    check_trainer_args(cfg["trainer"])    # before any work: a bad trainer value fails at once
    manifest_path, prepared = prepared_cohort(cfg, manifest, progress=progress)
    mf = prepared.manifest
    splits = plan["splits"] if resume else cohort_split(prepared.ok_cases(), cfg["data"])
    if not splits["test"]:
        raise ManifestError("the manifest gives no test patients; ablate needs them", path=mf.path,
                            fix="mark some rows split=test, or set --data.test_fraction > 0")
    out_root = Path(out_dir) if out_dir else Path("runs") / ("ablate-" + time.strftime("%Y%m%d-%H%M%S"))
    if not resume:
        write_plan(out_root, ABLATE_PLAN, dict(cfg, data=dict(cfg["data"], manifest=str(manifest_path))),
                   {"channel_sets": [list(c) for c in channel_sets], "splits": splits})
    results = []
    for channels in channel_sets:
        run_cfg = dict(cfg, data=dict(cfg["data"], channels=list(channels)))
        name = channel_name(channels)
        summary = fit(run_cfg, manifest=manifest_path, out_dir=out_root / name, splits=splits,
                      progress=progress, evaluate=True, overwrite=overwrite, resume=resume)
        results.append({"name": name, "channels": list(channels), "run_dir": str(out_root / name),
                        "test": summary.get("test")})
    table = {"runs": results, "splits": splits, "synthetic": mf.synthetic}
    table["report"] = ablation_report(out_root, results, mf.synthetic)
    write_json(out_root / "ablation.json", table)
    return table


def ablation_report(out_root: Path, results: list[dict], synthetic: bool) -> str | None:
    """Table-3 style comparison (CSV, Markdown, bar chart) of the runs' test predictions."""
    from mrparotid.evaluation.evaluate import ablation_table
    from mrparotid.evaluation.predictions import read_predictions

    runs = [dict(r, preds=read_predictions(Path(r["run_dir"]) / "predictions_test.csv")) for r in results]
    names = [r["name"] for r in runs]
    series_of = {n: tuple(s for s in n.split("+") if s in SERIES) for n in names}
    reference = next((n for n in names if series_of[n] == PAPER_SERIES),   # the paper's three series
                     max(names, key=lambda n: len(series_of[n])))
    ablation_table(runs, reference, out_root, synthetic)
    return str(out_root / "ablation.md")


def with_mask(channel_sets, mask: bool) -> list[tuple[str, ...]]:
    return [tuple(c for c in CHANNELS if c in s or (mask and c == "mask")) for s in channel_sets]
