"""Results back into the hospital: DICOM SEG masks and a DICOM Comprehensive 3D SR (TID 1500).

In: a patient's study on the T1 reference grid with its masks (given or automatic), the ``diagnose``
report dict, and the source T1 DICOM series the masks were drawn on.
Out: ``SEG.dcm`` (right gland, left gland, tumour; SNOMED CT coded, referencing the T1 instance
by instance) and ``SR.dcm`` (answer, rule diagnosis, p(malignant) at its operating point, volumes
in mm³, decisive slices), both carrying the source study's patient and study identity.
"""
