"""Pseudonyms: salted, stable with the same salt file, replaced as whole words only; the salt
file is private and a damaged one is refused."""

from __future__ import annotations

import stat

import pytest

from mrparotid.errors import ConfigError, InputError
from mrparotid.io.pseudonym import Pseudonymiser, pseudonym, read_or_make_salt, salt_path


def test_the_salt_file_is_made_once_private_and_reused(tmp_path):
    path = salt_path(None, tmp_path / "out")
    salt = read_or_make_salt(path)
    assert len(salt) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_or_make_salt(path) == salt
    assert pseudonym("P001", salt) == pseudonym("P001", read_or_make_salt(path))
    assert pseudonym("P001", salt) != pseudonym("P001", read_or_make_salt(tmp_path / "other.txt"))
    path.write_text("not hex\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="holds no salt"):
        read_or_make_salt(path)
    with pytest.raises(ConfigError, match="--salt-file"):
        salt_path(None, None)


def test_ids_and_folder_names_are_replaced_as_whole_words():
    salt = bytes(range(32))
    p = Pseudonymiser([("P001", "MRN123"), ("P0011", "P0011")], salt)
    a, b = p.id("P001"), p.id("P0011")
    assert a.startswith("anon-") and len(a) == 17 and a != b
    assert p.text("file /data/MRN123/T2.nii: P001 and P0011, not XP001 or 0.P001x") == (
        f"file /data/{a}/T2.nii: {a} and {b}, not XP001 or 0.P001x")
    assert p.scrub({"P001": ["MRN123", 3]}) == {a: [a, 3]}
    assert p.original(a) == "P001" and p.original("zz") == "zz"
    err = p.error(InputError("no T2", patient="P001", path="/d/MRN123/T2.nii", fix="re-export P001"))
    assert isinstance(err, InputError) and "P001" not in str(err) and "MRN123" not in str(err)
    off = Pseudonymiser([("P001", "MRN123")])
    assert not off.active and off.id("P001") == "P001" and off.text("P001") == "P001"
