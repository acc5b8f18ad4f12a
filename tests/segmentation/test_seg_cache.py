"""The segmenter's slice cache: entries are reused when whole and rebuilt when truncated."""

from __future__ import annotations

from patients import write_cohort

from mrparotid.io.manifest import read_manifest
from mrparotid.segmentation.cache import load_patient, prepare_seg_cohort
from mrparotid.segmentation.config import load_segment_config


def test_a_truncated_entry_is_rebuilt_not_trusted(tmp_path):
    manifest = read_manifest(write_cohort(tmp_path, [("P01", "warthin", {})]))
    cfg = load_segment_config(None, {"data": {"cache_dir": str(tmp_path / "cache")}})
    first = prepare_seg_cohort(manifest, cfg, progress=False)
    path = first.entries["P01"]
    assert first.built == 1 and not first.bad
    whole = path.read_bytes()
    again = prepare_seg_cohort(manifest, cfg, progress=False)
    assert again.built == 0 and again.entries["P01"] == path          # reused
    path.write_bytes(whole[: len(whole) // 2])                         # a crash or a bad copy
    rebuilt = prepare_seg_cohort(manifest, cfg, progress=False)
    assert rebuilt.built == 1 and not rebuilt.bad
    assert load_patient(rebuilt.entries["P01"]).stack.patient_id == "P01"
