"""The montage: which slices are decisive, in what order, what each row and the title say."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mrparotid.constants import CLASSES
from mrparotid.report.montage import (MAX_ROWS, decisive_class, decisive_slices, montage_figure,
                                      montage_png)

M, PA, W, N = (CLASSES.index(c) for c in ("malignant", "pleomorphic_adenoma", "warthin", "no_tumour"))


def probs_of(classes, p=0.7):
    out = np.full((len(classes), 4), (1 - p) / 3)
    out[np.arange(len(classes)), classes] = p
    return out


@pytest.mark.parametrize("classes,z,diagnosis,want", [
    ([M, N, M, M, PA], [9, 1, 3, 6, 0], "malignant", [2, 3, 0]),               # malignant, by z
    ([M, PA, PA, W, N], [0, 5, 2, 1, 3], "pleomorphic_adenoma", [2, 1]),       # the benign winner
    ([N, N, W], [2, 1, 0], "no_tumour_found", [1, 0]),                          # majority class
    ([], [], "no_tumour_found", []),
])
def test_decisive_slices(classes, z, diagnosis, want):
    got = decisive_slices(probs_of(classes).reshape(-1, 4), np.array(z, float), diagnosis)
    assert got.tolist() == want


def test_decisive_slices_keep_the_most_probable_when_there_are_too_many():
    n = MAX_ROWS + 5
    probs = probs_of([M] * n)
    probs[:, M] = np.linspace(0.5, 0.9, n)
    z = -np.arange(n, dtype=float)                           # z falls as the probability rises
    got = decisive_slices(probs, z, "malignant")
    assert sorted(got.tolist()) == list(range(5, n)) and np.all(np.diff(z[got]) > 0)
    assert decisive_class(probs_of([N, W, W]), "no_tumour_found") == "warthin"


def _texts(fig) -> str:
    found = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        found += [t.get_text() for t in ax.texts] + [ax.get_title(loc="left"), ax.get_xlabel()]
    if fig._suptitle is not None:
        found.append(fig._suptitle.get_text())
    return "\n".join(found)


def test_rows_are_labelled_and_the_title_says_synthetic(explained):
    ev = explained.evidence
    fig = montage_figure(ev.slices, ev.probs, explained.cams, diagnosis=ev.decision.diagnosis,
                         malignant_min_slices=2, title="patient P001", synthetic=True)
    text = _texts(fig)
    assert "SYNTHETIC" in text and "patient P001" in text and "rule, > 2 malignant" in text
    rows = decisive_slices(ev.probs, ev.slices.z_mm, ev.decision.diagnosis)
    for i in rows:
        assert (f"side {ev.slices.sides[i]}, slice {ev.slices.slice_index[i]}\n"
                f"z = {ev.slices.z_mm[i]:.1f} mm") in text
    assert "Grad-CAM" in text and "T2" in text
    plain = montage_figure(ev.slices, ev.probs, None, diagnosis=ev.decision.diagnosis,
                           malignant_min_slices=2, title="patient P001", synthetic=False)
    assert "SYNTHETIC" not in _texts(plain) and "Grad-CAM" not in _texts(plain)


def test_png_grows_with_rows_and_is_none_without_slices(explained):
    ev = explained.evidence
    png = montage_png(ev.slices, ev.probs, explained.cams, diagnosis="warthin",
                      malignant_min_slices=2, title="t", synthetic=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    height = int.from_bytes(png[20:24], "big")
    few = np.arange(2)
    some = replace(ev.slices, crops=ev.slices.crops[few], labels=ev.slices.labels[few],
                   sides=ev.slices.sides[few], slice_index=ev.slices.slice_index[few],
                   z_mm=ev.slices.z_mm[few])
    small = montage_png(some, probs_of([W, W]), explained.cams[few], diagnosis="warthin",
                        malignant_min_slices=2, title="t", synthetic=True)
    assert int.from_bytes(small[20:24], "big") < height
    none = replace(ev.slices, crops=ev.slices.crops[:0], labels=ev.slices.labels[:0],
                   sides=ev.slices.sides[:0], slice_index=ev.slices.slice_index[:0],
                   z_mm=ev.slices.z_mm[:0])
    assert montage_png(none, ev.probs[:0], explained.cams[:0], diagnosis="no_tumour_found",
                       malignant_min_slices=2, title="t", synthetic=True) is None


def test_a_missing_series_panel_says_so(explained):
    ev = explained.evidence
    fig = montage_figure(ev.slices, ev.probs, explained.cams, diagnosis=ev.decision.diagnosis,
                         malignant_min_slices=2, title="t", synthetic=False, missing=("CE-T1",))
    assert "CE-T1\nnot acquired" in _texts(fig) and "T2\nnot acquired" not in _texts(fig)
