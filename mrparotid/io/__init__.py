"""Inputs on disk. In: a patient folder (series as image files or DICOM folders, optional gland and
tumour masks) or a cohort manifest CSV. Out: :class:`~mrparotid.io.files.PatientFiles` (where each
role's file is, nothing read yet) and :class:`~mrparotid.io.manifest.Manifest` (validated patient
cases with absolute folders)."""
