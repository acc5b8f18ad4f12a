"""Mutated inputs for the readers, and the rule every outcome must follow.

Used by ``tests/fuzz/test_readers_fuzz.py`` (a few examples per mutation, with hypothesis) and
``tools/fuzz.py`` (many). :func:`make_seeds` writes valid inputs once: NIfTI (``.nii``,
``.nii.gz``), NRRD, MHA, a DICOM series, an RTSTRUCT on it, a manifest and a YAML config.
DICOM headers are mutated element by element (:data:`HEADER_ELEMENTS`) and byte by byte.
Each mutation in :data:`MUTATIONS` takes the seeds, a case folder and a ``random.Random`` and
writes one broken (or still valid) input; :func:`run_case` reads it with the package's reader
and returns ``"read"`` (a correct read), ``"error"`` (one typed error line) or ``"BAD: ..."``
(a traceback, its detail starting ``traceback:``; a hang over :data:`HANG_S`, several lines, or
a read whose array is wrong).
"""

from __future__ import annotations

import random
import shutil
import signal
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from mrparotid.errors import MrParotidError
from patients import patient_arrays, to_image

HANG_S = 30
IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha")
RULES = {"tumour": [r"(?i)gtv|tum"], "gland_right": [r"(?i)parotid_r"],
         "gland_left": [r"(?i)parotid_l"]}


# ----------------------------------------------------------------------------------------------
# seeds

def make_seeds(root: Path) -> dict:
    """Write the valid inputs under ``root``; returns their paths and the reference array."""
    from mrparotid.dicom.rtstruct import write_rtstruct
    from mrparotid.dicom.writer import write_dicom_series

    root.mkdir(parents=True, exist_ok=True)
    arrays = patient_arrays()
    image = to_image(arrays["T1"])
    seeds = {"array": sitk.GetArrayFromImage(image), "image": {}}
    for suffix in IMAGE_SUFFIXES:
        path = root / f"T1{suffix}"
        sitk.WriteImage(image, str(path), useCompression=suffix.endswith(".gz"))
        seeds["image"][suffix] = path
    dicom = root / "dicom"
    files = write_dicom_series(image, dicom, "1.2.826.0.1.3680043.10.1999.42.1")
    for f in files:                         # the RTSTRUCT writer copies the frame of reference
        ds = pydicom.dcmread(f)
        ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.10.1999.42.9"
        ds.save_as(f)
    seeds["dicom"] = dicom
    seeds["dicom_files"] = sorted(files)
    gland = arrays["gland"] > 0
    right, left = gland.copy(), gland.copy()
    right[:, :, 20:] = False
    left[:, :, :20] = False
    seeds["rtstruct"] = write_rtstruct({"Parotid_R": right, "Parotid_L": left,
                                        "GTV": arrays["tumour"] > 0}, files, root / "rtstruct.dcm")
    patients = root / "patients" / "P001"
    patients.mkdir(parents=True)
    seeds["manifest"] = root / "manifest.csv"
    seeds["manifest"].write_text("# a cohort\npatient_id,diagnosis,patient_dir,split,center\n"
                                 "P001,warthin,patients/P001,train,A\n"
                                 "P002,malignant,patients/P001,,B\n", encoding="utf-8")
    seeds["config"] = root / "config.yaml"
    seeds["config"].write_text("seed: 3\ndata:\n  image_size: 64\n  channels: [T1, T2]\n"
                               "optim:\n  lr: 0.001\ntrainer:\n  max_epochs: 2\n", encoding="utf-8")
    return seeds


# ----------------------------------------------------------------------------------------------
# mutations: (seeds, case folder, rng) -> (reader name, path, what a read must equal or None)

def _copy(src: Path, case: Path, name: str | None = None) -> Path:
    dst = case / (name or src.name)
    shutil.copyfile(src, dst)
    return dst


def _pick_image(seeds, rng) -> tuple[str, Path]:
    suffix = rng.choice(IMAGE_SUFFIXES)
    return suffix, seeds["image"][suffix]


def truncate_image(seeds, case, rng):
    _, src = _pick_image(seeds, rng)
    data = src.read_bytes()
    path = case / src.name
    path.write_bytes(data[: rng.randrange(0, len(data))])
    return "image", path, seeds["array"]          # a read must give the whole, true array


def flip_header_bytes(seeds, case, rng):
    suffix, src = _pick_image(seeds, rng)
    data = bytearray(src.read_bytes())
    head = 348 if suffix == ".nii" else min(len(data), 300 if suffix != ".nii.gz" else 64)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(head)
        data[i] ^= 1 << rng.randrange(8)
    path = case / src.name
    path.write_bytes(bytes(data))
    return "image", path, None


