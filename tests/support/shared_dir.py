"""Where ``../shared`` (beside the repository) is: the paper, real vendor DICOM fixtures with dcm2niix
references, and pROC's DeLong reference values. Tests that need it skip with a reason without it."""

from pathlib import Path

#: The ``shared/`` folder laid beside the repository checkout.
SHARED_DIR = Path(__file__).resolve().parents[3] / "shared"
