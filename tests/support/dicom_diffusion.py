"""Diffusion, ADC and dynamic DICOM series built from the REAL vendor series in
../shared/fixtures/real_dicom, with the b-value written the way each vendor writes it (private
creator elements included): GE (0043,1039) ``GEMS_PARM_01`` (optionally with the 10⁹ offset),
Siemens (0019,100C) ``SIEMENS MR HEADER``, Philips (2001,1003) ``Philips Imaging DD 001``, the
standard DiffusionBValue (0018,9087), classic or inside an enhanced file's MR Diffusion group.

Pixels are a SYNTHETIC phantom of known ADC: background 10, a centred disc of S0 = 2000 whose
signal is S0 · exp(−b · ADC) (ADC in x 10⁻³ mm²/s), stored as integers. Never print header values
(the fixtures carry placeholder identifiers)."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

S0, BACKGROUND, PHANTOM_ADC = 2000.0, 10.0, 1.5
SIEMENS_TRACE = ["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW", "ND", "NORM"]
SIEMENS_ADC = ["DERIVED", "PRIMARY", "DIFFUSION", "ADC", "ND", "NORM"]


def disc(shape: tuple[int, int], radius_frac: float = 0.3) -> np.ndarray:
    """Boolean (rows, columns) centred disc."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    r = radius_frac * min(shape)
    return (yy - shape[0] / 2) ** 2 + (xx - shape[1] / 2) ** 2 <= r ** 2


def dwi_pixels(shape: tuple[int, int], b: float, adc: float = PHANTOM_ADC,
               gain: float = 1.0) -> np.ndarray:
    """Integer phantom slice at ``b`` s/mm² (ADC in x 10⁻³ mm²/s), times ``gain``."""
    out = np.full(shape, BACKGROUND, np.float64)
    out[disc(shape)] = S0 * math.exp(-b * adc * 1e-3)
    return np.rint(out * gain)


