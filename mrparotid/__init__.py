"""mrparotid: benign vs malignant parotid tumours on MRI.

Research software after Xia et al., Front. Oncol. 2021 (doi:10.3389/fonc.2021.632104).
Not a medical device; nothing it prints is a clinical diagnosis.
"""

__version__ = "0.1.0"