def non_finite_voxels(seeds, case, rng):
    suffix, _ = _pick_image(seeds, rng)
    array = seeds["array"].astype(np.float32)
    idx = tuple(rng.randrange(n) for n in array.shape)
    array[idx] = rng.choice([np.nan, np.inf, -np.inf])
    path = case / f"T1{suffix}"
    sitk.WriteImage(to_image(array), str(path))
    return "image", path, "error"                 # NaN/inf must never read


def bad_spacing(seeds, case, rng):
    """A zero or negative voxel spacing written into the header as stored (NIfTI pixdim, MHA
    ElementSpacing, NRRD space directions: only zero there, where a negative vector is a flip)."""
    import gzip
    import struct

    suffix, src = _pick_image(seeds, rng)
    value = 0.0 if suffix == ".nrrd" else rng.choice([0.0, -1.0, -2.5])
    axis = rng.randrange(3)
    path = case / src.name
    data = src.read_bytes()
    if suffix.startswith(".nii"):
        raw = bytearray(gzip.decompress(data) if suffix == ".nii.gz" else data)
        struct.pack_into("<f", raw, 76 + 4 * (axis + 1), value)       # pixdim[axis + 1]
        data = gzip.compress(bytes(raw)) if suffix == ".nii.gz" else bytes(raw)
    elif suffix == ".mha":
        head, sep, rest = data.partition(b"ElementDataFile = LOCAL\n")
        lines = head.split(b"\n")
        for n, line in enumerate(lines):
            if line.startswith(b"ElementSpacing"):
                parts = line.split(b" ")
                parts[2 + axis] = str(value).encode()
                lines[n] = b" ".join(parts)
        data = b"\n".join(lines) + sep + rest
    else:
        head, sep, rest = data.partition(b"\n\n")
        lines = head.split(b"\n")
        for n, line in enumerate(lines):
            if line.startswith(b"space directions:"):
                vectors = line[len(b"space directions: "):].split(b" ")
                vectors[axis] = b"(0,0,0)"
                lines[n] = b"space directions: " + b" ".join(vectors)
        data = b"\n".join(lines) + sep + rest
    path.write_bytes(data)
    return "image", path, "error"                 # zero or negative spacing must never read


def wrong_dimension(seeds, case, rng):
    suffix, _ = _pick_image(seeds, rng)
    array = seeds["array"].astype(np.float32)
    if rng.random() < 0.5:
        image = sitk.GetImageFromArray(array[rng.randrange(array.shape[0])])      # 2-D
    else:
        image = sitk.JoinSeries([to_image(array), to_image(array)])              # 4-D
    path = case / f"T1{suffix}"
    sitk.WriteImage(image, str(path))
    return "image", path, "error"


def _dicom_copy(seeds, case) -> tuple[Path, list[Path]]:
    folder = case / "series"
    shutil.copytree(seeds["dicom"], folder)
    return folder, sorted(folder.iterdir())


def dicom_without_pixels(seeds, case, rng):
    folder, files = _dicom_copy(seeds, case)
    path = rng.choice(files)
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    return "dicom", folder, None


def dicom_missing_middle_slice(seeds, case, rng):
    folder, files = _dicom_copy(seeds, case)
    by_z = sorted(files, key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True)
                                              .ImagePositionPatient[2]))
    by_z[rng.randrange(1, len(by_z) - 1)].unlink()
    return "dicom", folder, None


def dicom_swapped_orientation(seeds, case, rng):
    folder, files = _dicom_copy(seeds, case)
    chosen = files if rng.random() < 0.5 else [rng.choice(files)]
    for path in chosen:
        ds = pydicom.dcmread(path)
        iop = [float(v) for v in ds.ImageOrientationPatient]
        ds.ImageOrientationPatient = iop[3:] + iop[:3]
        ds.save_as(path)
    return "dicom", folder, None


def dicom_truncated_file(seeds, case, rng):
    folder, files = _dicom_copy(seeds, case)
    path = rng.choice(files)
    data = path.read_bytes()
    path.write_bytes(data[: rng.randrange(0, len(data))])
    return "dicom", folder, None


