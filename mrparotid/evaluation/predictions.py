"""The predictions CSV: one slice a row; read, validated and written here only.

The predictions CSV has one slice a row::

    patient_id,side,index,true,pred,p_no_tumour,p_pleomorphic_adenoma,p_warthin,p_malignant

``true``/``pred`` are class names (:data:`~mrparotid.constants.CLASSES`), ``side`` is ``L`` or
``R``, ``index`` the slice index, the ``p_*`` columns class probabilities in [0, 1] whose
largest entry is ``pred``. They are always the model's raw (uncalibrated, temperature 1) softmax:
the checkpoint's temperature is applied once, by the reader that needs calibrated numbers
(:mod:`mrparotid.decision.temperature`), never written here. Leading lines that start with ``#`` are comments; a first line
``# SYNTHETIC ...`` (see :data:`SYNTHETIC_LINE`) marks predictions on synthetic (phantom) data, and
every report made from the file carries the synthetic banner.

``diagnose --csv`` adds a ``missing_series`` column (:data:`OPTIONAL_COLUMNS`): the series the
patient lacked, ``;``-separated (e.g. ``CE-T1``), empty when every series was there. Readers keep
it when present and need it nowhere. ``fit`` and ``evaluate --checkpoint`` add a ``centre`` column
when the manifest names centres (one centre per patient, empty when unknown); ``evaluate`` then
scores each centre too. Files without these columns read as before.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mrparotid.constants import CLASSES, SERIES
from mrparotid.errors import InputError
from mrparotid.io.atomic import atomic_path

PROB_COLUMNS: tuple[str, ...] = tuple(f"p_{c}" for c in CLASSES)
COLUMNS: tuple[str, ...] = ("patient_id", "side", "index", "true", "pred", *PROB_COLUMNS)
KEY: list[str] = ["patient_id", "side", "index"]
#: Columns kept when a file has them: ``missing_series`` (``diagnose --csv``), ``centre`` (``fit``).
OPTIONAL_COLUMNS: tuple[str, ...] = ("missing_series", "centre")
#: First line of a predictions CSV made from synthetic data.
SYNTHETIC_LINE = "# SYNTHETIC data (phantom cohort) - not clinical; reports made from this file say so"
_FIX = "write it with 'mrparotid fit', 'mrparotid diagnose --csv' or 'mrparotid evaluate --checkpoint' (header: " + ",".join(COLUMNS) + ")"



def check_predictions(df: pd.DataFrame, source: str, *, keep_unlabelled: bool = False) -> pd.DataFrame:
    """Validate and normalise a predictions table; InputError names the file, line and fix.

    Rows with an empty ``true`` are left out (and counted) unless ``keep_unlabelled``: scoring
    needs a true class, a file of what ``diagnose`` predicted does not."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", path=source, fix=_FIX)
    if df.empty:
        raise InputError("no prediction rows", path=source, fix="predict at least one slice")
    df = df.loc[:, list(COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in df.columns]].copy()
    unlabelled = df["true"].isna() | (df["true"].astype(str).str.strip() == "")
    attrs = dict(df.attrs)
    n_unlabelled = int(unlabelled.sum()) + int(attrs.get("unlabelled_rows", 0))  # re-checks keep the count
    # file line of each kept row (header = 1 + the leading comment lines)
    if keep_unlabelled:
        unlabelled[:] = False
    lines = np.flatnonzero(~unlabelled.to_numpy()) + 2 + int(attrs.pop("comment_lines", 0))
    df = df.loc[~unlabelled]          # slices with no known class (e.g. no tumour mask) cannot be scored
    if keep_unlabelled:
        n_unlabelled = 0
    elif df.empty:
        raise InputError(f"none of the {n_unlabelled} rows has a true class", path=source,
                         fix="fill the true column (diagnose --csv can only when a tumour mask is given)")

    def bad(i: int, what: str, fix: str):
        raise InputError(f"line {lines[i]}: {what}", path=source, fix=fix)

    df["patient_id"] = df["patient_id"].fillna("").astype(str).str.strip()
    if "missing_series" in df.columns:
        df["missing_series"] = df["missing_series"].fillna("").astype(str).str.strip()
        wrong = df["missing_series"].map(lambda v: not set(filter(None, v.split(";"))) <= set(SERIES))
        if wrong.any():
            i = int(np.flatnonzero(wrong.to_numpy())[0])
            bad(i, f"missing_series {df['missing_series'].iloc[i]!r} is not a list of series",
                "write the missing series separated by ';' (" + ", ".join(SERIES) + "), or leave it empty")
    if "centre" in df.columns:
        df["centre"] = df["centre"].fillna("").astype(str).str.strip()
        several = df.groupby("patient_id")["centre"].transform("nunique") > 1
        if several.any():
            i = int(np.flatnonzero(several.to_numpy())[0])
            bad(i, f"patient {df['patient_id'].iloc[i]!r} has several centres "
                f"({', '.join(sorted(set(df.loc[several, 'centre'])))})", "give each patient one centre")
    df["side"] = df["side"].astype(str).str.strip().str.upper()
    for col in ("true", "pred"):
        df[col] = df[col].astype(str).str.strip()
        wrong = ~df[col].isin(CLASSES + (("",) if keep_unlabelled and col == "true" else ()))
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            bad(i, f"{col} {df[col].iloc[i]!r} is not a class", "use one of " + ", ".join(CLASSES))
    wrong = ~df["side"].isin(["L", "R"]) | (df["patient_id"] == "")
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        bad(i, f"patient_id {df['patient_id'].iloc[i]!r} / side {df['side'].iloc[i]!r} invalid",
            "give a non-empty patient_id and side L or R")
    index = pd.to_numeric(df["index"], errors="coerce")
    wrong = index.isna() | (index != np.round(index))
    if wrong.any():
        i = int(np.flatnonzero(wrong.to_numpy())[0])
        bad(i, f"index {df['index'].iloc[i]!r} is not an integer", "write the slice index as an integer")
    df["index"] = index.astype(np.int64)
    probs = df.loc[:, list(PROB_COLUMNS)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    wrong = ~(np.isfinite(probs) & (probs >= 0) & (probs <= 1)).all(axis=1)
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        bad(i, f"probabilities {probs[i].tolist()} must be finite numbers in [0, 1]",
            "write softmax probabilities, not logits or blanks")
    for j, col in enumerate(PROB_COLUMNS):
        df[col] = probs[:, j]
    pred_idx = df["pred"].map(CLASSES.index).to_numpy()
    wrong = probs[np.arange(len(df)), pred_idx] < probs.max(axis=1)
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        bad(i, f"pred {df['pred'].iloc[i]!r} is not the most probable class",
            "set pred to the argmax of the p_* columns")
    dup = df.duplicated(KEY)
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        bad(i, "repeats patient_id/side/index {}/{}/{}".format(*df.loc[df.index[i], KEY]),
            "keep one row per slice")
    df = df.reset_index(drop=True)
    df.attrs.update(attrs, unlabelled_rows=n_unlabelled, synthetic=bool(attrs.get("synthetic", False)))
    return df


def _comment_lines(path: Path) -> tuple[int, bool]:
    """(number of leading ``#`` lines, whether one says SYNTHETIC)."""
    n, synthetic = 0, False
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.lstrip().startswith("#"):
                break
            n += 1
            synthetic |= line.lstrip("# \t").upper().startswith("SYNTHETIC")
    return n, synthetic


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read and validate a predictions CSV (see module docstring) into a DataFrame, one row a slice.

    Rows with an empty ``true`` (slices whose class is unknown) are left out; their number is in
    ``df.attrs["unlabelled_rows"]``. Leading ``#`` lines are skipped; ``df.attrs["synthetic"]``
    is True when one of them starts with ``# SYNTHETIC``.

    Raises
    ------
    InputError
        Unreadable file, missing column, unknown class name, bad side/index, non-finite or
        out-of-range probability, ``pred`` not the argmax, duplicate slice; the message names the
        file, the line and the fix.
    """
    path = Path(path)
    try:
        n_comments, synthetic = _comment_lines(path)
        df = pd.read_csv(path, dtype={"patient_id": str, "side": str, "true": str, "pred": str,
                                      "missing_series": str, "centre": str},
                         keep_default_na=False, skipinitialspace=True, skiprows=n_comments)
    except FileNotFoundError:
        raise InputError("file not found", path=path, fix="check the path") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable CSV ({str(exc).splitlines()[0]})", path=path, fix=_FIX) from None
    df.attrs.update(comment_lines=n_comments, synthetic=synthetic)
    return check_predictions(df, str(path))


def write_predictions(df_or_records: pd.DataFrame | list[dict], path: str | Path, *,
                      synthetic: bool = False, keep_unlabelled: bool = False) -> Path:
    """Validate predictions (DataFrame or list of row dicts) and write them as CSV; returns ``path``.

    ``synthetic`` (or a DataFrame read from a synthetic file) writes :data:`SYNTHETIC_LINE` first.
    ``keep_unlabelled`` writes rows whose ``true`` is empty too (``diagnose --csv``).
    """
    df = df_or_records if isinstance(df_or_records, pd.DataFrame) else pd.DataFrame(list(df_or_records))
    df = check_predictions(df, str(path), keep_unlabelled=keep_unlabelled)
    synthetic = bool(synthetic or df.attrs.get("synthetic"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="") as fh:
        if synthetic:
            fh.write(SYNTHETIC_LINE + "\n")
        df.sort_values(KEY).to_csv(fh, index=False, float_format="%.6g")
    return path


def write_report_slices(reports: list[dict], path: str | Path) -> Path:
    """``diagnose --csv``: every predicted slice of the report dicts as a row, ``true`` empty
    where unknown, ``missing_series`` the patient's missing series (``;``-separated, empty when
    none); synthetic when any report is."""
    rows = [{"patient_id": r["patient_id"], "side": s["side"], "index": s["index"],
             "true": s.get("true", ""), "pred": s["pred"],
             **{f"p_{c}": p for c, p in s["probs"].items()},
             "missing_series": ";".join(r.get("missing_series") or ())}
            for r in reports for s in r["slices"]]
    df = pd.DataFrame(rows, columns=[*COLUMNS, "missing_series"])
    return write_predictions(df, path, synthetic=any(r.get("synthetic") for r in reports),
                             keep_unlabelled=True)


def pool_predictions(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One validated table from several (e.g. the folds' validation predictions), patient ids
    prefixed ``<name>/`` so that a patient predicted by two models counts as two; synthetic when
    any input is."""
    parts = [f.assign(patient_id=f"{name}/" + f["patient_id"].astype(str)) for name, f in frames.items()]
    df = pd.concat(parts, ignore_index=True)
    df.attrs = {"synthetic": any(bool(f.attrs.get("synthetic")) for f in frames.values()),
                "unlabelled_rows": sum(int(f.attrs.get("unlabelled_rows", 0)) for f in frames.values())}
    return check_predictions(df, "<pooled " + ", ".join(frames) + ">")


def as_predictions(preds: pd.DataFrame | str | Path) -> pd.DataFrame:
    """A validated predictions table from a path (read) or a DataFrame (checked)."""
    return read_predictions(preds) if isinstance(preds, (str, Path)) else check_predictions(preds, "<DataFrame>")


def prediction_records(split_data, probs: np.ndarray, centres: dict[str, str] | None = None) -> list[dict]:
    """Rows of the predictions CSV from a split's slices (``y``, ``patient_id``, ``side``,
    ``index``) and their probabilities (n, 4); a slice with no known class (y < 0) gets an empty
    ``true``. ``centres`` (patient id → centre; none given or empty: no column) adds ``centre``."""
    rows = []
    for i in range(len(probs)):
        y = int(split_data.y[i])
        row = {"patient_id": split_data.patient_id[i], "side": str(split_data.side[i]),
               "index": int(split_data.index[i]), "true": CLASSES[y] if y >= 0 else "",
               "pred": CLASSES[int(np.argmax(probs[i]))]}
        row.update({f"p_{c}": float(p) for c, p in zip(CLASSES, probs[i])})
        if centres:
            row["centre"] = centres.get(row["patient_id"]) or ""
        rows.append(row)
    return rows
