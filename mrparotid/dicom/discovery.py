"""DICOM headers of a study folder → one :class:`SeriesInfo` per image series, with its role.

Image files (any depth) are grouped by SeriesInstanceUID; each group is summarised (number,
modality, description, orientation, matrix, spacing, slice count, files, diffusion b-values,
temporal positions) and given a role by :func:`mrparotid.dicom.roles.classify`. Two series
claiming one role are marked AMBIGUOUS, except DWI series of different b-values (one series per
b-value: together they are the DWI); :func:`select_series` then takes the series of each role
(:func:`select_roles`: one per role) or raises an error that says how to choose.
:func:`format_series_table` prints the series for ``mrparotid inspect``; there an ADC series'
reason also gives the unit its pixel values are in (:func:`mrparotid.data.diffusion.adc_unit`).

No patient identifier from the headers is read into anything this module returns or prints:
series are named by number, description, geometry and role only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom

from mrparotid.constants import PAPER_SERIES, SERIES as SERIES_ROLES
from mrparotid.dicom.bvalues import format_b_values, frame_b_values, series_b_values
from mrparotid.dicom.geometry import slice_normal
from mrparotid.dicom.headers import frames_of, is_image, printable, scan_folder
from mrparotid.dicom.phases import phase_count
from mrparotid.errors import InputError, MissingSeriesError
from mrparotid.dicom.roles import RoleRule, RolesConfig, classify, load_roles
from mrparotid.dicom.types import SeriesInfo, SeriesTags


# ----------------------------------------------------------------------------- discovery

def discover_series(patient_dir: Path, *, roles_file: Path | None = None,
                    roles: RolesConfig | None = None) -> list[SeriesInfo]:
    """Every image series under ``patient_dir`` (any depth), sorted by SeriesNumber, with roles.

    Two series may carry the same role here (their ``reason`` says AMBIGUOUS); use
    :func:`select_roles` to get one series per role or an error that says how to choose.
    """
    roles = roles or load_roles(roles_file)
    infos = discover_headers(scan_folder(Path(patient_dir), recursive=True), roles)
    return [with_adc_unit(i) for i in infos]


def discover_headers(headers: Sequence[tuple[Path, pydicom.Dataset]],
                     roles: RolesConfig) -> list[SeriesInfo]:
    """Group already-read headers into image series and give each a role (see module doc);
    headers only (no pixel data)."""
    groups: dict[str, list[tuple[Path, pydicom.Dataset]]] = {}
    for path, ds in headers:
        if is_image(ds):
            groups.setdefault(str(ds.SeriesInstanceUID), []).append((path, ds))
    infos = []
    for uid, members in groups.items():
        info, tags = _summarise(uid, members)
        role, reason = classify(info, tags, roles)
        infos.append(dataclasses.replace(info, role=role, reason=reason,
                                         b_values=tags.b_values if role == "DWI" else ()))
    infos.sort(key=lambda i: (i.series_number is None, i.series_number or 0, i.series_uid))
    return _mark_ambiguous(infos)


def _summarise(uid: str, members: list[tuple[Path, pydicom.Dataset]]) -> tuple[SeriesInfo, SeriesTags]:
    ds = members[0][1]
    number = ds.get("SeriesNumber")
    try:
        frames = [f for p, d in members for f in frames_of(d, p)]
    except ValueError:
        frames = []
    if frames:
        f0 = frames[0]
        along = np.unique(np.round([np.dot(f.position, slice_normal(f0.orientation))
                                    for f in frames], 2))     # b-values, phases: one slice
        step = float(np.median(np.diff(along))) if len(along) > 1 \
            else float(ds.get("SliceThickness", 0) or 0)
        orientation = orientation_name(f0.orientation)
        spacing = (f0.pixel_spacing[1], f0.pixel_spacing[0], step)
    else:
        orientation, spacing = "-", (0.0, 0.0, 0.0)
    n = len(along) if frames else sum(int(d.get("NumberOfFrames", 1) or 1) for _, d in members)
    agent = bool(str(ds.get("ContrastBolusAgent", "") or "").strip()) \
        or len(ds.get("ContrastBolusAgentSequence", []) or []) > 0
    info = SeriesInfo(uid, None if number in (None, "") else int(number),
                      str(ds.get("Modality", "") or "?"),
                      printable(ds.get("SeriesDescription", "")),
                      orientation, (int(ds.Columns), int(ds.Rows)),
                      tuple(float(v) for v in spacing), n, tuple(sorted(p for p, _ in members)))
    b_values, b_source = series_b_values([b for _, d in members for b in frame_b_values(d)],
                                         info.description)
    tags = SeriesTags(printable(ds.get("ProtocolName", "")),
                      tuple(str(v).strip().upper() for v in (ds.get("ImageType") or [])), agent,
                      tuple(sorted({b for b in b_values if b is not None})), b_source,
                      phase_count(members))
    return info, tags


def with_adc_unit(info: SeriesInfo) -> SeriesInfo:
    """``info`` of an ADC series with the unit of its pixel values added to its reason (read
    from its pixels: :func:`mrparotid.data.diffusion.adc_unit`); other series unchanged."""
    if info.role != "ADC":
        return info
    import SimpleITK as sitk

    from mrparotid.data.diffusion import adc_unit
    from mrparotid.dicom.series import read_series_files

    try:
        image = read_series_files(info.files)
    except InputError as exc:
        return dataclasses.replace(info, reason=f"{info.reason}; pixels unreadable ({exc})")
    unit = adc_unit(sitk.GetArrayViewFromImage(image))
    return dataclasses.replace(info, reason=f"{info.reason}; ADC unit {unit}")


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


def _clash(a: SeriesInfo, b: SeriesInfo) -> bool:
    """Two series of one role that cannot both be used: any role but DWI; DWI series that share
    a b-value or lack b-values (DWI series of different b-values are one DWI)."""
    if a.role != "DWI":
        return True
    return not a.b_values or not b.b_values or bool(set(a.b_values) & set(b.b_values))


def _mark_ambiguous(infos: list[SeriesInfo]) -> list[SeriesInfo]:
    out = []
    for info in infos:
        others = [o for o in infos if o.role is not None and o.role == info.role and o is not info
                  and _clash(info, o)]
        if others:
            nums = ", ".join(_label(o, infos) for o in others)
            reason = f"AMBIGUOUS: {info.role} also claimed by {nums}"
            info = dataclasses.replace(info, reason=reason)
        out.append(info)
    return out


def _label(info: SeriesInfo, among: Sequence[SeriesInfo] = (), *, describe: bool = False) -> str:
    """``#5`` (the UID without a number); with ``describe`` or when another series of ``among``
    shares the number, ``#5 'T1 AX'``; plus the UID's last 8 characters when that is shared too."""
    label = f"#{info.series_number}" if info.series_number is not None else info.series_uid
    twins = [o for o in among if o is not info and o.series_number == info.series_number]
    if describe or twins:
        label += f" {info.description!r}"
    if info.series_number is not None and any(o.description == info.description for o in twins):
        label += f" (uid ...{info.series_uid[-8:]})"
    return label