#: DICOM header elements the readers use, with their VR, and raw values out of type or range.
HEADER_ELEMENTS = {"PixelSpacing": "DS", "ImagePositionPatient": "DS", "ImageOrientationPatient": "DS",
                   "SliceThickness": "DS", "SpacingBetweenSlices": "DS", "RescaleSlope": "DS",
                   "RescaleIntercept": "DS", "Rows": "US", "Columns": "US", "BitsAllocated": "US",
                   "BitsStored": "US", "PixelRepresentation": "US", "SamplesPerPixel": "US",
                   "SeriesInstanceUID": "UI", "SOPClassUID": "UI", "SOPInstanceUID": "UI",
                   "FrameOfReferenceUID": "UI", "InstanceNumber": "IS", "NumberOfFrames": "IS",
                   "PhotometricInterpretation": "CS", "Modality": "CS", "SeriesDescription": "LO"}
RAW_VALUES = {"DS": [b"abc", b"1e400", b"nan", b"inf", b"0", b"-1", b"0\\0", b"1\\2\\3\\4\\5\\6\\7", b"",
                     b"1\\0\\0\\1\\0\\0", b"1e-300"],
              "US": [b"\x00\x00", b"\xff\xff", b"\x01\x00", b"\x00\x01\x00\x01", b""],
              "UI": [b"", b"1.2.3", b"\x00\x00", b"x" * 80],
              "IS": [b"x", b"-5", b"99999999999", b"", b"0"],
              "CS": [b"RGB", b"", b"\xff\xfe", b"PALETTE COLOR"], "LO": [b"\xff\xfe", b"x" * 300, b""]}


def dicom_header_value(seeds, case, rng):
    """One header element of one file (or of every file) deleted or given a raw value of the wrong
    type, multiplicity or range (written as stored, past pydicom's checks)."""
    from pydicom.dataelem import RawDataElement
    from pydicom.datadict import tag_for_keyword
    from pydicom.tag import Tag

    folder, files = _dicom_copy(seeds, case)
    keyword = rng.choice(sorted(HEADER_ELEMENTS))
    vr, tag = HEADER_ELEMENTS[keyword], Tag(tag_for_keyword(keyword))
    value = None if rng.random() < 0.2 else rng.choice(RAW_VALUES[vr])
    if value is not None and len(value) % 2:
        value += b"\x00" if vr in ("UI", "US") else b" "
    for path in files if rng.random() < 0.5 else [rng.choice(files)]:
        ds = pydicom.dcmread(path)
        if value is None:
            if tag in ds:
                del ds[tag]
        else:
            implicit = ds.file_meta.TransferSyntaxUID.is_implicit_VR
            ds[tag] = RawDataElement(tag, None if implicit else vr, len(value), value, 0, implicit, True)
        ds.save_as(path)
    return "dicom", folder, None


def dicom_header_bytes(seeds, case, rng):
    """A few bits flipped in the header of one file (after the preamble, before the pixel data)."""
    folder, files = _dicom_copy(seeds, case)
    path = rng.choice(files)
    data = bytearray(path.read_bytes())
    end = min(len(data), 132 + 1200)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(132, end)
        data[i] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    return "dicom", folder, None


def rtstruct_bad_contour(seeds, case, rng):
    path = _copy(seeds["rtstruct"], case)
    ds = pydicom.dcmread(path)
    roi = rng.choice(list(ds.ROIContourSequence))
    contour = rng.choice(list(roi.ContourSequence))
    z = float(contour.ContourData[2])
    kind = rng.choice(["empty", "bowtie", "two_points", "odd_count"])
    if kind == "empty":
        contour.ContourData = []
    elif kind == "bowtie":                     # self-intersecting: a figure of eight
        x0, y0 = float(contour.ContourData[0]), float(contour.ContourData[1])
        pts = [(x0, y0), (x0 + 10, y0 + 10), (x0 + 10, y0), (x0, y0 + 10)]
        contour.ContourData = [f"{v:.3f}" for p in pts for v in (*p, z)]
    elif kind == "two_points":
        contour.ContourData = contour.ContourData[:6]
    else:
        contour.ContourData = contour.ContourData[:-1]
    contour.NumberOfContourPoints = len(contour.ContourData) // 3
    ds.save_as(path)
    return "rtstruct", path, None