def sorted_slices(files: Sequence[Path], n: int) -> list[Path]:
    """The first ``n`` files of a classic series in slice order (contiguous slices)."""
    headers = [(f, pydicom.dcmread(f, stop_before_pixels=True)) for f in files]
    headers = [(f, ds) for f, ds in headers if "ImagePositionPatient" in ds]
    iop = np.array(headers[0][1].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    headers.sort(key=lambda h: float(np.dot(np.array(h[1].ImagePositionPatient, float), normal)))
    return [f for f, _ in headers[:n]]


def set_pixels(ds: Dataset, pixels: np.ndarray) -> None:
    """Replace the pixel data of a classic or enhanced file (rescale made 1/0)."""
    dtype = np.int16 if int(ds.get("PixelRepresentation", 0)) == 1 else np.uint16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelData = np.ascontiguousarray(pixels.astype(dtype)).tobytes()
    for item in [ds] + [g.PixelValueTransformationSequence[0] for g in
                        ds.get("PerFrameFunctionalGroupsSequence", [])
                        if "PixelValueTransformationSequence" in g]:
        if "RescaleSlope" in item:
            item.RescaleSlope, item.RescaleIntercept = 1, 0


def write_b_value(ds: Dataset, b: float, vendor: str, *, ge_offset: bool = False) -> None:
    """Write ``b`` (s/mm²) where ``vendor`` writes it (ge, siemens, philips, standard)."""
    if vendor == "ge":
        value = int(b) + (1_000_000_000 if ge_offset else 0)
        ds.private_block(0x0043, "GEMS_PARM_01", create=True).add_new(0x39, "IS",
                                                                      [str(value), "8", "0", "0"])
    elif vendor == "siemens":
        ds.private_block(0x0019, "SIEMENS MR HEADER", create=True).add_new(0x0C, "IS", str(int(b)))
    elif vendor == "philips":
        ds.private_block(0x2001, "Philips Imaging DD 001", create=True).add_new(0x03, "FL", float(b))
        if "DiffusionBValue" in ds:
            del ds.DiffusionBValue
    elif vendor == "standard":
        ds.DiffusionBValue = float(b)
        if (0x2001, 0x1003) in ds:
            del ds[0x2001, 0x1003]
    else:
        raise ValueError(vendor)


def write_dwi(files: Sequence[Path], dst: Path, b_values: Sequence[float], vendor: str, *,
              one_series: bool = True, series_number: int = 20, description: str = "AX 20",
              ge_offset: bool = False, image_type: Sequence[str] | None = None,
              directions: int = 1, adc: float = PHANTOM_ADC) -> list[Path]:
    """A classic DWI of ``files``' slices at ``b_values``: ONE series holding every b (default)
    or one series per b (numbers ``series_number``, +1, ...). ``directions`` > 1: that many
    images per slice for each b > 0, of gains 0.5, 1, 2, ... (their geometric mean is the b
    image of gain 1 for 3 directions: 0.5 · 1 · 2 = 1)."""
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    uid = generate_uid()
    out = []
    for k, b in enumerate(b_values):
        if not one_series:
            uid = generate_uid()
        gains = [2.0 ** (d - directions // 2) for d in range(directions)] if b > 0 else [1.0]
        for n, f in enumerate(files):
            for d, gain in enumerate(gains):
                ds = pydicom.dcmread(f)
                ds.SeriesInstanceUID, ds.SOPInstanceUID = uid, generate_uid()
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                ds.SeriesNumber = series_number + (0 if one_series else k)
                ds.SeriesDescription = ds.ProtocolName = description
                ds.InstanceNumber = len(out) + 1
                if image_type is not None:
                    ds.ImageType = list(image_type)
                write_b_value(ds, b, vendor, ge_offset=ge_offset)
                set_pixels(ds, dwi_pixels((ds.Rows, ds.Columns), b, adc, gain))
                path = dst / f"b{int(b)}_{n:03d}_{d}"
                ds.save_as(path)
                out.append(path)
    return out


def write_adc(files: Sequence[Path], dst: Path, adc_1e6: float, *, series_number: int = 30,
              description: str = "AX 30", image_type: Sequence[str] = SIEMENS_ADC) -> list[Path]:
    """A classic ADC map of ``files``' slices: the disc holds ``adc_1e6`` (x 10⁻⁶ mm²/s integers,
    as scanners store it), the background 0."""
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    uid, out = generate_uid(), []
    for n, f in enumerate(files):
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID, ds.SOPInstanceUID = uid, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesNumber, ds.ImageType = series_number, list(image_type)
        ds.SeriesDescription = ds.ProtocolName = description
        set_pixels(ds, np.where(disc((ds.Rows, ds.Columns)), adc_1e6, 0.0))
        out.append(dst / f"adc_{n:03d}")
        ds.save_as(out[-1])
    return out


def write_enhanced_dwi(enhanced: Path, dst: Path, b_values: Sequence[float], *,
                       shared: bool = False) -> Path:
    """An enhanced multi-frame DWI from an enhanced file: its frames once per b-value, each
    frame's b in its MR Diffusion functional group (``shared``: one b in the shared group)."""
    ds = pydicom.dcmread(enhanced)
    per = list(ds.PerFrameFunctionalGroupsSequence)
    frames, pixels = [], []
    for b in b_values:
        for item in per:
            item = copy.deepcopy(item)
            diffusion = Dataset()
            diffusion.DiffusionBValue = float(b)
            diffusion.DiffusionDirectionality = "ISOTROPIC" if b > 0 else "NONE"
            if not shared:
                item.MRDiffusionSequence = DicomSequence([diffusion])
            frames.append(item)
            pixels.append(dwi_pixels((ds.Rows, ds.Columns), b))
    if shared:
        ds.SharedFunctionalGroupsSequence[0].MRDiffusionSequence = DicomSequence([diffusion])
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
    ds.NumberOfFrames = len(frames)
    ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesNumber, ds.SeriesDescription, ds.ProtocolName = 40, "AX 40", "AX 40"
    set_pixels(ds, np.stack(pixels))
    Path(dst).mkdir(parents=True, exist_ok=True)
    path = Path(dst) / "enhanced_dwi"
    ds.save_as(path)
    return path


def write_phases(files: Sequence[Path], dst: Path, gains: Sequence[float], *,
                 description: str, series_number: int = 50,
                 contrast_agent: str | None = "Gadoterate") -> list[Path]:
    """A dynamic series: ``files``' slices once per phase (TemporalPositionIdentifier 1, 2, ...),
    the disc's signal times the phase's gain."""
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    uid, out = generate_uid(), []
    for k, gain in enumerate(gains):
        for n, f in enumerate(files):
            ds = pydicom.dcmread(f)
            ds.SeriesInstanceUID, ds.SOPInstanceUID = uid, generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.SeriesNumber, ds.InstanceNumber = series_number, len(out) + 1
            ds.SeriesDescription = ds.ProtocolName = description
            ds.TemporalPositionIdentifier, ds.NumberOfTemporalPositions = k + 1, len(gains)
            if contrast_agent:
                ds.ContrastBolusAgent = contrast_agent
            set_pixels(ds, dwi_pixels((ds.Rows, ds.Columns), 0.0, gain=gain))
            out.append(dst / f"ph{k}_{n:03d}")
            ds.save_as(out[-1])
    return out
