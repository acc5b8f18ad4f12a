"""The hand-written predictions CSV with known answers that the evaluation tests share."""

from __future__ import annotations

import pandas as pd
import pytest

from mrparotid.evaluation import predictions

# 4 patients, 17 slices. P3 has a second (tumour-free) side; P4 has no tumour slice (excluded).
CSV = """\
patient_id,side,index,true,pred,p_no_tumour,p_pleomorphic_adenoma,p_warthin,p_malignant
P1,L,0,no_tumour,no_tumour,0.85,0.05,0.05,0.05
P1,L,1,malignant,malignant,0.05,0.10,0.05,0.80
P1,L,2,malignant,malignant,0.05,0.15,0.10,0.70
P1,L,3,malignant,malignant,0.10,0.10,0.20,0.60
P1,L,4,malignant,pleomorphic_adenoma,0.05,0.50,0.05,0.40
P2,R,0,no_tumour,no_tumour,0.90,0.04,0.03,0.03
P2,R,1,pleomorphic_adenoma,pleomorphic_adenoma,0.05,0.75,0.15,0.05
P2,R,2,pleomorphic_adenoma,pleomorphic_adenoma,0.05,0.60,0.30,0.05
P2,R,3,pleomorphic_adenoma,warthin,0.05,0.35,0.55,0.05
P2,R,4,pleomorphic_adenoma,malignant,0.05,0.30,0.10,0.55
P3,L,0,warthin,warthin,0.05,0.20,0.70,0.05
P3,L,1,warthin,pleomorphic_adenoma,0.05,0.50,0.40,0.05
P3,L,2,warthin,pleomorphic_adenoma,0.05,0.45,0.40,0.10
P3,L,3,warthin,malignant,0.05,0.20,0.25,0.50
P3,R,0,no_tumour,no_tumour,0.80,0.05,0.10,0.05
P4,R,0,no_tumour,no_tumour,0.70,0.10,0.10,0.10
P4,R,1,no_tumour,warthin,0.30,0.10,0.50,0.10
"""


@pytest.fixture()
def toy_csv() -> str:
    """The text of the toy predictions CSV (4 patients, 17 slices)."""
    return CSV


@pytest.fixture()
def csv_path(tmp_path):
    path = tmp_path / "preds.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


@pytest.fixture()
def toy_df(csv_path) -> pd.DataFrame:
    return predictions.read_predictions(csv_path)
