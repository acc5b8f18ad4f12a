"""``serve``'s settings: ``configs/serve.yaml`` ← ``--config FILE`` ← dotted overrides
(``--node.idle_s 10``) ← the short options (``--port``, ``--allow``, ``--send-to`` ...).

Validated before the node starts: an AE title of 1-16 printable characters, a port in 1..65535,
at least one allowed calling AE title, a destination ``AE@host:port``, TLS files that exist.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

from mrparotid.config import CONFIG_DIR, check_types, merge, parse_overrides, read_yaml_mapping, \
    resolve_config_path
from mrparotid.errors import ConfigError

SERVE_CONFIG = CONFIG_DIR / "serve.yaml"
EXAMPLE = "see configs/serve.yaml for the layout"
DESTINATION = re.compile(r"^(?P<ae>[^@]{1,16})@(?P<host>\[[0-9a-fA-F:.]+\]|[^:@\[\]]+):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class Destination:
    """Where results go: the called AE title, host and TCP port."""

    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def parse_destination(text: str) -> Destination:
    """``PACS@10.0.0.5:104`` (an IPv6 host in brackets) → :class:`Destination`.

    Raises
    ------
    ConfigError
        Not of the form AE@host:port, or a port outside 1..65535.
    """
    m = DESTINATION.match(str(text or "").strip())
    if m is None or not 0 < int(m["port"]) < 65536:
        raise ConfigError(f"send.to is {text!r}, not AE@host:port",
                          fix="e.g. --send-to PACS@10.0.0.5:104 (the PACS's AE title, host and port)")
    return Destination(check_ae(m["ae"], "send.to"), m["host"].strip("[]"), int(m["port"]))


def check_ae(title: str, key: str) -> str:
    """An AE title: 1-16 characters, printable ASCII, no backslash, not only spaces."""
    title = str(title)
    if not (0 < len(title.strip()) and len(title) <= 16 and title.isascii() and title.isprintable()
            and "\\" not in title):
        raise ConfigError(f"{key} is {title!r}, not an AE title",
                          fix="use 1-16 printable ASCII characters, e.g. MRPAROTID")
    return title.strip()


def load_serve_config(config: str | Path | None = None, overrides: list[str] | None = None,
                      short: dict | None = None) -> dict:
    """The resolved, validated serve config (``short``: dotted key → value of a short option
    given on the command line).

    Raises
    ------
    ConfigError
        Unknown key, wrong type, bad AE title, port, destination or TLS file, no allowed AE title,
        or no ``out`` folder.
    """
    defaults = read_yaml_mapping(SERVE_CONFIG, example=EXAMPLE)
    cfg = copy.deepcopy(defaults)
    if config is not None:
        cfg = merge(cfg, read_yaml_mapping(resolve_config_path(config), example=EXAMPLE))
    if overrides:
        cfg = merge(cfg, parse_overrides(list(overrides)))
    for dotted, value in (short or {}).items():
        if value is None:
            continue
        node = cfg
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    if isinstance(cfg["node"]["allow"], str):
        cfg["node"]["allow"] = [cfg["node"]["allow"]]
    check_types(cfg, defaults)
    validate_serve(cfg)
    return cfg


def validate_serve(cfg: dict) -> None:
    """Range and presence checks (see the module docstring); fills ``send.ae_title``."""
    node, send, tls = cfg["node"], cfg["send"], cfg["tls"]
    node["ae_title"] = check_ae(node["ae_title"], "node.ae_title")
    node["allow"] = [check_ae(a, "node.allow") for t in node["allow"] for a in str(t).split(",") if a]
    send["ae_title"] = check_ae(send["ae_title"] or node["ae_title"], "send.ae_title")
    checks = [
        (0 < node["port"] < 65536, f"node.port is {node['port']}", "use 1..65535, e.g. --port 11112"),
        (bool(node["allow"]), "no calling AE title is allowed to send studies (node.allow is empty)",
         "name the modality or PACS that sends, e.g. --allow MODALITY1 (repeatable)"),
        (node["idle_s"] > 0, "node.idle_s must be > 0", "e.g. --idle-s 30"),
        (send["to"] is not None, "no destination for the results (send.to)",
         "e.g. --send-to PACS@10.0.0.5:104"),
        (isinstance(send["retries"], int) and send["retries"] >= 0, "send.retries must be >= 0",
         "e.g. --send.retries 5"),
        (send["backoff_s"] >= 0 and send["timeout_s"] > 0,
         "send.backoff_s must be >= 0 and send.timeout_s > 0", "e.g. 2 and 30"),
        (cfg["out"] is not None, "serve needs --out DIR (queue, results, failed studies)",
         "e.g. --out /var/lib/mrparotid"),
    ]
    for ok, message, fix in checks:
        if not ok:
            raise ConfigError(message, fix=fix)
    parse_destination(send["to"])
    if tls["enabled"]:
        for key in ("cert", "key", "ca"):
            if tls[key] is not None and not Path(tls[key]).is_file():
                raise ConfigError(f"tls.{key} file not found", path=tls[key],
                                  fix="give the PEM file's path")
        if tls["cert"] is None or tls["key"] is None:
            raise ConfigError("tls.enabled needs tls.cert and tls.key",
                              fix="e.g. --tls.cert node.pem --tls.key node.key [--tls.ca ca.pem]")
