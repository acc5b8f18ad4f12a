"""``mrparotid serve --status``: what the node's folder holds, read from disk (the node need not
run): whether a node holds the folder, the studies being received, processed and sent, the last
results and the failures with their reasons. Studies are named by key, never by an identifier."""

from __future__ import annotations

import fcntl
import json
import time
from pathlib import Path

from mrparotid.errors import ConfigError
from mrparotid.serve.node import LOCK_FILE, summary_line
from mrparotid.serve.queue import STATES


def node_running(out: Path) -> str | None:
    """The pid text of the node holding ``out``'s lock, None when no node runs there."""
    lock = out / LOCK_FILE
    if not lock.is_file():
        return None
    with open(lock, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            return fh.read().strip() or "?"
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def status(out: str | Path, *, last: int = 10) -> dict:
    """The folder's state as a dict (``running``, ``incoming``, ``processing``, ``outbox``,
    ``done`` count and the ``last`` summaries, ``failed`` with reasons).

    Raises
    ------
    ConfigError
        ``out`` is not a serve folder.
    """
    out = Path(out)
    if not all((out / s).is_dir() for s in STATES):
        raise ConfigError("not a serve folder (no incoming/, processing/, outbox/, done/, failed/)",
                          path=out, fix="give the --out folder of 'mrparotid serve'")
    now = time.time()
    incoming = []
    for study in sorted(p for p in (out / "incoming").iterdir() if p.is_dir()):
        files = list(study.glob("*.dcm"))
        newest = max((f.stat().st_mtime for f in files), default=now)
        incoming.append({"key": study.name, "instances": len(files), "idle_s": round(now - newest, 1)})
    done = sorted((p for p in (out / "done").iterdir() if p.is_dir()),
                  key=lambda p: p.stat().st_mtime)
    return {"folder": str(out), "running": node_running(out), "incoming": incoming,
            "processing": [p.name for p in sorted((out / "processing").iterdir()) if p.is_dir()],
            "outbox": [p.name for p in sorted((out / "outbox").iterdir()) if p.is_dir()],
            "done": len(done), "last": [_read(p / "summary.json") for p in done[-last:]],
            "failed": [{"job": p.name, **_read(p / "reason.json")}
                       for p in sorted((out / "failed").iterdir()) if p.is_dir()]}


def status_text(s: dict) -> str:
    """:func:`status` as a few lines for the terminal."""
    lines = [f"mrparotid serve folder {s['folder']}: "
             + (f"a node is running (pid {s['running']})" if s["running"] else "no node running")]
    lines.append(f"receiving: {len(s['incoming'])} study(ies)" + "".join(
        f"\n  {i['key']}: {i['instances']} instances, last {i['idle_s']:.0f} s ago" for i in s["incoming"]))
    lines.append(f"processing: {len(s['processing'])}" + "".join(f"\n  {j}" for j in s["processing"]))
    lines.append(f"to send: {len(s['outbox'])}" + "".join(f"\n  {j}" for j in s["outbox"]))
    lines.append(f"done: {s['done']}" + (f" (last {len(s['last'])}):" if s["last"] else ""))
    for summary in s["last"]:
        if summary.get("key"):
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(summary.get("done_at", 0)))
            lines.append(f"  {when} {summary_line(summary)}")
    lines.append(f"failed: {len(s['failed'])}" + "".join(
        f"\n  {f['job']} ({f.get('stage', '?')}): {f.get('reason', '?')}" for f in s["failed"]))
    if s["failed"]:
        lines.append("  to try a failed study again: move failed/<job> to incoming/ (inference "
                     "failures) or to outbox/ (send failures) and start the node")
    return "\n".join(lines)
