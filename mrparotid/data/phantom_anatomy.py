"""The SYNTHETIC phantom's anatomy: grids, the random draws of one patient, and the tissues they
make on any grid (for :mod:`mrparotid.data.phantom` and :mod:`mrparotid.data.phantom_diffusion`).

Each phantom is a head-and-neck-like slab (LPS mm, origin near the centre of the neck) with two
parotid glands and a tumour whose look differs by class across the series, with enough
per-patient spread that no single series decides alone:

- pleomorphic adenoma: lobulated, smooth; very bright on T2, moderate homogeneous enhancement;
- Warthin tumour: oval, cystic spots (T2 bright, not enhancing), strong solid enhancement;
- malignant: irregular, spiculated margin; heterogeneous enhancement and T2.

The anatomy is a function of the patient's draws and of physical position only, so every grid
(T1, T2, the coarse diffusion grid) shows the same glands and tumour. Arrays are (z, y, x).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import SimpleITK as sitk
from scipy.ndimage import map_coordinates

# tissue means (T1, CE-T1, T2), arbitrary units before per-patient gain
TISSUE = {
    "fat": (0.90, 0.85, 0.70), "muscle": (0.40, 0.48, 0.30), "gland": (0.72, 0.70, 0.55),
    "bone": (0.08, 0.08, 0.06),
    "pleomorphic_adenoma": (0.38, 0.58, 0.88), "warthin": (0.42, 0.72, 0.55),
    "malignant": (0.36, 0.62, 0.62), "cyst": (0.30, 0.32, 0.92),
}
#: Tissue classes of :meth:`Anatomy.classes`, by label value (0 = air outside the head).
TISSUE_CLASSES: tuple[str, ...] = ("air", "fat", "muscle", "bone", "gland", "tumour", "cyst")


@dataclass(frozen=True)
class Grid:
    """A series grid: size (x, y, z) voxels, spacing (mm), origin (LPS mm), direction (3x3)."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray

    def lps(self) -> np.ndarray:
        """(z, y, x, 3) LPS positions (mm) of all voxel centres."""
        nx, ny, nz = self.size
        k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
        ijk = np.stack([i, j, k], -1).astype(np.float32) * np.asarray(self.spacing, np.float32)
        return ijk @ self.direction.T.astype(np.float32) + np.asarray(self.origin, np.float32)

    def empty(self) -> sitk.Image:
        img = sitk.Image(list(self.size), sitk.sitkFloat32)
        img.SetSpacing(self.spacing)
        img.SetOrigin(self.origin)
        img.SetDirection(self.direction.ravel().tolist())
        return img

    def image(self, array: np.ndarray, dtype) -> sitk.Image:
        """A (z, y, x) array as an image of ``dtype`` on this grid."""
        img = sitk.GetImageFromArray(array.astype(dtype))
        img.SetSpacing(self.spacing)
        img.SetOrigin(self.origin)
        img.SetDirection(self.direction.ravel().tolist())
        return img

    def moved(self, shift_mm) -> Grid:
        """The same grid with its origin moved by ``shift_mm`` (LPS mm)."""
        origin = tuple(float(o) for o in np.asarray(self.origin) + np.asarray(shift_mm, float))
        return Grid(self.size, self.spacing, origin, self.direction)


