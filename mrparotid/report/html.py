"""A patient's report dict + montage → one self-contained HTML page (Jinja2, autoescaped); a cohort
→ an index page linking them.

Pages embed their images as ``data:`` URIs and reference nothing outside the file (no scripts,
fonts or styles from the network), so they open offline, print and attach to a case conference.
Every page says "research software, not a medical device", and SYNTHETIC in a banner when the
data or model is synthetic. Every file is written atomically (:mod:`mrparotid.io.atomic`).
"""

from __future__ import annotations

import base64
import functools
import json
import time
from pathlib import Path

import numpy as np

from mrparotid import __version__
from mrparotid.constants import CLASSES
from mrparotid.errors import OutputError
from mrparotid.inference.diagnose import PatientEvidence, truth_cell
from mrparotid.io.atomic import write_bytes, write_text
from mrparotid.io.paths import relative_paths
from mrparotid.io.patient_ids import safe_stem
from mrparotid.models.checkpoint import LoadedModel
from mrparotid.report.model_card import model_card
from mrparotid.report.montage import MAX_ROWS, SHORT, decisive_class, decisive_slices, montage_png

TEMPLATES = Path(__file__).resolve().parent / "templates"
DISCLAIMER = "research software, not a medical device"

#: Report keys the page shows in their own sections; any other key is listed under "Other
#: report fields", so a field added to the report later is never silently dropped.
SHOWN_KEYS = frozenset({"patient_id", "diagnosis", "counts", "slices", "rule", "model", "synthetic",
                        "notes", "true_diagnosis", "missing_series", "p_malignant", "answer_reason", "headline",
                        "decision", "answer_notes", "tumour_slices",
                        "answer", "view", "masks", "tumour_found",
                        "warnings", "segmenter", "explain"})
BRANCH_TEXT = {"malignant_count": "enough malignant slices",
               "benign_majority": "more slices of this benign type",
               "benign_tie_prob_sum": "tie in slice counts, broken by summed probability",
               "no_tumour_slices": "no tumour slice"}
SOURCE_TEXT = {"given": "given (the patient folder)", "auto": "automatic (segmenter)",
               "none": "none"}


@functools.lru_cache(maxsize=1)
def environment():
    """The Jinja2 environment: templates from ``report/templates``, autoescape on."""
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def page_name(patient_id: str) -> str:
    """A safe file name for a patient's page (letters, digits, ``._-``; never ``index.html``).
    Two patients of one command never share it (:func:`mrparotid.io.patient_ids.check_unique`)."""
    return safe_stem(patient_id) + ".html"


def shown_card(card: dict, base: str | Path) -> dict:
    """The model card with its paths (checkpoint, files read) relative to the page folder."""
    return relative_paths(card, base)


