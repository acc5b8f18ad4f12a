"""``--pseudonymise``: patient ids (often folder names, e.g. medical record numbers) replaced by a
salted hash in every page, JSON, CSV and log line a command writes.

The pseudonym of an id is ``anon-`` + the first 12 hex digits of HMAC-SHA256(salt, id). The salt
is 32 random bytes, kept in a salt file (:data:`SALT_FILE` in the output folder unless
``--salt-file`` names one) and reused, so a rerun gives the same pseudonyms. Anyone who holds
the salt can test guessed ids against the pseudonyms: keep the salt file out of what you share.

A :class:`Pseudonymiser` knows the command's patients (their ids and folder names) and replaces
them wherever they appear as a whole word: in ids, in paths that contain the folder name, in
error and warning lines.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from mrparotid.errors import ConfigError, MrParotidError, OutputError
from mrparotid.io.atomic import atomic_path

SALT_FILE = "pseudonym_salt.txt"
PREFIX = "anon-"
DIGITS = 12


def pseudonym(patient_id: str, salt: bytes) -> str:
    """``anon-`` + 12 hex digits of HMAC-SHA256(``salt``, ``patient_id``)."""
    digest = hmac.new(salt, str(patient_id).encode("utf-8"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:DIGITS]


def read_or_make_salt(path: str | Path) -> bytes:
    """The salt in ``path`` (hex text); a new random one written there (mode 0600, atomically)
    when the file does not exist.

    Raises
    ------
    ConfigError
        The file exists but holds no hex salt of at least 16 bytes.
    OutputError
        It cannot be written.
    """
    path = Path(path)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the salt file: {exc.strerror or exc}", path=path,
                              fix="make it readable, or pass another --salt-file") from None
        try:
            salt = bytes.fromhex(text)
        except ValueError:
            salt = b""
        if len(salt) < 16:
            raise ConfigError("the salt file holds no salt (at least 32 hex digits)", path=path,
                              fix="delete it to make a new one (the pseudonyms then change), or "
                                  "restore the file kept from earlier runs")
        return salt
    salt = secrets.token_bytes(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot make the folder of the salt file: {exc.strerror or exc}",
                          path=path, fix="choose a folder you can write to, or pass --salt-file FILE"
                          ) from None
    with atomic_path(path) as tmp:
        os.chmod(tmp, 0o600)             # before the salt is in it: never readable by others
        tmp.write_text(salt.hex() + "\n", encoding="utf-8")
    return salt


def salt_path(salt_file: str | Path | None, out_dir: str | Path | None) -> Path:
    """``--salt-file`` if given, else :data:`SALT_FILE` in the output folder.

    Raises
    ------
    ConfigError
        Neither is there (a command that writes no file).
    """
    if salt_file:
        return Path(salt_file)
    if out_dir is None:
        raise ConfigError("--pseudonymise needs a salt, kept between runs, and this command writes "
                          "no output folder to keep it in", fix="pass --salt-file FILE (or an "
                          "output: --json, --csv or --html)")
    return Path(out_dir) / SALT_FILE


class Pseudonymiser:
    """Replaces the given patients' ids and folder names by their pseudonyms.

    ``names``: (patient id, folder name or None) of each patient; both map to the pseudonym of
    the id. Without a salt (``salt=None``) nothing is replaced (the command ran without
    ``--pseudonymise``).
    """

    def __init__(self, names: Iterable[tuple[str, str | None]] = (), salt: bytes | None = None):
        self.salt = salt
        self.table: dict[str, str] = {}
        self.ids: dict[str, str] = {}          # pseudonym -> id
        if salt is None:
            return
        for pid, folder in names:
            self.table[str(pid)] = pseudonym(pid, salt)
            self.ids[self.table[str(pid)]] = str(pid)
            if folder and folder not in self.table:
                self.table[str(folder)] = pseudonym(pid, salt)
        words = sorted(self.table, key=len, reverse=True)     # longest first: P0011 before P001
        self.pattern = (re.compile(r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, words))
                                   + r")(?![A-Za-z0-9])") if words else None)

    @property
    def active(self) -> bool:
        """True with ``--pseudonymise``."""
        return self.salt is not None

    def id(self, patient_id: str) -> str:
        """The pseudonym of an id (the id itself when inactive; a new id is hashed too)."""
        if not self.active:
            return patient_id
        return self.table.get(str(patient_id)) or pseudonym(patient_id, self.salt)

    def original(self, shown: str) -> str:
        """The id whose pseudonym is ``shown`` (``shown`` itself when it is none): for looking a
        patient up in its cohort, never for an output."""
        return self.ids.get(shown, shown)

    def text(self, text: str) -> str:
        """``text`` with every known id or folder name (a whole word) replaced."""
        if not self.active or self.pattern is None:
            return text
        return self.pattern.sub(lambda m: self.table[m.group(1)], text)

    def scrub(self, obj):
        """A copy of a JSON-like value (dict keys too) with :meth:`text` applied to every string."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self.scrub(k): self.scrub(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.scrub(v) for v in obj)
        return obj

    def error(self, err: MrParotidError) -> MrParotidError:
        """``err`` (same type, changed in place) with ids and folder names replaced."""
        if not self.active:
            return err
        err.message = self.text(err.message)
        err.patient = None if err.patient is None else self.text(err.patient)
        err.path = None if err.path is None else self.text(err.path)
        err.fix = None if err.fix is None else self.text(err.fix)
        for inner in getattr(err, "bad", None) or ():
            self.error(inner)
        err.args = (err.format(),)
        return err

    @contextlib.contextmanager
    def scrubbing(self) -> Iterator[None]:
        """Within the block, warnings are shown and errors raised with ids replaced."""
        if not self.active:
            yield
            return
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            shown(self.text(str(message)), category, filename, lineno, file, line)

        warnings.showwarning = show
        try:
            yield
        except MrParotidError as err:
            raise self.error(err) from None
        finally:
            warnings.showwarning = shown