def _rotation_x(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def centred_grid(size, spacing, *, shift=(0.0, 0.0, 0.0), tilt_deg: float = 0.0) -> Grid:
    """A grid centred on the LPS origin (plus ``shift`` mm), tilted about x by ``tilt_deg``."""
    direction = _rotation_x(tilt_deg)
    half = (np.asarray(size) - 1) * np.asarray(spacing) / 2
    origin = np.asarray(shift) - direction @ half
    return Grid(tuple(int(s) for s in size), tuple(float(s) for s in spacing), tuple(origin), direction)


class Field:
    """Smooth random field in physical space (values ~N(0,1)), sampled at any LPS points."""

    def __init__(self, rng: np.random.Generator, step_mm: float = 6.0, extent_mm: float = 200.0):
        from scipy.ndimage import gaussian_filter

        n = int(extent_mm / step_mm) + 1
        noise = gaussian_filter(rng.standard_normal((n, n, n)), 1.0)
        self.values = noise / (noise.std() + 1e-8)
        self.step, self.lo = step_mm, -extent_mm / 2

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        coords = ((pts - self.lo) / self.step).reshape(-1, 3).T
        return map_coordinates(self.values, coords, order=1, mode="nearest").reshape(pts.shape[:-1])


def ellipsoid(pts, centre, radii, *, rough=None, rough_amp=0.0) -> np.ndarray:
    """Boolean mask of the points inside an ellipsoid (mm), its radius modulated by ``rough``."""
    d = (pts - np.asarray(centre)) / np.asarray(radii)
    r = np.sqrt((d ** 2).sum(-1))
    if rough is not None and rough_amp:
        r = r / (1 + rough_amp * np.tanh(rough(pts)))
    return r <= 1.0


@dataclass(frozen=True)
class PhantomSpec:
    """Random draws that define one phantom patient (all lengths in mm)."""

    diagnosis: str
    tumour_side: str            # "L" or "R"
    bilateral: bool
    gland_radii: tuple
    tumour_centre: tuple
    tumour_radius: float
    gain: tuple                 # per-series scanner gain
    contrast_shift: tuple       # per-series tissue-contrast perturbation of the tumour
    seed: int


def draw_spec(rng: np.random.Generator, diagnosis: str) -> PhantomSpec:
    side = "L" if rng.random() < 0.5 else "R"
    sx = 1 if side == "L" else -1
    radii = (rng.uniform(10, 14), rng.uniform(16, 21), rng.uniform(15, 19))
    centre = (sx * (52 + rng.uniform(-4, 4)), 8 + rng.uniform(-6, 6), rng.uniform(-8, 8))
    return PhantomSpec(
        diagnosis=diagnosis, tumour_side=side,
        bilateral=diagnosis == "warthin" and rng.random() < 0.15,
        gland_radii=radii, tumour_centre=centre, tumour_radius=float(rng.uniform(9, 15)),
        gain=tuple(rng.uniform(0.6, 1.6, 3)), contrast_shift=tuple(rng.normal(0, 0.11, 3)),
        seed=int(rng.integers(2**31)))


class Anatomy:
    """One patient's tissues at the voxel centres ``pts`` (z, y, x, 3) of a grid (LPS mm).
    Masks are boolean (z, y, x); ``texture`` is a smooth N(0, 1) field."""

    def __init__(self, spec: PhantomSpec, pts: np.ndarray, rng: np.random.Generator):
        self.spec, self.pts = spec, pts
        self.texture, rough, self._cysts_field = Field(rng), Field(rng, step_mm=5.0), Field(rng, step_mm=3.0)
        x, y = pts[..., 0], pts[..., 1]
        self.head = (x / 72) ** 2 + (y / 88) ** 2 <= 1
        self.inner = (x / 64) ** 2 + (y / 80) ** 2 <= 1
        self.glands = {s: ellipsoid(pts, (sx * abs(spec.tumour_centre[0]), 10, 0), spec.gland_radii)
                       for s, sx in (("L", 1), ("R", -1))}
        amp = {"pleomorphic_adenoma": 0.12, "warthin": 0.05, "malignant": 0.35}[spec.diagnosis]
        tumour = ellipsoid(pts, spec.tumour_centre, (spec.tumour_radius,) * 3, rough=rough, rough_amp=amp)
        if spec.bilateral:
            c = spec.tumour_centre
            tumour |= ellipsoid(pts, (-c[0], c[1] + 3, -c[2]), (spec.tumour_radius * 0.8,) * 3)
        self.tumour = tumour

    @cached_property
    def rami(self) -> dict[str, np.ndarray]:
        """The mandibular rami (bone), by side."""
        return {s: ellipsoid(self.pts, (sx * 38, -8, 0), (5, 12, 60)) for s, sx in (("L", 1), ("R", -1))}

    @cached_property
    def cysts(self) -> np.ndarray:
        """Cystic spots inside a Warthin tumour (empty for the other diagnoses)."""
        if self.spec.diagnosis != "warthin":
            return np.zeros_like(self.tumour)
        return self.tumour & (self._cysts_field(self.pts) > 1.2)

    @cached_property
    def texture_values(self) -> np.ndarray:
        return self.texture(self.pts)

    def classes(self) -> np.ndarray:
        """(z, y, x) uint8 tissue labels, values index :data:`TISSUE_CLASSES`."""
        out = np.zeros(self.head.shape, np.uint8)
        out[self.head] = 1
        out[self.inner] = 2
        for s in ("L", "R"):
            out[self.rami[s]] = 3
            out[self.glands[s]] = 4
        out[self.tumour] = 5
        out[self.cysts] = 6
        return out


def render(spec: PhantomSpec, grid: Grid, series: int | None) -> np.ndarray:
    """Intensities of series ``series`` (0=T1, 1=CE-T1, 2=T2) or, with None, a label volume
    (0 background, 1 right gland, 2 left gland, 3 tumour) on ``grid``; array (z, y, x)."""
    rng = np.random.default_rng(spec.seed)
    anatomy = Anatomy(spec, grid.lps(), rng)
    glands, tumour, head = anatomy.glands, anatomy.tumour, anatomy.head
    if series is None:
        labels = np.zeros(tumour.shape, np.uint8)
        labels[glands["R"]] = 1
        labels[glands["L"]] = 2
        labels[tumour] = 3
        return labels
    tissue = np.zeros(tumour.shape, np.float32)
    tissue[head] = TISSUE["fat"][series]
    tissue[anatomy.inner] = TISSUE["muscle"][series]
    for s in ("L", "R"):
        tissue[anatomy.rami[s]] = TISSUE["bone"][series]
        tissue[glands[s]] = TISSUE["gland"][series]
    tvalue = TISSUE[spec.diagnosis][series] + spec.contrast_shift[series]
    tex = anatomy.texture_values
    if spec.diagnosis == "malignant":
        hetero = 0.12 if series else 0.05
        tissue[tumour] = tvalue + hetero * tex[tumour]
    else:
        tissue[tumour] = tvalue + 0.03 * tex[tumour]
    if spec.diagnosis == "warthin":
        tissue[anatomy.cysts] = TISSUE["cyst"][series] + spec.contrast_shift[series] / 2
    tissue = tissue + 0.04 * tex * head + rng.normal(0, 0.035, tissue.shape).astype(np.float32) * head
    return np.clip(tissue, 0, None) * spec.gain[series] * 1000.0