def prepare_out_dir(path: str | Path, *, overwrite: bool = False) -> Path:
    """``path`` as an output folder (made if missing). Files of the same name are replaced;
    other files in it are left alone.

    Raises
    ------
    OutputError
        ``path`` is a file, or a non-empty folder and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError("--html needs a folder, this is a file", path=path,
                          fix="choose a folder name for the report pages")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputError("the report folder is not empty", path=path,
                          fix="choose an empty or new folder, or pass --overwrite to replace the "
                              "pages in it")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot make the folder: {exc.strerror or exc}", path=path,
                          fix="choose a folder you can write to") from None
    return path


def _common(synthetic: bool) -> dict:
    return {"synthetic": synthetic, "disclaimer": DISCLAIMER, "version": __version__,
            "written": time.strftime("%Y-%m-%d %H:%M")}


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return str(value)


def _answer(report: dict) -> dict:
    """The page's answer box: the headline (the answer, with the paper's rule beside it), and
    the operating point it was chosen at with its validation counts."""
    if "answer" not in report:
        return {"answer_text": None, "answer_is_refer": False, "p_text": None}
    d = report.get("decision") or {}
    p = report.get("p_malignant")
    ts = report.get("tumour_slices") or {}
    p_text = ("p(malignant): not available" if p is None else
              f"p(malignant) = {p:.3f} ({str(d.get('aggregation', '')).replace('_', '-')} over "
              f"{ts.get('n', '?')} {ts.get('source', '')} slice(s), temperature "
              f"{float(d.get('temperature', 1.0)):.2f})")
    p_text += f". Operating point: {d.get('operating_point', 'not validated')} [{d.get('record', '')}]."
    p_text += "".join(f" Model, {f}." for f in d.get("test_figures", []))
    p_text += "".join(f" Note: {n}" for n in report.get("answer_notes", []))
    answer = str(report["answer"])
    return {"answer_text": report.get("headline", answer), "answer_is_refer": answer == "refer", "p_text": p_text}


def _slice_table(report: dict, shown: set[tuple[str, int]]) -> tuple[list[str], list[dict], set[int]]:
    """Heads, rows and left-aligned (text) column indices of the per-slice table: the known
    columns, then any other key of the rows."""
    slices = report["slices"]
    truth = any("true" in s or "tumour_in_mask" in s for s in slices)
    cam = any("cam" in s for s in slices)
    known = {"side", "index", "z_mm", "pred", "probs", "true", "tumour_in_mask", "cam"}
    extra = sorted({k for s in slices for k in s if k not in known})
    heads = ["side", "k", "z (mm)", "predicted", *[f"p_{SHORT[c]}" for c in CLASSES]]
    heads += ["true"] * truth + ["peak (LPS mm)", "in tumour"] * cam + extra
    rows = []
    for s in slices:
        cells = [s["side"], s["index"], f"{s['z_mm']:.1f}", s["pred"].replace("_", " "),
                 *[f"{s['probs'][c]:.3f}" for c in CLASSES]]
        if truth:
            cells.append(truth_cell(s, report))
        if cam:
            c = s.get("cam") or {}
            peak, share = c.get("peak_mm"), c.get("tumour_share")
            cells += ["empty map" if peak is None else ", ".join(f"{v:.1f}" for v in peak),
                      "-" if share is None else f"{100 * share:.0f}%"]
        cells += [_fmt(s.get(k)) for k in extra]
        rows.append({"cells": cells, "pred": s["pred"], "shown": (s["side"], s["index"]) in shown})
    left = {0, 3} | ({4 + len(CLASSES)} if truth else set())
    return heads, rows, left


def patient_page(report: dict, montage: bytes | None, card: dict, *,
                 shown: set[tuple[str, int]] = frozenset(), montage_caption: str = "") -> str:
    """The HTML page of one patient's report dict (with ``cam`` rows after ``--explain``)."""
    rule = report.get("rule") or {}
    masks = report.get("masks")
    if not masks:
        has_tumour = any("tumour_in_mask" in s for s in report["slices"])
        masks = {"gland": "given", "tumour": "given" if has_tumour else "none"}
    found = [f"tumour on side {s}: {'yes' if v else 'no'}"
             for s, v in sorted((report.get("tumour_found") or {}).items()) if v is not None]
    if report.get("segmenter"):
        found.append(f"segmenter: {report['segmenter'].get('checkpoint')}")
    heads, rows, left = _slice_table(report, shown)
    sums = rule.get("prob_sums") or {}
    context = {
        **_common(bool(report.get("synthetic")) or card.get("synthetic", False)),
        **_answer(report),
        "pid": report["patient_id"], "diagnosis": report["diagnosis"],
        "true_diagnosis": report.get("true_diagnosis"), "view": report.get("view"),
        "slice_count": len(report["slices"]), "warnings": report.get("warnings") or [],
        "counts": [(c, report["counts"].get(c, 0)) for c in CLASSES],
        "threshold": rule.get("malignant_min_slices", "?"), "branch": rule.get("branch", "?"),
        "branch_text": BRANCH_TEXT.get(rule.get("branch"), ""),
        "prob_sums": ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in sums.items()),
        "masks": [(role, SOURCE_TEXT.get(src, src)) for role, src in masks.items()],
        "tumour_found": found, "missing_series": report.get("missing_series") or [],
        "notes": report.get("notes") or [],
        "montage_uri": data_uri(montage) if montage else None, "montage_caption": montage_caption,
        "explain": (report.get("explain") or {}).get("method"),
        "heads": heads, "rows": rows, "left": left, "pred_column": 3, "card": card,
        "extras": [(k, _fmt(v)) for k, v in report.items() if k not in SHOWN_KEYS],
    }
    return environment().get_template("patient.html.j2").render(**context)


