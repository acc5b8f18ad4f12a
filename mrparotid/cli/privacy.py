"""Patient names in what ``diagnose``, ``segment`` and ``evaluate`` write: two patients whose
outputs would collide are refused before any work (:mod:`mrparotid.io.patient_ids`), and
``--pseudonymise`` replaces ids and folder names by salted hashes (:mod:`mrparotid.io.pseudonym`)
in pages, JSON, CSV and log lines.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from mrparotid.io.pseudonym import Pseudonymiser, read_or_make_salt, salt_path

PSEUDONYMISE_HELP = ("replace patient ids and folder names by a salted hash (anon-…) in every "
                     "output and log line; the salt is kept in --salt-file (default "
                     "pseudonym_salt.txt in the output folder), so reruns give the same names")


def add_arguments(parser) -> None:
    """``--pseudonymise`` and ``--salt-file`` on a verb's parser."""
    parser.add_argument("--pseudonymise", "--pseudonymize", action="store_true", help=PSEUDONYMISE_HELP)
    parser.add_argument("--salt-file", metavar="FILE", help="with --pseudonymise: the salt (made "
                        "when missing; keep it out of what you share)")


def pseudonymiser(args, names: Iterable[tuple[str, str | None]], out_dir: str | Path | None
                  ) -> Pseudonymiser:
    """The command's :class:`Pseudonymiser`: inactive without ``--pseudonymise``; else salted
    from ``--salt-file`` or the salt file in ``out_dir`` (made there on first use)."""
    if not getattr(args, "pseudonymise", False):
        return Pseudonymiser()
    salt = read_or_make_salt(salt_path(getattr(args, "salt_file", None), out_dir))
    return Pseudonymiser(list(names), salt)


def diagnose_out_dir(args) -> Path | None:
    """Where ``diagnose`` keeps the salt: the ``--html`` folder, else the folder of ``--json``,
    else of ``--csv``; None when it writes no file."""
    if getattr(args, "html", None):
        return Path(args.html)
    for target in (getattr(args, "json", None), getattr(args, "csv", None)):
        if target:
            return Path(target).absolute().parent
    return None


def case_names(cases) -> list[tuple[str, str]]:
    """(patient id, folder name) of each case, for :class:`Pseudonymiser`."""
    return [(c.patient_id, Path(c.patient_dir).name) for c in cases]


def evaluate_pseudonymiser(args) -> Pseudonymiser:
    """``evaluate``: refuse colliding patient ids (of ``--predictions`` and ``--val-predictions``,
    or of ``--manifest``), then the command's :class:`Pseudonymiser` (salt in ``--out``)."""
    from mrparotid.io.patient_ids import check_unique

    if getattr(args, "predictions", None):   # a missing file is the evaluation's error to give
        files = [p for p in (args.predictions, getattr(args, "val_predictions", None))
                 if p and Path(p).is_file()]
        for path in files:
            check_unique([(pid, None) for pid in prediction_ids(path)], what="report rows and pictures")
        names = [(pid, None) for path in files for pid in prediction_ids(path)]
    elif getattr(args, "manifest", None):
        from mrparotid.io.manifest import read_manifest

        cases = read_manifest(args.manifest, check_dirs=False).cases
        check_unique([(c.patient_id, c.patient_dir) for c in cases], what="report rows and pictures")
        names = case_names(cases)
    else:
        names = []
    return pseudonymiser(args, names, args.out)


def pseudonymise_csvs(paths: dict, pseudo: Pseudonymiser) -> None:
    """:func:`pseudonymise_csv` of the prediction files ``predict_split`` wrote (``preds``,
    ``val``)."""
    for key in ("preds", "val"):
        if paths.get(key):
            pseudonymise_csv(paths[key], pseudo)


def pseudonymise_csv(path: str | Path, pseudo: Pseudonymiser) -> None:
    """Rewrite a CSV's ``patient_id`` column with pseudonyms, keeping its leading ``#`` lines and
    every other cell as written (atomically). Nothing happens when ``pseudo`` is inactive."""
    from mrparotid.io.atomic import write_text

    if not pseudo.active:
        return
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    n = next((i for i, line in enumerate(lines) if not line.lstrip().startswith("#")), len(lines))
    rows = list(csv.reader(io.StringIO("".join(lines[n:]))))
    if rows and "patient_id" in rows[0]:
        col = rows[0].index("patient_id")
        for row in rows[1:]:
            if len(row) > col:
                row[col] = pseudo.id(row[col])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    write_text(path, "".join(lines[:n]) + out.getvalue())


def pseudonymise_predictions(path: str | Path | None, pseudo: Pseudonymiser):
    """``path`` itself when ``pseudo`` is inactive (or no path); else the validated predictions
    table read from it with pseudonymised ``patient_id`` values (nothing is written)."""
    if path is None or not pseudo.active:
        return path
    from mrparotid.evaluation.predictions import read_predictions

    df = read_predictions(path)
    df["patient_id"] = df["patient_id"].map(pseudo.id)
    return df


def prediction_ids(path: str | Path) -> list[str]:
    """The patient ids of a predictions CSV, in file order (validated on the way)."""
    from mrparotid.evaluation.predictions import read_predictions

    return list(dict.fromkeys(read_predictions(path)["patient_id"]))


def run_clinic(checkpoint, segmenter, manifest, out_dir: str | Path, pseudo: Pseudonymiser, **kw) -> str:
    """The clinic path (:func:`mrparotid.evaluation.clinic.score_clinic`) written into
    ``out_dir`` with pseudonymised ids and paths relative to ``out_dir``; returns the lines to
    print."""
    from mrparotid.evaluation.clinic import score_clinic, write_clinic
    from mrparotid.evaluation.clinic_report import clinic_lines
    from mrparotid.io.paths import relative_paths

    result = pseudo.scrub(relative_paths(score_clinic(checkpoint, segmenter, manifest, **kw), out_dir))
    files = write_clinic(result, out_dir)
    return "\n".join(clinic_lines(result) + [f"clinic path: {files['md']}"])