def mutate_text(seeds, case, rng, key):
    src = seeds[key]
    data = bytearray(src.read_bytes())
    op = rng.choice(["truncate", "flip", "insert", "delete_line"])
    if op == "truncate":
        data = data[: rng.randrange(len(data))]
    elif op == "flip":
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif op == "insert":
        i = rng.randrange(len(data) + 1)
        junk = rng.choice([b",", b"\n", b'"', b"\x00", b"\xff\xfe", b"..", b": [", b"!!python/object:os.system ",
                           b"{", b"\t", b"nan", b"-1"])
        data[i:i] = junk
    else:
        lines = bytes(data).split(b"\n")
        del lines[rng.randrange(len(lines))]
        data = bytearray(b"\n".join(lines))
    path = case / src.name
    path.write_bytes(bytes(data))
    return key, path, None


def mutate_manifest(seeds, case, rng):
    return mutate_text(seeds, case, rng, "manifest")


def mutate_config(seeds, case, rng):
    return mutate_text(seeds, case, rng, "config")


MUTATIONS = {f.__name__: f for f in (
    truncate_image, flip_header_bytes, non_finite_voxels, bad_spacing, wrong_dimension,
    dicom_without_pixels, dicom_missing_middle_slice, dicom_swapped_orientation, dicom_truncated_file,
    dicom_header_value, dicom_header_bytes, rtstruct_bad_contour, mutate_manifest, mutate_config)}


# ----------------------------------------------------------------------------------------------
# reading and judging

def _read(kind: str, path: Path, seeds: dict):
    if kind == "image":
        from mrparotid.io.files import read_image

        return read_image(path, patient="F001")
    if kind == "dicom":
        import warnings

        from mrparotid.dicom.series import read_dicom_series

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return read_dicom_series(path, patient="F001")
    if kind == "rtstruct":
        from mrparotid.dicom.headers import read_header
        from mrparotid.dicom.rtstruct import masks_from_rtstruct
        from mrparotid.dicom.series import read_dicom_series

        ds = read_header(path)
        reference = read_dicom_series(seeds["dicom"])
        return masks_from_rtstruct(ds, reference, RULES, patient="F001", path=path)
    if kind == "manifest":
        from mrparotid.io.manifest import read_manifest

        return read_manifest(path, check_dirs=False)
    from mrparotid.config import load_config

    return load_config(path)


def _check_image(image, expected) -> str | None:
    """Why a read image is wrong, or None."""
    if image.GetDimension() != 3:
        return f"{image.GetDimension()}-D image"
    array = sitk.GetArrayViewFromImage(image)
    if not np.isfinite(array).all():
        return "non-finite voxels"
    spacing = np.asarray(image.GetSpacing())
    if not (np.isfinite(spacing).all() and (spacing > 0).all()):
        return f"spacing {tuple(spacing)}"
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-3):
        return "direction not orthonormal"
    if not np.isfinite(image.GetOrigin()).all():
        return "non-finite origin"
    if isinstance(expected, np.ndarray) and not np.array_equal(np.asarray(array), expected):
        return "array differs from the file's true contents"
    return None


def _check(kind: str, out, expected) -> str | None:
    if expected == "error" if isinstance(expected, str) else False:
        return "read without error"
    if kind in ("image", "dicom"):
        return _check_image(out, expected)
    if kind == "rtstruct":
        if not isinstance(out, dict) or any(m.dtype != np.uint8 for m in out.values()):
            return "masks not uint8"
    return None


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def guarded(call, error_type: type = MrParotidError, hang_s: int = HANG_S) -> tuple[str, object]:
    """Run ``call()`` with a hang alarm of ``hang_s`` seconds: ``("ok", its value)``; ``("error",
    the line)`` for an ``error_type`` error of one line; else ``("BAD", why)``: several lines,
    another mrparotid error, a hang or a traceback."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(hang_s)
    try:
        return "ok", call()
    except error_type as err:
        text = str(err)
        return ("error", text) if text and "\n" not in text else ("BAD", f"several lines: {text!r}")
    except MrParotidError as err:
        return "BAD", f"{type(err).__name__}, not a {error_type.__name__}: {err}"
    except _Hang:
        return "BAD", f"hang over {hang_s} s"
    except Exception as exc:  # noqa: BLE001 - a traceback is what we look for
        return "BAD", f"traceback: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_case(name: str, seeds: dict, case: Path, rng: random.Random) -> tuple[str, str]:
    """(outcome, detail): outcome ``read``, ``error`` or ``BAD``."""
    case.mkdir(parents=True, exist_ok=True)
    kind, path, expected = MUTATIONS[name](seeds, case, rng)
    outcome, out = guarded(lambda: _read(kind, path, seeds))
    if outcome != "ok":
        return outcome, out
    why = _check(kind, out, expected)
    return ("BAD", f"wrong read: {why}") if why else ("read", "")
