"""``--dicom-out`` writes the study's patient identity, so it is refused with ``--pseudonymise``
(one line, exit 2, before any model is loaded)."""

from __future__ import annotations

from mrparotid.cli.main import main


def test_dicom_out_with_pseudonymise_is_refused(tmp_path, capsys):
    for verb, out in (("diagnose", []), ("segment", ["--out", str(tmp_path / "o")])):
        assert main([verb, str(tmp_path), "--checkpoint", str(tmp_path / "none.ckpt"), *out,
                     "--dicom-out", str(tmp_path / "d"), "--pseudonymise"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--dicom-out" in err[0] and "pseudonymised" in err[0], err
