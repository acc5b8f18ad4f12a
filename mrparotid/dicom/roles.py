"""Roles YAML → :class:`RolesConfig`; one discovered series → its role or None.

The roles are those of :data:`mrparotid.constants.SERIES`: T1, CE-T1, T2, T2FS (fat-suppressed
T2), DWI (diffusion-weighted), ADC (apparent diffusion coefficient map), DCE (dynamic contrast).
The rules come from ``configs/dicom_roles.yaml``, the top-level keys of a ``--roles FILE``
replacing its own: per role a pin (SeriesNumber/SeriesInstanceUID) or SeriesDescription/
ProtocolName patterns with a contrast condition; ``contrast`` (use the agent tags, name
patterns); ``ignore`` (localizers by ImageType or description, diffusion maps that are no role
(``maps``: exponential ADC, FA), too few slices, other modalities); ``rois`` (RTSTRUCT ROI-name
patterns, read by :mod:`mrparotid.dicom.rtstruct`). The YAML is validated here, so a bad key, pin
or regex fails at once. :func:`classify` applies the rules to one
:class:`~mrparotid.dicom.types.SeriesInfo` and its header tags, headers first for the diffusion
and dynamic roles (b-values, ImageType ADC/TRACEW, temporal positions: see :func:`classify`);
two series claiming one role are settled in :mod:`mrparotid.dicom.discovery`.
:func:`role_of_name` applies the same name rules to a file name, read as a SeriesDescription
(``t2_tse_ax`` → T2, ``t1_vibe_fs_tra_post`` → CE-T1), for the named layout of
:mod:`mrparotid.io.files`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mrparotid.config import CONFIG_DIR, read_yaml_mapping
from mrparotid.constants import SERIES as SERIES_ROLES
from mrparotid.errors import ConfigError
from mrparotid.dicom.bvalues import DESCRIPTION_SOURCE, format_b_values
from mrparotid.dicom.types import SeriesInfo, SeriesTags

DEFAULT_ROLES_FILE = CONFIG_DIR / "dicom_roles.yaml"
ROLES_KEYS = SERIES_ROLES + ("contrast", "ignore", "rois")
ROI_KEYS = ("tumour", "gland_right", "gland_left", "gland")


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
    map_image_type: tuple[str, ...]
    map_description: tuple[str, ...]
    min_slices: int
    modalities: tuple[str, ...]
    rois: dict[str, tuple[str, ...]]


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
    maps = ignore.get("maps") or {}
    if not isinstance(maps, dict) or set(maps) - {"image_type", "description"}:
        raise ConfigError(f"ignore.maps must map image_type/description to lists, got {maps!r}",
                          path=src, fix="e.g. `maps: {image_type: [EADC, FA], description: []}`")
    return RolesConfig(
        rules=rules, contrast_tags=bool(contrast.get("use_tags", True)),
        contrast_patterns=_patterns(contrast.get("description", []), "contrast.description", src),
        ignore_image_type=tuple(str(v).upper() for v in ignore.get("image_type", [])),
        ignore_description=_patterns(ignore.get("description", []), "ignore.description", src),
        map_image_type=tuple(str(v).upper() for v in maps.get("image_type", [])),
        map_description=_patterns(maps.get("description", []), "ignore.maps.description", src),
        min_slices=int(ignore.get("min_slices", 3)),
        modalities=tuple(str(v).upper() for v in ignore.get("modalities", ["MR"])),
        rois={k: tuple(rois.get(k, [])) for k in ROI_KEYS})


@functools.lru_cache(maxsize=1)
def default_roles() -> RolesConfig:
    """The rules of ``configs/dicom_roles.yaml`` (read once)."""
    return load_roles(None)


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


# ----------------------------------------------------------------------------- classification

def classify(info: SeriesInfo, tags: SeriesTags, roles: RolesConfig) -> tuple[str | None, str]:
    """(role or None, reason) of one series under ``roles`` (ambiguity across series aside).

    Order: no plane geometry → ignored; a pin (series_uid, else series_number) → that role, even
    for a series the ignore rules would drop; other modality, localizer (ImageType, description),
    too few slices, a diffusion map (``ignore.maps``: exponential ADC, FA) → ignored; ImageType
    ADC → ADC (never DWI); a b-value > 0 in the headers (:mod:`mrparotid.dicom.bvalues`) or
    ImageType TRACEW/TRACE/DIFFUSION → DWI; else the role rules on SeriesDescription, and only
    when none matches there on ProtocolName; a series of several temporal positions that the
    rules leave without a role or call T1/CE-T1 → DCE. Contrast: the agent tags or a contrast
    pattern in either name. A pinned role is never given by headers or patterns.
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
    by_headers = _header_role(tags, texts, roles)
    if by_headers is not None:
        return by_headers
    by_tag = roles.contrast_tags and tags.contrast_agent
    by_text = _search(roles.contrast_patterns, texts)
    enhanced = by_tag or by_text
    matched, source = [], "description"
    for text, source in ((info.description, "description"), (tags.protocol, "protocol name")):
        matched = matching_roles(text, enhanced, roles)
        if matched:
            break
    if tags.temporal_positions > 1 and set(matched) <= {"T1", "CE-T1"} \
            and not roles.rules["DCE"].pinned:
        return "DCE", f"DCE: {tags.temporal_positions} temporal positions (dynamic phases)"
    if not matched:
        return None, "no role pattern matched"
    if len(matched) > 1:
        return None, f"matches {' and '.join(matched)} patterns"
    why = source
    if roles.rules[matched[0]].contrast != "any":
        why += (", contrast agent tag" if by_tag else ", contrast in name" if by_text
                else ", no contrast")
    reason = f"matches {matched[0]} ({why})"
    if matched[0] == "DWI":
        reason += (f", b-values {format_b_values(tags.b_values)} s/mm² from {tags.b_source}"
                   if tags.b_values else ", no b-value in its headers")
    return matched[0], reason


