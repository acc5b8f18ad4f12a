"""The centre options of the verbs: ``--centre-from-dicom`` (prepare, fit, evaluate) and
``fit --cv --group``."""

from __future__ import annotations

from mrparotid.errors import ConfigError


def centres_from_dicom(args) -> None:
    """``--centre-from-dicom``: fill the manifest's missing centres from DICOM headers, write the
    result beside it and go on with that manifest (``args.manifest`` is replaced; one line per
    fact printed, :func:`mrparotid.dicom.centres.centre_lines`). Nothing without the flag.

    Raises
    ------
    ConfigError
        No manifest given, or ``--predictions`` (a CSV, no patients' folders) instead.
    """
    if not getattr(args, "centre_from_dicom", False):
        return
    if getattr(args, "predictions", None):
        raise ConfigError("--centre-from-dicom reads a manifest's DICOM headers; --predictions scores a "
                          "CSV", fix="add a centre column to the predictions CSV, or evaluate "
                          "--checkpoint CKPT --manifest M --centre-from-dicom")
    if not getattr(args, "manifest", None):
        raise ConfigError("--centre-from-dicom reads the DICOM headers of a manifest's patients, and no "
                          "manifest was given", fix="pass --manifest M")
    from mrparotid.dicom.centres import write_centre_manifest

    path, lines = write_centre_manifest(args.manifest)
    print("\n".join(lines))
    args.manifest = str(path)


def check_group(args) -> bool:
    """Whether ``--cv`` was given (``--cv`` alone is K = 0); ``--group`` without ``--cv`` (or
    ``--resume``) is refused: it only groups the folds of a cross-validation."""
    if getattr(args, "group", None) and args.cv is None and not args.resume:
        raise ConfigError(f"--group {args.group} groups the folds of a cross-validation",
                          fix="add --cv (e.g. --cv --group centre)")
    return args.cv is not None


def print_centre_cv(result: dict) -> bool:
    """Print a leave-one-centre-out result (:func:`mrparotid.training.loco.summary_lines`); False
    (nothing printed) for any other cross-validation."""
    if result.get("group") != "centre":
        return False
    from mrparotid.training.loco import summary_lines

    print("\n".join(summary_lines(result)))
    return True
