"""From patient files to training tensors. In: :class:`~mrparotid.io.files.PatientFiles` and the
config's ``data`` section. Out: every series on the T1 grid (``grid``), the parotid sides
(``sides``), labelled axial slices (``labels``), 224x224 crops (``crops``), one
:func:`~mrparotid.data.preprocess.prepare_patient` used by the cache and by ``diagnose``, the one
patient split (``splits``), the per-patient crop cache, and the Lightning DataModule with its
on-device augmentation. ``phantom`` writes the SYNTHETIC cohort."""