def _header_role(tags: SeriesTags, texts: list[str], roles: RolesConfig) -> tuple[str | None, str] | None:
    """The role (or None: ignored) the headers give a diffusion series, None when they give none."""
    maps = [t for t in tags.image_type if t in roles.map_image_type]
    if maps:
        return None, f"diffusion map (ImageType {maps[0]}): not used"
    if _search(roles.map_description, texts):
        return None, "diffusion map (description): not used"
    if "ADC" in tags.image_type:
        return ("ADC", "ADC: ImageType ADC") if not roles.rules["ADC"].pinned \
            else (None, "ADC (ImageType ADC); the ADC role is pinned to another series")
    if roles.rules["DWI"].pinned or any("ADC" in matching_roles(t, False, roles) for t in texts):
        return None          # an ADC map named so may carry the b-value it was computed from
    b_text = (f"b-values {format_b_values(tags.b_values)} s/mm² from {tags.b_source}"
              if tags.b_values else "no b-value in its headers")
    from_headers = tags.b_values and tags.b_source != DESCRIPTION_SOURCE
    if from_headers and max(tags.b_values) > 0:
        return "DWI", f"DWI: {b_text}"
    trace = [t for t in tags.image_type if t in ("TRACEW", "TRACE", "DIFFUSION")]
    if trace:
        return "DWI", f"DWI: ImageType {trace[0]}, {b_text}"
    return None


def matching_roles(text: str, enhanced: bool, roles: RolesConfig) -> list[str]:
    """The roles whose (unpinned) rule matches ``text`` (a description, protocol or file name)
    for a series that is (``enhanced``) or is not contrast-enhanced."""
    return [role for role, rule in roles.rules.items() if not rule.pinned
            and _search(rule.match, [text]) and not _search(rule.exclude, [text])
            and (rule.contrast == "any" or (rule.contrast == "true") == enhanced)]


def role_of_name(name: str, roles: RolesConfig | None = None) -> str | None:
    """The role (T1, CE-T1, T2, T2FS, DWI, ADC, DCE) the role rules give a name read as a SeriesDescription (e.g. a
    file name without suffix: ``t2_tse_ax`` → T2, ``T1_FS_GD`` → CE-T1, contrast from the name's
    contrast patterns); None for a localizer name, no match, or more than one role.
    ``roles``: default ``configs/dicom_roles.yaml``."""
    roles = roles or default_roles()
    if not name or _search(roles.ignore_description + roles.map_description, [name]):
        return None
    matched = matching_roles(name, _search(roles.contrast_patterns, [name]), roles)
    return matched[0] if len(matched) == 1 else None


def _search(patterns: Sequence[str], texts: Sequence[str]) -> bool:
    return any(re.search(p, t) for p in patterns for t in texts if t)
