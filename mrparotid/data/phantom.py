"""A SYNTHETIC phantom cohort in the documented patient-folder layout (for demos and tests).

Nothing here is patient data. Each phantom is a head-and-neck-like slab (LPS mm, origin near the
centre of the neck) with two parotid glands and a tumour whose look differs by class across the
series, with enough per-patient spread that no single series decides alone:

- pleomorphic adenoma: lobulated, smooth; very bright on T2, moderate homogeneous enhancement;
- Warthin tumour: oval, cystic spots (T2 bright, not enhancing), strong solid enhancement;
- malignant: irregular, spiculated margin; heterogeneous enhancement and T2.

The three series lie on different grids (spacing, origin, a slight oblique tilt of T2) and some
are written as DICOM folders; file names vary over the accepted aliases.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy.ndimage import map_coordinates

from mrparotid.constants import DIAGNOSES
from mrparotid.dicom.writer import write_dicom_series
from mrparotid.io.atomic import atomic_path, write_text
from mrparotid.io.manifest import PatientCase, write_manifest

SYNTHETIC_NOTE = "SYNTHETIC phantom cohort made by 'mrparotid phantom': not patient data, no clinical meaning"

# tissue means (T1, CE-T1, T2), arbitrary units before per-patient gain
TISSUE = {
    "fat": (0.90, 0.85, 0.70), "muscle": (0.40, 0.48, 0.30), "gland": (0.72, 0.70, 0.55),
    "bone": (0.08, 0.08, 0.06),
    "pleomorphic_adenoma": (0.38, 0.58, 0.88), "warthin": (0.42, 0.72, 0.55),
    "malignant": (0.36, 0.62, 0.62), "cyst": (0.30, 0.32, 0.92),
}


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


def _rotation_x(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def centred_grid(size, spacing, *, shift=(0.0, 0.0, 0.0), tilt_deg: float = 0.0) -> Grid:
    """A grid centred on the LPS origin (plus ``shift`` mm), tilted about x by ``tilt_deg``."""
    direction = _rotation_x(tilt_deg)
    half = (np.asarray(size) - 1) * np.asarray(spacing) / 2
    origin = np.asarray(shift) - direction @ half
    return Grid(tuple(int(s) for s in size), tuple(float(s) for s in spacing), tuple(origin), direction)


class _Field:
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


def _ellipsoid(pts, centre, radii, *, rough=None, rough_amp=0.0):
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


def render(spec: PhantomSpec, grid: Grid, series: int | None) -> np.ndarray:
    """Intensities of series ``series`` (0=T1, 1=CE-T1, 2=T2) or, with None, a label volume
    (0 background, 1 right gland, 2 left gland, 3 tumour) on ``grid``; array (z, y, x)."""
    rng = np.random.default_rng(spec.seed)
    texture, rough, cysts_field = _Field(rng), _Field(rng, step_mm=5.0), _Field(rng, step_mm=3.0)
    pts = grid.lps()
    x, y = pts[..., 0], pts[..., 1]
    head = (x / 72) ** 2 + (y / 88) ** 2 <= 1
    inner = (x / 64) ** 2 + (y / 80) ** 2 <= 1
    glands = {s: _ellipsoid(pts, (sx * abs(spec.tumour_centre[0]), 10, 0), spec.gland_radii)
              for s, sx in (("L", 1), ("R", -1))}
    amp = {"pleomorphic_adenoma": 0.12, "warthin": 0.05, "malignant": 0.35}[spec.diagnosis]
    tumour = _ellipsoid(pts, spec.tumour_centre, (spec.tumour_radius,) * 3, rough=rough, rough_amp=amp)
    if spec.bilateral:
        c = spec.tumour_centre
        tumour |= _ellipsoid(pts, (-c[0], c[1] + 3, -c[2]), (spec.tumour_radius * 0.8,) * 3)
    if series is None:
        labels = np.zeros(pts.shape[:3], np.uint8)
        labels[glands["R"]] = 1
        labels[glands["L"]] = 2
        labels[tumour] = 3
        return labels
    tissue = np.zeros(pts.shape[:3], np.float32)
    tissue[head] = TISSUE["fat"][series]
    tissue[inner] = TISSUE["muscle"][series]
    for s, sx in (("L", 1), ("R", -1)):
        ramus = _ellipsoid(pts, (sx * 38, -8, 0), (5, 12, 60))
        tissue[ramus] = TISSUE["bone"][series]
        tissue[glands[s]] = TISSUE["gland"][series]
    tvalue = TISSUE[spec.diagnosis][series] + spec.contrast_shift[series]
    tex = texture(pts)
    if spec.diagnosis == "malignant":
        hetero = 0.12 if series else 0.05
        tissue[tumour] = tvalue + hetero * tex[tumour]
    else:
        tissue[tumour] = tvalue + 0.03 * tex[tumour]
    if spec.diagnosis == "warthin":
        cysts = tumour & (cysts_field(pts) > 1.2)
        tissue[cysts] = TISSUE["cyst"][series] + spec.contrast_shift[series] / 2
    tissue = tissue + 0.04 * tex * head + rng.normal(0, 0.035, tissue.shape).astype(np.float32) * head
    return np.clip(tissue, 0, None) * spec.gain[series] * 1000.0


def _to_image(array: np.ndarray, grid: Grid, dtype) -> sitk.Image:
    img = sitk.GetImageFromArray(array.astype(dtype))
    img.SetSpacing(grid.spacing)
    img.SetOrigin(grid.origin)
    img.SetDirection(grid.direction.ravel().tolist())
    return img


SERIES_NAMES = [("T1", "T1W", "t1"), ("CE-T1", "T1C", "ce_t1", "T1+C"), ("T2", "t2w", "T2")]
SUFFIXES = [".nii.gz", ".nrrd", ".mha", ".nii"]


def write_patient(patient_dir: Path, spec: PhantomSpec, index: int) -> None:
    """Write one phantom patient folder (three series on different grids, masks)."""
    rng = np.random.default_rng(spec.seed + 1)
    patient_dir.mkdir(parents=True, exist_ok=True)
    shift = tuple(rng.uniform(-3, 3, 3))
    grids = [
        centred_grid((150, 170, 20), (1.0, 1.0, 4.0)),
        centred_grid((160, 180, 20), (0.95, 0.95, 4.0), shift=shift),
        centred_grid((130, 150, 17), (1.15, 1.15, 5.0), shift=shift[::-1], tilt_deg=rng.uniform(-5, 5)),
    ]
    for s, grid in enumerate(grids):
        name = SERIES_NAMES[s][index % len(SERIES_NAMES[s])]
        image = _to_image(render(spec, grid, s), grid, np.float32)
        if s == 1 and index % 3 == 0:
            uid = f"1.2.826.0.1.3680043.10.1999.{spec.seed}.{s + 1}"
            write_dicom_series(image, patient_dir / name, uid, description=f"SYNTHETIC {name}",
                               patient_name="SYNTHETIC^PHANTOM", shuffle_names=True)
        else:
            suffix = SUFFIXES[(index + s) % len(SUFFIXES)]
            image.SetMetaData("descrip", "SYNTHETIC phantom") if suffix.startswith(".nii") else None
            _write(image, patient_dir / f"{name}{suffix}")
    mask_grid = grids[0] if index % 2 == 0 else grids[1]   # contours drawn on T1 or on CE-T1
    labels = render(spec, mask_grid, None)
    gland = np.where(labels == 3, 0, labels) if index % 4 == 1 else (labels > 0) & (labels < 3)
    gland_names = ("parotid", "gland", "parotid_mask")
    tumour_names = ("tumour", "tumor", "lesion")
    _write(_to_image(gland.astype(np.uint8), mask_grid, np.uint8),
           patient_dir / f"{gland_names[index % 3]}.nii.gz")
    _write(_to_image((labels == 3).astype(np.uint8), mask_grid, np.uint8),
           patient_dir / f"{tumour_names[index % 3]}.nii.gz")


def _write(image: sitk.Image, path: Path) -> None:
    """Write an image (compressed) atomically; the suffix picks the format."""
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)


def make_cohort(out_dir: str | Path, n_patients: int = 40, seed: int = 0,
                progress: bool = True) -> Path:
    """Write ``n_patients`` SYNTHETIC phantom patients and ``manifest.csv`` into ``out_dir``.

    Diagnoses cycle through pleomorphic adenoma, Warthin tumour and malignant. Returns the
    manifest path. A ``SYNTHETIC.txt`` file and the manifest's first line say the data are
    synthetic.
    """
    from mrparotid.io.progress import progress_bar

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "SYNTHETIC.txt", SYNTHETIC_NOTE + "\n")
    rng = np.random.default_rng(seed)
    cases = []
    for i in progress_bar(range(n_patients), desc="phantom patients (SYNTHETIC)", unit="patient",
                          enabled=progress):
        diagnosis = DIAGNOSES[i % len(DIAGNOSES)]
        pid = f"SYN{i + 1:03d}"
        write_patient(out_dir / "patients" / pid, draw_spec(rng, diagnosis), i)
        cases.append(PatientCase(pid, diagnosis, out_dir / "patients" / pid, None, "phantom"))
    manifest = out_dir / "manifest.csv"
    write_manifest(manifest, cases, comment=SYNTHETIC_NOTE)
    return manifest