def _pinned_series(rule: RoleRule, infos: Sequence[SeriesInfo]) -> SeriesInfo | None:
    """The series a role's pin names (UID first, else number), or None."""
    for info in infos:
        if (info.series_uid == rule.series_uid if rule.series_uid is not None
                else info.series_number == rule.series_number):
            return info
    return None


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
                 patient_dir: Path | None = None, required: Sequence[str] = PAPER_SERIES,
                 among: Sequence[str] = PAPER_SERIES) -> dict[str, SeriesInfo]:
    """One series per role: :func:`select_series` with the first of the DWI series (ascending
    b-values) where there are several, one per b-value."""
    chosen = select_series(infos, roles, patient=patient, patient_dir=patient_dir,
                           required=required, among=among)
    return {role: series[0] for role, series in chosen.items()}


def select_series(infos: Sequence[SeriesInfo], roles: RolesConfig, *, patient: str | None = None,
                  patient_dir: Path | None = None, required: Sequence[str] = PAPER_SERIES,
                  among: Sequence[str] = PAPER_SERIES) -> dict[str, tuple[SeriesInfo, ...]]:
    """The series of each role of ``among`` and ``required`` (roles of
    :data:`mrparotid.constants.SERIES`; other roles are not looked at, so two STIR series do
    not stop a study read for T1, CE-T1 and T2): exactly one, or for DWI one or more series of
    different b-values (ordered by their lowest b); a role outside ``required`` that no series
    matches (and that is not pinned) is left out.

    Raises
    ------
    InputError
        Two series claim one role (DWI: two series share a b-value), a required role has no
        series (:class:`~mrparotid.errors.MissingSeriesError`), or a pin names no series; the
        message shows the roles-YAML line that settles it.
    """
    chosen = {}
    for role in (r for r in SERIES_ROLES if r in among or r in required):
        claims = [i for i in infos if i.role == role]
        rule = roles.rules[role]
        if any(_clash(a, b) for n, a in enumerate(claims) for b in claims[n + 1:]):
            listed = ", ".join(_label(i, infos, describe=True)
                               + (f" (b {format_b_values(i.b_values)})" if i.b_values else "")
                               for i in claims)
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
                taken = _pinned_series(rule, infos)
                if taken is not None and taken.role not in (None, role):
                    raise InputError(f"the {role} role is pinned to {what}, which is pinned to the "
                                     f"{taken.role} role too", patient=patient, path=patient_dir,
                                     fix="pin each role to a different series in the roles YAML "
                                         "(numbers from 'mrparotid inspect PATIENT_DIR')")
                raise InputError(f"the {role} role is pinned to {what}, which is not an image "
                                 "series with plane geometry in this folder", patient=patient,
                                 path=patient_dir, fix="check the number with 'mrparotid inspect "
                                 "PATIENT_DIR' and fix the roles YAML")
            if role not in required:
                continue
            usable = [i for i in infos if not i.reason.startswith(("localizer", "modality"))]
            listed = ", ".join(_label(i, infos, describe=True) for i in usable[:8]) or "none"
            raise MissingSeriesError(f"no series matches the {role} role (series: {listed})",
                                     role=role, patient=patient, path=patient_dir,
                                     fix=f"add `{role}: {{series_number: N}}` (N from 'mrparotid "
                                         "inspect PATIENT_DIR') to a roles YAML and pass --roles FILE")
        chosen[role] = tuple(sorted(claims, key=lambda i: min(i.b_values, default=0.0)))
    return chosen
