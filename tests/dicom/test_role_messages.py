"""Role messages without DICOM files: a series pinned to two roles, series that share a number."""

from __future__ import annotations

import dataclasses

import pytest

from mrparotid.dicom.discovery import _mark_ambiguous, select_roles
from mrparotid.dicom.roles import classify, load_roles
from mrparotid.dicom.types import SeriesInfo, SeriesTags
from mrparotid.errors import InputError


def info(number, description, uid):
    return SeriesInfo(uid, number, "MR", description, "axial", (256, 256), (1.0, 1.0, 5.0), 24, ())


def test_a_series_pinned_to_two_roles_is_named_as_such(tmp_path):
    path = tmp_path / "roles.yaml"
    path.write_text("T1: {series_number: 5}\nT2: {series_number: 5}\n", encoding="utf-8")
    roles = load_roles(path)
    infos = [info(5, "t1_tse_tra", "1.2.5"), info(7, "t1_tse_tra_KM", "1.2.7")]
    infos = [dataclasses.replace(i, role=classify(i, SeriesTags("", (), False), roles)[0])
             for i in infos]
    with pytest.raises(InputError) as err:
        select_roles(infos, roles, patient="P1")
    text = str(err.value)
    assert "the T2 role is pinned to series_number 5, which is pinned to the T1 role too" in text
    assert "not an image series" not in text and "different series" in text


def test_series_sharing_a_number_are_told_apart():
    infos = [info(3, "T1 AX", "1.2.840.1.3"), info(5, "T1 AX", "1.2.840.1.11111111"),
             info(5, "T1 AX", "1.2.840.1.22222222"), info(5, "T1 COR", "1.2.840.1.5")]
    infos = [dataclasses.replace(i, role="T1") for i in infos]
    reason = _mark_ambiguous(infos)[0].reason
    assert "#5, #5" not in reason
    assert reason == ("AMBIGUOUS: T1 also claimed by #5 'T1 AX' (uid ...11111111), "
                      "#5 'T1 AX' (uid ...22222222), #5 'T1 COR'")
