"""A folder holding a whole DICOM study (any depth) → T1, CE-T1, T2 and gland/tumour masks.

Series are found by SeriesInstanceUID among all DICOM files under the folder and given roles by
``configs/dicom_roles.yaml`` (SeriesDescription/ProtocolName patterns, the contrast tags, or a
pin to a SeriesNumber/SeriesInstanceUID from a ``--roles FILE``). Localizers, series with fewer
than 3 slices and other modalities are ignored. Contours come from an RTSTRUCT in the folder,
rasterised on the grid of the series they reference (:mod:`mrparotid.rtstruct`); gland/tumour
NIfTI files named as in :mod:`mrparotid.io` beside the DICOM files are accepted instead.

No patient identifier from the headers is read into anything this module returns or prints:
series are named by number, description, geometry and role only.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from mrparotid.config import CONFIG_DIR, read_yaml_mapping
from mrparotid.dicom import (frames_of, is_image, is_rtstruct, read_header, read_series_headers,
                             scan_folder, slice_normal)
from mrparotid.errors import ConfigError, InputError
from mrparotid.io import MASK_ROLES, SERIES_ROLES, read_image, role_of

DEFAULT_ROLES_FILE = CONFIG_DIR / "dicom_roles.yaml"
ROLES_KEYS = SERIES_ROLES + ("contrast", "ignore", "rois")
ROI_KEYS = ("tumour", "gland_right", "gland_left", "gland")


@dataclass(frozen=True)
class SeriesInfo:
    """One image series found in a study folder.

    ``orientation`` is ``axial``/``sagittal``/``coronal``, ``oblique <plane> <angle> deg`` (angle
    between the slice normal and the nearest scanner axis) or ``-`` without plane geometry;
    ``matrix`` is (columns, rows); ``spacing_mm`` (column, row, median slice step) in mm;
    ``role`` the role the rules gave it (None: ignored) and ``reason`` why.
    """

    series_uid: str
    series_number: int | None
    modality: str
    description: str
    orientation: str
    matrix: tuple[int, int]
    spacing_mm: tuple[float, float, float]
    n_slices: int
    files: tuple[Path, ...]
    role: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class RoleRule:
    """How one role is found: a pin (series_number / series_uid) or patterns + contrast."""

    match: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    contrast: str = "any"                # "true" | "false" | "any"
    series_number: int | None = None
    series_uid: str | None = None

    @property
    def pinned(self) -> bool:
        return self.series_number is not None or self.series_uid is not None


@dataclass(frozen=True)
class RolesConfig:
    """The parsed roles YAML (see ``configs/dicom_roles.yaml``)."""

    rules: dict[str, RoleRule]
    contrast_tags: bool
    contrast_patterns: tuple[str, ...]
    ignore_image_type: tuple[str, ...]
    ignore_description: tuple[str, ...]
    min_slices: int
    modalities: tuple[str, ...]
    rois: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class _Tags:
    protocol: str
    image_type: tuple[str, ...]
    contrast_agent: bool


# ----------------------------------------------------------------------------- roles config

def load_roles(roles_file: Path | None = None) -> RolesConfig:
    """The default roles YAML, with the top-level keys of ``roles_file`` replacing its own.

    Raises
    ------
    ConfigError
        Unreadable YAML, unknown keys, a role entry that is neither a pin nor a rule, a bad regex.
    """
    data = _read_yaml(DEFAULT_ROLES_FILE)
    if roles_file is not None:
        user = _read_yaml(Path(roles_file))
        unknown = sorted(set(user) - set(ROLES_KEYS))
        if unknown:
            raise ConfigError(f"unknown key(s) {', '.join(map(str, unknown))}", path=roles_file,
                              fix=f"use {', '.join(ROLES_KEYS)} (e.g. `T2: {{series_number: 5}}`)")
        data.update(user)
    src = roles_file or DEFAULT_ROLES_FILE
    rules = {role: _rule(role, data.get(role), src) for role in SERIES_ROLES}
    contrast, ignore, rois = (data.get(k) or {} for k in ("contrast", "ignore", "rois"))
    for name in ROI_KEYS:
        _patterns(rois.get(name, []), f"rois.{name}", src)
    return RolesConfig(
        rules=rules, contrast_tags=bool(contrast.get("use_tags", True)),
        contrast_patterns=_patterns(contrast.get("description", []), "contrast.description", src),
        ignore_image_type=tuple(str(v).upper() for v in ignore.get("image_type", [])),
        ignore_description=_patterns(ignore.get("description", []), "ignore.description", src),
        min_slices=int(ignore.get("min_slices", 3)),
        modalities=tuple(str(v).upper() for v in ignore.get("modalities", ["MR"])),
        rois={k: tuple(rois.get(k, [])) for k in ROI_KEYS})


def _read_yaml(path: Path) -> dict:
    return read_yaml_mapping(path, what="roles file",
                             example="e.g. `T2: {series_number: 5}`; see configs/dicom_roles.yaml")


def _rule(role: str, entry, src: Path) -> RoleRule:
    hint = f"write `{role}: {{series_number: 5}}` or `{role}: {{match: ['(?i)t2'], contrast: any}}`"
    if not isinstance(entry, dict):
        raise ConfigError(f"role {role} must be a mapping, got {entry!r}", path=src, fix=hint)
    if "series_number" in entry or "series_uid" in entry:
        extra = set(entry) - {"series_number", "series_uid"}
        try:
            number = None if entry.get("series_number") is None else int(entry["series_number"])
        except (TypeError, ValueError):
            number, extra = None, extra | {"series_number"}
        if extra:
            raise ConfigError(f"role {role}: bad pin {entry!r}", path=src, fix=hint)
        uid = entry.get("series_uid")
        return RoleRule(series_number=number, series_uid=None if uid is None else str(uid))
    if set(entry) - {"match", "exclude", "contrast"} or not entry.get("match"):
        raise ConfigError(f"role {role}: expected match/exclude/contrast or a pin, got {entry!r}",
                          path=src, fix=hint)
    contrast = str(entry.get("contrast", "any")).lower()
    if contrast not in ("true", "false", "any"):
        raise ConfigError(f"role {role}: contrast must be true, false or any", path=src, fix=hint)
    return RoleRule(_patterns(entry["match"], f"{role}.match", src),
                    _patterns(entry.get("exclude", []), f"{role}.exclude", src), contrast)


def _patterns(values, where: str, src: Path) -> tuple[str, ...]:
    values = [values] if isinstance(values, str) else list(values or [])
    for p in values:
        try:
            re.compile(str(p))
        except re.error as exc:
            raise ConfigError(f"{where}: bad regular expression {p!r} ({exc})", path=src,
                              fix="fix the pattern (Python re syntax)") from None
    return tuple(str(p) for p in values)


# ----------------------------------------------------------------------------- discovery

def is_study_folder(patient_dir: Path) -> bool:
    """True when ``patient_dir`` holds DICOM files (any depth) and no named T1/CE-T1/T2 entry."""
    patient_dir = Path(patient_dir)
    if not patient_dir.is_dir():
        return False
    if any(role_of(entry) in SERIES_ROLES for entry in patient_dir.iterdir()):
        return False
    return any(p.is_file() and read_header(p) is not None for p in patient_dir.rglob("*"))


def discover_series(patient_dir: Path, *, roles_file: Path | None = None,
                    roles: RolesConfig | None = None) -> list[SeriesInfo]:
    """Every image series under ``patient_dir`` (any depth), sorted by SeriesNumber, with roles.

    Two series may carry the same role here (their ``reason`` says AMBIGUOUS); use
    :func:`select_roles` to get one series per role or an error that says how to choose.
    """
    roles = roles or load_roles(roles_file)
    return _discover(scan_folder(Path(patient_dir), recursive=True), roles)


def _discover(headers: Sequence[tuple[Path, pydicom.Dataset]],
              roles: RolesConfig) -> list[SeriesInfo]:
    groups: dict[str, list[tuple[Path, pydicom.Dataset]]] = {}
    for path, ds in headers:
        if is_image(ds):
            groups.setdefault(str(ds.SeriesInstanceUID), []).append((path, ds))
    infos = []
    for uid, members in groups.items():
        info, tags = _summarise(uid, members)
        role, reason = classify(info, tags, roles)
        infos.append(dataclasses.replace(info, role=role, reason=reason))
    infos.sort(key=lambda i: (i.series_number is None, i.series_number or 0, i.series_uid))
    return _mark_ambiguous(infos)


def _summarise(uid: str, members: list[tuple[Path, pydicom.Dataset]]) -> tuple[SeriesInfo, _Tags]:
    ds = members[0][1]
    number = ds.get("SeriesNumber")
    try:
        frames = [f for p, d in members for f in frames_of(d, p)]
    except ValueError:
        frames = []
    if frames:
        f0 = frames[0]
        along = np.sort([np.dot(f.position, slice_normal(f0.orientation)) for f in frames])
        step = float(np.median(np.diff(along))) if len(frames) > 1 \
            else float(ds.get("SliceThickness", 0) or 0)
        orientation = orientation_name(f0.orientation)
        spacing = (f0.pixel_spacing[1], f0.pixel_spacing[0], step)
    else:
        orientation, spacing = "-", (0.0, 0.0, 0.0)
    n = len(frames) or sum(int(d.get("NumberOfFrames", 1) or 1) for _, d in members)
    agent = bool(str(ds.get("ContrastBolusAgent", "") or "").strip()) \
        or len(ds.get("ContrastBolusAgentSequence", []) or []) > 0
    info = SeriesInfo(uid, None if number in (None, "") else int(number),
                      str(ds.get("Modality", "") or "?"),
                      _printable(ds.get("SeriesDescription", "")),
                      orientation, (int(ds.Columns), int(ds.Rows)),
                      tuple(float(v) for v in spacing), n, tuple(sorted(p for p, _ in members)))
    tags = _Tags(_printable(ds.get("ProtocolName", "")),
                 tuple(str(v).upper() for v in (ds.get("ImageType") or [])), agent)
    return info, tags


def _printable(value) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in str(value or "")).strip()


def orientation_name(orientation: Sequence[float], *, tolerance_deg: float = 1.0) -> str:
    """``axial``/``sagittal``/``coronal`` from ImageOrientationPatient, or ``oblique <plane> A deg``
    (A: angle in degrees between the slice normal and the nearest scanner axis).

    >>> orientation_name([1, 0, 0, 0, 1, 0]), orientation_name([0, 1, 0, 0, 0, -1])
    ('axial', 'sagittal')
    """
    n = np.abs(slice_normal(orientation))
    axis = int(np.argmax(n))
    plane = ("sagittal", "coronal", "axial")[axis]
    angle = float(np.degrees(np.arccos(np.clip(n[axis], -1.0, 1.0))))
    return plane if angle < tolerance_deg else f"oblique {plane} {angle:.1f} deg"


def classify(info: SeriesInfo, tags: _Tags, roles: RolesConfig) -> tuple[str | None, str]:
    """(role or None, reason) of one series under ``roles`` (ambiguity across series aside).

    Order: no plane geometry → ignored; a pin (series_uid, else series_number) → that role, even
    for a series the ignore rules would drop; other modality, localizer (ImageType, description),
    too few slices → ignored; else the role rules on SeriesDescription, and only when none
    matches there on ProtocolName. Contrast: the agent tags or a contrast pattern in either name.
    """
    texts = [info.description, tags.protocol]
    if info.orientation == "-":
        return None, "no plane geometry"
    for role, rule in roles.rules.items():
        if rule.series_uid is not None and rule.series_uid == info.series_uid:
            return role, "pinned (series_uid)"
        if rule.series_uid is None and rule.series_number is not None \
                and rule.series_number == info.series_number:
            return role, f"pinned (series_number {info.series_number})"
    if info.modality.upper() not in roles.modalities:
        return None, f"modality {info.modality}"
    if set(tags.image_type) & set(roles.ignore_image_type):
        return None, "localizer (ImageType)"
    if _search(roles.ignore_description, texts):
        return None, "localizer (description)"
    if info.n_slices < roles.min_slices:
        return None, f"{info.n_slices} slice(s) < {roles.min_slices}"
    by_tag = roles.contrast_tags and tags.contrast_agent
    by_text = _search(roles.contrast_patterns, texts)
    enhanced = by_tag or by_text
    matched, source = [], "description"
    for text, source in ((info.description, "description"), (tags.protocol, "protocol name")):
        matched = [role for role, rule in roles.rules.items() if not rule.pinned
                   and _search(rule.match, [text]) and not _search(rule.exclude, [text])
                   and (rule.contrast == "any" or (rule.contrast == "true") == enhanced)]
        if matched:
            break
    if not matched:
        return None, "no role pattern matched"
    if len(matched) > 1:
        return None, f"matches {' and '.join(matched)} patterns"
    why = source
    if roles.rules[matched[0]].contrast != "any":
        why += (", contrast agent tag" if by_tag else ", contrast in name" if by_text
                else ", no contrast")
    return matched[0], f"matches {matched[0]} ({why})"


def _search(patterns: Sequence[str], texts: Sequence[str]) -> bool:
    return any(re.search(p, t) for p in patterns for t in texts if t)


def _mark_ambiguous(infos: list[SeriesInfo]) -> list[SeriesInfo]:
    out = []
    for info in infos:
        others = [o for o in infos if o.role is not None and o.role == info.role and o is not info]
        if others:
            nums = ", ".join(_label(o) for o in others)
            reason = f"AMBIGUOUS: {info.role} also claimed by {nums}"
            info = dataclasses.replace(info, reason=reason)
        out.append(info)
    return out


def _label(info: SeriesInfo) -> str:
    return f"#{info.series_number}" if info.series_number is not None else info.series_uid


def format_series_table(infos: Sequence[SeriesInfo]) -> str:
    """A plain-text table of series: number, modality, description, orientation, matrix,
    spacing (mm), slices, role and the reason for it. No patient identifiers."""
    head = ("#", "modality", "description", "orientation", "matrix", "spacing (mm)", "slices",
            "role", "reason")
    rows = [head] + [(str(i.series_number if i.series_number is not None else "-"), i.modality,
                      i.description[:40], i.orientation, f"{i.matrix[0]}x{i.matrix[1]}",
                      " x ".join(f"{s:.3g}" for s in i.spacing_mm), str(i.n_slices),
                      i.role or "-", i.reason) for i in infos]
    widths = [max(len(r[c]) for r in rows) for c in range(len(head))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines[:1] + ["  ".join("-" * w for w in widths)] + lines[1:])


def select_roles(infos: Sequence[SeriesInfo], roles: RolesConfig, *, patient: str | None = None,
                 patient_dir: Path | None = None) -> dict[str, SeriesInfo]:
    """Exactly one series per role (T1, CE-T1, T2).

    Raises
    ------
    InputError
        Two series claim one role, a role has no series, or a pin names no series; the message
        shows the roles-YAML line that settles it.
    """
    chosen = {}
    for role in SERIES_ROLES:
        claims = [i for i in infos if i.role == role]
        rule = roles.rules[role]
        if len(claims) > 1:
            listed = ", ".join(f"{_label(i)} {i.description!r}" for i in claims)
            pick = claims[0]
            numbers = [i.series_number for i in claims]
            pin = (f"series_number: {pick.series_number}" if numbers.count(pick.series_number) == 1
                   and pick.series_number is not None else f"series_uid: '{pick.series_uid}'")
            raise InputError(f"{len(claims)} series match the {role} role ({listed})",
                             patient=patient, path=patient_dir,
                             fix=f"add `{role}: {{{pin}}}` (or the one you mean) to a roles YAML "
                                 "and pass --roles FILE")
        if not claims:
            if rule.pinned:
                what = (f"series_uid {rule.series_uid}" if rule.series_uid is not None
                        else f"series_number {rule.series_number}")
                raise InputError(f"the {role} role is pinned to {what}, which is not an image "
                                 "series with plane geometry in this folder", patient=patient,
                                 path=patient_dir, fix="check the number with 'mrparotid inspect "
                                 "PATIENT_DIR' and fix the roles YAML")
            usable = [i for i in infos if not i.reason.startswith(("localizer", "modality"))]
            listed = ", ".join(f"{_label(i)} {i.description!r}" for i in usable[:8]) or "none"
            raise InputError(f"no series matches the {role} role (series: {listed})",
                             patient=patient, path=patient_dir,
                             fix=f"add `{role}: {{series_number: N}}` (N from 'mrparotid inspect "
                                 "PATIENT_DIR') to a roles YAML and pass --roles FILE")
        chosen[role] = claims[0]
    return chosen


# ----------------------------------------------------------------------------- loading

def load_study(patient_dir: Path, patient_id: str, *, roles_file: Path | None = None,
               require_tumour: bool = False) -> dict[str, sitk.Image]:
    """Read a study folder: the three series and the masks from its RTSTRUCT.

    Returns
    -------
    dict
        ``T1``, ``CE-T1``, ``T2`` (float32, LPS mm geometry), ``gland`` (uint8, 1 right / 2 left,
        or 1 when the ROI has no side) and, when contoured, ``tumour`` (uint8 0/1); each mask on
        the grid of the series its RTSTRUCT references.

    Raises
    ------
    InputError
        No DICOM series, ambiguous or missing roles, no gland contours, (``require_tumour``) no
        tumour contours, or unreadable series/contours. The message names patient and folder.
    """
    patient_dir = Path(patient_dir)
    where = {"patient": patient_id, "path": patient_dir}
    if not patient_dir.is_dir():
        raise InputError("patient folder not found", **where,
                         fix="check patient_dir in the manifest (relative to the manifest file)")
    roles = load_roles(roles_file)
    headers = scan_folder(patient_dir, recursive=True)
    if not any(is_image(ds) for _, ds in headers):
        raise InputError("no DICOM image files found (at any depth)", **where,
                         fix="put the study's DICOM export in the folder, "
                             "or name T1/CE-T1/T2 files")
    infos = _discover(headers, roles)
    chosen = select_roles(infos, roles, patient=patient_id, patient_dir=patient_dir)
    reader = _SeriesReader(headers, infos, patient_id, patient_dir)
    images: dict[str, sitk.Image] = {role: reader.image(i.series_uid) for role, i in chosen.items()}
    masks = _rtstruct_masks(headers, infos, chosen, roles, reader, patient_id)
    for role, image in _named_masks(patient_dir, patient_id).items():
        if role in masks:
            raise InputError(f"{role} given twice (RTSTRUCT and a {role} file)", **where,
                             fix="keep one of them")
        masks[role] = image
    if "gland" not in masks:
        names = sorted({n for _, ds in headers if is_rtstruct(ds) for n in _roi_names(ds)})
        found = f" (RTSTRUCT ROIs: {', '.join(names)})" if names else " (no RTSTRUCT in the folder)"
        raise InputError(f"no parotid gland contours found{found}", **where,
                         fix="export an RTSTRUCT with ROIs named like Parotid_R/Parotid_L, add "
                             "`rois:` patterns to a roles YAML (--roles FILE), "
                             "or add parotid.nii.gz")
    if require_tumour and "tumour" not in masks:
        raise InputError("no tumour contours found", **where,
                         fix="contour the tumour (ROI named GTV*/Tumor*/Tumour*/Lesion*) or add "
                             "tumour.nii.gz")
    return {**images, **masks}


class _SeriesReader:
    """Reads series of one folder by SeriesInstanceUID, once each."""

    def __init__(self, headers, infos: Sequence[SeriesInfo], patient: str, patient_dir: Path):
        self.header = dict(headers)
        self.infos = {i.series_uid: i for i in infos}
        self.patient, self.patient_dir = patient, patient_dir
        self.cache: dict[str, sitk.Image] = {}

    def image(self, uid: str) -> sitk.Image:
        if uid not in self.cache:
            files = self.infos[uid].files
            folder = Path(os.path.commonpath([str(f.parent) for f in files]))
            self.cache[uid] = read_series_headers([(f, self.header[f]) for f in files],
                                                  patient=self.patient, where=folder)
        return self.cache[uid]

    def sop_uids(self, uid: str) -> set[str]:
        return {str(self.header[f].get("SOPInstanceUID", "")) for f in self.infos[uid].files}

    def frame_of_reference(self, uid: str) -> str:
        return str(self.header[self.infos[uid].files[0]].get("FrameOfReferenceUID", ""))


def _rtstruct_masks(headers, infos, chosen, roles: RolesConfig, reader: _SeriesReader,
                    patient: str) -> dict[str, sitk.Image]:
    from mrparotid.rtstruct import (frame_of_reference_uids, mask_image, masks_from_rtstruct,
                                    referenced_series_uids, referenced_sop_uids)

    masks: dict[str, sitk.Image] = {}
    for path, ds in headers:
        if not is_rtstruct(ds):
            continue
        candidates = [u for u in referenced_series_uids(ds) if u in reader.infos]
        if not candidates:
            sops = referenced_sop_uids(ds)
            candidates = [i.series_uid for i in infos if sops & reader.sop_uids(i.series_uid)]
        if not candidates:  # same frame of reference: role series first
            fors = frame_of_reference_uids(ds)
            order = [i.series_uid for i in chosen.values()] + [i.series_uid for i in infos]
            candidates = [u for u in dict.fromkeys(order) if reader.frame_of_reference(u) in fors
                          and reader.infos[u].orientation != "-"
                          and reader.infos[u].n_slices >= roles.min_slices]
        if not candidates:
            raise InputError("the RTSTRUCT references no image series in this folder",
                             patient=patient, path=path,
                             fix="export the series the contours were drawn on "
                                 "into the same folder")
        first_error = None
        for uid in candidates:
            reference = reader.image(uid)
            try:
                found = masks_from_rtstruct(ds, reference, roles.rois, patient=patient, path=path)
                break
            except InputError as exc:
                first_error = first_error or exc
        else:
            raise first_error
        for role, arr in found.items():
            if role in masks:
                raise InputError(f"two RTSTRUCTs hold {role} contours", patient=patient, path=path,
                                 fix="keep one structure set per patient in the folder")
            masks[role] = mask_image(arr, reference)
    return masks


def _roi_names(ds: pydicom.Dataset) -> list[str]:
    return [_printable(r.get("ROIName", "")) for r in ds.get("StructureSetROISequence", [])]


def _named_masks(patient_dir: Path, patient: str) -> dict[str, sitk.Image]:
    """gland/tumour mask files named as in :mod:`mrparotid.io` at the top of the folder."""
    out = {}
    for entry in sorted(patient_dir.iterdir()):
        role = role_of(entry)
        if role in MASK_ROLES and entry.is_file():
            image = read_image(entry, patient=patient)
            arr = np.rint(sitk.GetArrayFromImage(image)).clip(0, 255).astype(np.uint8)
            out[role] = sitk.GetImageFromArray(arr)
            out[role].CopyInformation(image)
    return out
