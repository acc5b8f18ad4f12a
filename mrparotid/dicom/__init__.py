"""DICOM exports. In: a folder of DICOM files, a whole study (several series plus an RTSTRUCT), or
masks to write back as an RTSTRUCT. Out: one SimpleITK image per series (headers → geometry →
pixels, vendor quirks handled), the role of each series (T1, CE-T1, T2, T2FS, DWI, ADC, DCE:
``configs/dicom_roles.yaml``, b-values from standard and vendor tags in bvalues, a DWI's images by
b-value in dwi, a DCE series' phase in phases), and gland/tumour masks rasterised from RTSTRUCT
contours. Nothing here reads patient names into an output."""
