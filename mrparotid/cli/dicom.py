"""``mrparotid inspect`` and ``mrparotid convert``: DICOM study folders → the canonical layout.

``convert`` writes, per patient, ``T1.nii.gz``, ``CE-T1.nii.gz``, ``T2.nii.gz``, and where
present ``T2FS.nii.gz``, ``DCE.nii.gz`` (its peak phase), ``DWI.nii.gz`` (4-D, one trace volume
per b-value, ascending, on the grid of the high-b image) with ``DWI.bval`` (one b-value in s/mm²
per volume, the dcm2niix/FSL convention) and ``ADC.nii.gz`` (float32, x 10⁻³ mm²/s: the map
given, converted, or computed from the DWI), ``parotid.nii.gz`` (uint8: 1 right, 2 left gland)
and ``tumour.nii.gz`` (uint8 0/1, when contoured), each on its own grid (masks on the grid of the
series their RTSTRUCT references).
SimpleITK writes the NIfTI files (LPS → RAS handled by ITK); images are rebuilt from their voxels
and geometry only, so no DICOM header value reaches the files (the NIfTI ``descrip`` is empty).
Patient folders already in the named layout are rewritten as NIfTI the same way.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

OUTPUT_NAMES = {"T1": "T1.nii.gz", "CE-T1": "CE-T1.nii.gz", "T2": "T2.nii.gz",
                "T2FS": "T2FS.nii.gz", "ADC": "ADC.nii.gz", "DCE": "DCE.nii.gz",
                "gland": "parotid.nii.gz", "tumour": "tumour.nii.gz"}
#: The 4-D diffusion image and its b-values (the names the named layout reads).
DWI_NAME, BVAL_NAME = "DWI.nii.gz", "DWI.bval"
MANIFEST_NAME = "manifest.csv"

INSPECT_HELP = """\
List the DICOM series found in a patient folder (at any depth): series number, modality,
description, orientation, matrix, spacing, slices and the role (T1 / CE-T1 / T2 / T2FS / DWI /
ADC / DCE) each was given, with the reason (for DWI its b-values and the header they were read
from; for an ADC map the unit of its pixel values). Patient identifiers are never printed.

example:
  mrparotid inspect data/P001
  mrparotid inspect data/P001 --roles my_roles.yaml
"""

CONVERT_HELP = """\
Convert a DICOM study folder (series + RTSTRUCT contours) to the canonical layout:
OUT_DIR/T1.nii.gz, CE-T1.nii.gz, T2.nii.gz, parotid.nii.gz and tumour.nii.gz (if contoured),
and where the study has them T2FS.nii.gz, DCE.nii.gz, DWI.nii.gz + DWI.bval (4-D, one volume
per b-value) and ADC.nii.gz (x 10^-3 mm2/s; computed from the DWI when no ADC map is given).
With --manifest, convert every patient of a cohort manifest into OUT_DIR/<patient_id>/ and write
OUT_DIR/manifest.csv pointing at the converted folders, so a cohort is converted once.

examples:
  mrparotid convert data/P001 converted/P001
  mrparotid convert --manifest data/cohort.csv converted/ --roles my_roles.yaml
"""


def add_parsers(subparsers) -> None:
    """Register the ``inspect`` and ``convert`` sub-commands on an argparse subparsers object."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser("inspect", description=INSPECT_HELP, formatter_class=fmt,
                              help="list the DICOM series of a patient folder and their roles")
    p.add_argument("patient_dir", type=Path, metavar="PATIENT_DIR")
    p.add_argument("--roles", type=Path, default=None, metavar="FILE",
                   help="roles YAML merged over configs/dicom_roles.yaml "
                        "(e.g. a file holding `T2: {series_number: 5}`)")
    p.set_defaults(func=run_inspect)

    p = subparsers.add_parser("convert", description=CONVERT_HELP, formatter_class=fmt,
                              help="convert DICOM study folders to NIfTI (a patient or a cohort)")
    p.add_argument("patient_dir", type=Path, nargs="?", default=None, metavar="PATIENT_DIR",
                   help="one patient's folder (leave out with --manifest)")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    p.add_argument("--manifest", type=Path, default=None, metavar="M",
                   help="cohort CSV patient_id,diagnosis,patient_dir[,split][,center]")
    p.add_argument("--patient-id", default=None, help="id for one patient (default: folder name)")
    p.add_argument("--roles", type=Path, default=None, metavar="FILE",
                   help="roles YAML merged over configs/dicom_roles.yaml")
    p.add_argument("--require-tumour", action="store_true",
                   help="fail when a patient has no tumour contours")
    p.add_argument("--skip-bad", action="store_true",
                   help="with --manifest: leave bad patients out of the new manifest "
                        "instead of failing")
    p.set_defaults(func=run_convert)


def run_inspect(args: argparse.Namespace) -> int:
    from mrparotid.errors import InputError
    from mrparotid.dicom.discovery import discover_series, format_series_table

    folder = Path(args.patient_dir)
    if not folder.is_dir():
        raise InputError("patient folder not found", path=folder, fix="check the path")
    infos = discover_series(folder, roles_file=args.roles)
    if not infos:
        raise InputError("no DICOM image series found (at any depth)", path=folder,
                         fix="point at the folder holding the study's DICOM export")
    print(format_series_table(infos))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from mrparotid.errors import ConfigError

    if (args.manifest is None) == (args.patient_dir is None):
        raise ConfigError("give either PATIENT_DIR OUT_DIR or --manifest M OUT_DIR "
                          "(e.g. mrparotid convert data/P001 converted/P001)")
    if args.manifest is not None:
        out = convert_cohort(args.manifest, args.out_dir, roles_file=args.roles,
                             require_tumour=args.require_tumour, skip_bad=args.skip_bad)
        print(f"wrote {out}")
        return 0
    pid = args.patient_id or Path(args.patient_dir).resolve().name
    written = convert_patient(args.patient_dir, args.out_dir, pid, roles_file=args.roles,
                              require_tumour=args.require_tumour)
    print(f"patient {pid}: wrote {', '.join(p.name for p in written)} to {args.out_dir}")
    return 0


