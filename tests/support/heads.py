"""Hand-made studies for the side tests: a head outline on T1 anywhere in the field of view and
glands at chosen LPS x positions (identity direction: grid x grows towards patient Left).

    study = head_study(fov_x=(-160, 160), head_x=-60, glands=[-15])   # one gland, 45 mm left
    study = head_study(fov_x=(-80, -20), head_x=None, glands=[-46.5])  # body fills the FOV
"""

from __future__ import annotations

import numpy as np

from mrparotid.data.grid import Study

SPACING = (2.0, 2.0, 3.0)        # (x, y, z) mm
NY, NZ = 60, 8                   # 120 mm front to back, 8 slices
GLAND_HALF_WIDTH_MM = 9.0        # glands 18 mm wide in x
HEAD_HALF_WIDTH_MM = 70.0


def grid_x_mm(fov_x: tuple[float, float]) -> np.ndarray:
    """LPS x (mm) of each grid column of a field of view spanning ``fov_x`` (mm)."""
    n = int(round((fov_x[1] - fov_x[0]) / SPACING[0]))
    return fov_x[0] + SPACING[0] * np.arange(n)


def head_study(*, fov_x: tuple[float, float], head_x: float | None, glands: list[float],
               tumour_in: int | None = None) -> Study:
    """A study whose T1 shows a head (ellipse, 140 x 100 mm) centred at LPS x ``head_x`` on a
    dark background, or (``head_x=None``) tissue over the whole field of view; a gland box
    centred at each LPS x in ``glands`` (slices 2..5); a tumour inside gland ``tumour_in``."""
    x = grid_x_mm(fov_x)
    y = -60.0 + SPACING[1] * np.arange(NY)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    if head_x is None:
        plane = np.full(xx.shape, 300.0, np.float32)
    else:
        inside = ((xx - head_x) / HEAD_HALF_WIDTH_MM) ** 2 + (yy / 50.0) ** 2 <= 1
        plane = np.where(inside, 300.0, 4.0).astype(np.float32)
    t1 = np.repeat(plane[None], NZ, axis=0)
    gland = np.zeros(t1.shape, np.uint8)
    tumour = np.zeros(t1.shape, np.uint8)
    for n, gx in enumerate(glands):
        cols = np.abs(x - gx) <= GLAND_HALF_WIDTH_MM
        gland[2:6, 20:40, cols] = 1
        t1[2:6, 20:40, cols] = 500.0
        if tumour_in == n:
            tumour[3:5, 25:30, np.flatnonzero(cols)[2:5]] = 1
    return Study("P1", {"T1": t1}, gland, tumour, SPACING, (float(x[0]), -60.0, 0.0), np.eye(3))
