"""Write a 3-D image as a DICOM MR series, one file per slice (used by the phantom cohort and tests).

Only the geometry and identification tags a reader needs are written: modality, image type,
study/series/SOP instance UIDs, instance number, ImageOrientationPatient, ImagePositionPatient
(LPS mm) and slice thickness. Intensities are rescaled to 0..4095 and stored as int16.
"""

from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk


def write_dicom_series(image: sitk.Image, folder: str | Path, series_uid: str, *,
                       description: str | None = None, study_uid: str | None = None,
                       patient_id: str = "SYNTHETIC", patient_name: str | None = None,
                       prefix: str = "IM", shuffle_names: bool = False) -> list[Path]:
    """Write ``image`` into ``folder``; returns the files written, slice order.

    ``study_uid`` defaults to ``series_uid`` with its last component replaced by ``1``.
    ``shuffle_names`` gives file names that do not sort in slice order, as some exports do.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.Cast(sitk.RescaleIntensity(image, 0, 4095), sitk.sitkInt16)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    d = image.GetDirection()
    iop = "\\".join(f"{v:.6f}" for v in (d[0], d[3], d[6], d[1], d[4], d[7]))
    common = {"0008|0060": "MR", "0008|0008": "ORIGINAL\\PRIMARY", "0010|0020": patient_id,
              "0020|000d": study_uid or series_uid.rsplit(".", 1)[0] + ".1", "0020|000e": series_uid,
              "0018|0050": f"{image.GetSpacing()[2]:.4f}", "0020|0037": iop}
    if description is not None:
        common["0008|103e"] = description
    if patient_name is not None:
        common["0010|0010"] = patient_name
    written = []
    for k in range(image.GetDepth()):
        sl = image[:, :, k]
        ipp = image.TransformIndexToPhysicalPoint((0, 0, k))
        tags = dict(common, **{"0008|0018": f"{series_uid}.{k + 1}", "0020|0013": str(k + 1),
                               "0020|0032": "\\".join(f"{v:.6f}" for v in ipp)})
        for key, value in tags.items():
            sl.SetMetaData(key, value)
        name = f"{prefix}{(k * 7919) % 10007:05d}.dcm" if shuffle_names else f"{prefix}{k + 1:04d}.dcm"
        writer.SetFileName(str(folder / name))
        writer.Execute(sl)
        written.append(folder / name)
    return written
