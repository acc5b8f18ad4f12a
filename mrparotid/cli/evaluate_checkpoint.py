"""``evaluate --checkpoint``: which overrides a trained checkpoint can honour, and the decision
record it is scored with (its own, or one refitted on its validation predictions for new
targets)."""

from __future__ import annotations

from pathlib import Path

from mrparotid.errors import ConfigError


#: Overrides ``evaluate --checkpoint`` honours: how to run (not what the model is), and new
#: targets of the decision, refitted on the checkpoint's stored validation predictions.
EVALUATE_OVERRIDES = ("trainer.", "data.cache_dir", "data.batch_size", "data.num_workers", "data.skip_bad",
                      "decision.target_sensitivity", "decision.target_specificity", "decision.min_val_patients")


def check_evaluate_overrides(extra: list[str]) -> bool:
    """Refuse (ConfigError) an override ``evaluate --checkpoint`` cannot honour: the model, its
    preprocessing, the rule and the split are the checkpoint's. Returns True when a decision
    target is given (the decision is then refitted on the checkpoint's validation predictions)."""
    from mrparotid.config import parse_overrides

    def keys(node: dict, prefix: str = "") -> list[str]:
        return [k for name, v in node.items() for k in
                (keys(v, f"{prefix}{name}.") if isinstance(v, dict) else [f"{prefix}{name}"])]

    given = keys(parse_overrides(list(extra)))
    refused = [k for k in given if not any(k == a or (a.endswith(".") and k.startswith(a)) for a in EVALUATE_OVERRIDES)]
    if refused:
        raise ConfigError(f"evaluate --checkpoint cannot honour --{', --'.join(refused)}: the model, its "
                          "preprocessing, the paper's rule and the split are the checkpoint's",
                          fix="re-train with 'mrparotid fit' to change them (decision targets may be given here)")
    return any(k.startswith("decision.") for k in given)


def evaluation_decision(checkpoint, paths: dict, cfg: dict, refit: bool):
    """(decision record, where it came from) for ``evaluate --checkpoint``: the checkpoint's own,
    or with new ``--decision.*`` targets one refitted here on its validation predictions."""
    from mrparotid.decision.record import record_of
    from mrparotid.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    if not refit:
        record = record_of(loaded.meta, loaded.path)
        return record, (paths["decision_source"] if record else f"none: {loaded.path.name} carries no record")
    from mrparotid.decision.fit import fit_decision
    from mrparotid.evaluation.metrics import patient_slices
    from mrparotid.evaluation.predictions import read_predictions

    if not paths.get("val"):
        raise ConfigError("--decision.* needs the run's validation patients, and it has none",
                          path=checkpoint, fix="drop the --decision.* overrides")
    record = fit_decision(patient_slices(read_predictions(paths["val"]))[0], cfg["decision"],
                          source=f"refitted here on {Path(paths['val']).name} with the targets given",
                          checkpoint=loaded.path.name)
    print(f"decision refitted on the run's validation predictions for the targets given: {record.operating_point()}")
    return record, record.source
