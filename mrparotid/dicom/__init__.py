"""DICOM exports. In: a folder of DICOM files, a whole study (several series plus an RTSTRUCT), or
masks to write back as an RTSTRUCT. Out: one SimpleITK image per series (headers → geometry →
pixels, vendor quirks handled), the T1/CE-T1/T2 role of each series (``configs/dicom_roles.yaml``),
and gland/tumour masks rasterised from RTSTRUCT contours. Nothing here reads patient names into an
output."""