def convert_patient(patient_dir: Path, out_dir: Path, patient_id: str, *,
                    roles_file: Path | None = None, require_tumour: bool = False) -> list[Path]:
    """Write one patient's series and masks as NIfTI into ``out_dir``; returns the files written.

    A DICOM study folder goes through :func:`mrparotid.dicom.study.read_study`; a folder in the
    named layout through :func:`mrparotid.io.files.find_patient_files` (its ADC written in
    x 10⁻³ mm²/s, or computed from its DWI, as for a study).
    """
    import SimpleITK as sitk

    from mrparotid.data.diffusion import diffusion_images
    from mrparotid.data.grid import b_images_of
    from mrparotid.io.atomic import atomic_path
    from mrparotid.io.files import find_patient_files, read_image
    from mrparotid.dicom.study import is_study_folder, read_study

    patient_dir = Path(patient_dir)
    if is_study_folder(patient_dir):
        images, b_images = read_study(patient_dir, patient_id, roles_file=roles_file,
                                      require_tumour=require_tumour)
    else:
        files = find_patient_files(patient_dir, patient_id, require_tumour=require_tumour)
        images = {role: read_image(path, patient=patient_id) for role, path in files.paths.items()
                  if role != "DWI"}
        b_images = b_images_of(files.paths["DWI"], patient_id) if "DWI" in files.paths else {}
        if b_images or "ADC" in images:      # the ADC in x 10⁻³ mm²/s, or computed from the DWI
            images.update(diffusion_images(b_images, images.pop("ADC", None), patient=patient_id,
                                           path=files.paths.get("ADC", files.paths.get("DWI"))))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for role, name in OUTPUT_NAMES.items():
        if role in images:
            path = out_dir / name
            with atomic_path(path) as tmp:   # .nii.gz kept: the writer picks NIfTI by suffix
                sitk.WriteImage(_clean(images[role], mask=role in ("gland", "tumour")), str(tmp),
                                useCompression=True)
            written.append(path)
    if b_images:
        written += _write_dwi(b_images, out_dir)
    return written


def _write_dwi(b_images: dict, out_dir: Path) -> list[Path]:
    """Write ``DWI.nii.gz`` (4-D, ascending b, on the grid of the high-b image) and ``DWI.bval``;
    returns both paths."""
    import SimpleITK as sitk

    from mrparotid.data.diffusion import MIN_HIGH_B, choose_b_pair
    from mrparotid.data.grid import resample_onto
    from mrparotid.io.atomic import atomic_path

    reference = b_images[choose_b_pair(b_images)[1] if max(b_images) >= MIN_HIGH_B else max(b_images)]
    bs = sorted(b_images)
    volumes = [_clean(resample_onto(b_images[b], reference, is_mask=False), mask=False) for b in bs]
    image, bval = out_dir / DWI_NAME, out_dir / BVAL_NAME
    with atomic_path(image) as tmp:
        sitk.WriteImage(sitk.JoinSeries(volumes), str(tmp), useCompression=True)
    with atomic_path(bval) as tmp:
        Path(tmp).write_text(" ".join(f"{b:g}" for b in bs) + "\n", encoding="utf-8")
    return [image, bval]


def _clean(image, *, mask: bool):
    """The image rebuilt from voxels + geometry only (no metadata); masks as uint8."""
    import numpy as np
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(image)
    arr = np.rint(arr).clip(0, 255).astype(np.uint8) if mask else arr.astype(np.float32)
    clean = sitk.GetImageFromArray(arr)
    clean.CopyInformation(image)
    return clean


def convert_cohort(manifest: Path, out_dir: Path, *, roles_file: Path | None = None,
                   require_tumour: bool = False, skip_bad: bool = False) -> Path:
    """Convert every patient of ``manifest`` into ``out_dir/<patient_id>/``; return the new
    manifest's path.

    Raises
    ------
    CohortError
        Some patients failed and ``skip_bad`` is False (the others are converted, no manifest is
        written).
    ManifestError
        Bad manifest, or a patient_id that cannot be a folder name.
    """
    from dataclasses import replace

    from mrparotid.errors import CohortError, ManifestError, MrParotidError
    from mrparotid.io.manifest import read_manifest, write_manifest
    from mrparotid.io.progress import progress_bar

    m = read_manifest(manifest)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done, bad = [], []
    for case in progress_bar(m.cases, desc="convert", unit="patient"):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", case.patient_id):
            raise ManifestError("patient_id cannot be a folder name", patient=case.patient_id,
                                path=manifest, fix="use letters, digits, '.', '_' and '-' only")
        target = out_dir / case.patient_id
        try:
            convert_patient(case.patient_dir, target, case.patient_id, roles_file=roles_file,
                            require_tumour=require_tumour)
        except MrParotidError as exc:
            bad.append(exc)
            continue
        done.append(replace(case, patient_dir=target.resolve()))
    if bad and not skip_bad:
        raise CohortError(bad)
    path = out_dir / MANIFEST_NAME
    note = f"converted by 'mrparotid convert' from {Path(manifest).name}"
    if m.synthetic:
        note += " (SYNTHETIC)"
    if bad:
        note += f"; {len(bad)} patient(s) left out: " + ", ".join(e.patient or "?" for e in bad)
    write_manifest(path, done, comment=note)
    return path