def index_page(reports: list[dict], card: dict, skipped: list[str] = ()) -> str:
    """The index page of several patients' pages (``skipped``: one line per patient not diagnosed)."""
    entries = [{"patient_id": r["patient_id"], "page": page_name(r["patient_id"]),
                "diagnosis": r["diagnosis"], "answer": str(r.get("answer", "-")).replace("_", " "),
                "p_malignant": "-" if r.get("p_malignant") is None else f"{r['p_malignant']:.3f}",
                "slices": len(r["slices"]),
                "malignant": r["counts"].get("malignant", 0),
                "true_diagnosis": (r.get("true_diagnosis") or "-").replace("_", " ")} for r in reports]
    synthetic = any(r.get("synthetic") for r in reports) or card.get("synthetic", False)
    return environment().get_template("index.html.j2").render(
        **_common(synthetic), entries=entries, skipped=list(skipped), card=card,
        with_answer=any("answer" in r for r in reports))


def write_patient_report(out_dir: str | Path, evidence: PatientEvidence, report: dict,
                         cams: np.ndarray | None, loaded: LoadedModel,
                         card: dict | None = None) -> Path:
    """Write ``<patient>.html`` (montage embedded) and ``<patient>_montage.png`` (when the patient
    has slices) into ``out_dir``; returns the page's path."""
    out = Path(out_dir)
    card = shown_card(card if card is not None else model_card(loaded), out)
    report = relative_paths(report, out)            # no absolute local path on the page
    synthetic = bool(report.get("synthetic")) or card["synthetic"]
    rule_n = int((report.get("rule") or {}).get("malignant_min_slices", 2))
    title = f"patient {report['patient_id']}: rule says {report['diagnosis'].replace('_', ' ')}"
    if "answer" in report:
        title += f"; answer {str(report['answer']).replace('_', ' ')}"
    png = montage_png(evidence.slices, evidence.probs, cams, diagnosis=report["diagnosis"],
                      malignant_min_slices=rule_n, title=title, synthetic=synthetic,
                      missing=tuple(report.get("missing_series") or ()))
    rows = decisive_slices(evidence.probs, evidence.slices.z_mm, report["diagnosis"])
    shown = {(str(evidence.slices.sides[i]), int(evidence.slices.slice_index[i])) for i in rows}
    caption = ""
    if len(rows):
        cls = decisive_class(evidence.probs, report["diagnosis"]).replace("_", " ")
        n_cls = int((evidence.probs.argmax(1) == CLASSES.index(decisive_class(
            evidence.probs, report["diagnosis"]))).sum())
        caption = (f"One row per slice predicted {cls} ({len(rows)} of {n_cls}"
                   + (f"; the {MAX_ROWS} most probable" if n_cls > MAX_ROWS else "") + "), in z order.")
    stem = page_name(report["patient_id"])[:-len(".html")]
    if png:
        write_bytes(out / f"{stem}_montage.png", png)
    page = out / f"{stem}.html"
    write_text(page, patient_page(report, png, card, shown=shown, montage_caption=caption))
    return page


def write_index(out_dir: str | Path, reports: list[dict], card: dict,
                skipped: list[str] = ()) -> Path:
    """Write ``index.html`` linking each patient's page; returns its path."""
    path = Path(out_dir) / "index.html"
    write_text(path, index_page(reports, shown_card(card, out_dir), skipped))
    return path
