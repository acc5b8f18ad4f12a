"""write_json writes strict JSON: no NaN tokens, numpy values as plain numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from mrparotid.io.atomic import json_ready, write_json


def test_non_finite_and_numpy_values_become_strict_json(tmp_path):
    obj = {"auc": math.nan, "n": np.int64(3), "lo": np.float32(0.25), 1: (np.inf, 2.0),
           "ok": np.bool_(True), "arr": np.array([1.5, np.nan]), "path": Path("a/b")}
    path = tmp_path / "m.json"
    write_json(path, obj)
    text = path.read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    back = json.loads(text)
    assert back == {"auc": None, "n": 3, "lo": 0.25, "1": [None, 2.0], "ok": True,
                    "arr": [1.5, None], "path": "a/b"}


def test_json_ready_keeps_plain_values():
    assert json_ready({"a": [1, "x", None, 0.5]}) == {"a": [1, "x", None, 0.5]}
