"""Progress on stderr: a live tqdm bar on a terminal; without one (a log file, a pipe, CI) one
plain line when a stage ends, never ``\\r``-redrawn fragments.

``progress_bar(items, desc=..., unit=...)`` is used like ``tqdm(items, ...)``. The training
loops' per-epoch lines are :mod:`mrparotid.training.progress`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO


def on_terminal(stream: IO | None = None) -> bool:
    """True when ``stream`` (default: stderr) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):      # no isatty, or a closed stream
        return False


class StageLine:
    """Iterates ``items`` and, when they are done (or :meth:`close` is called), writes one line
    ``<desc>: <n> <unit>(s) in <s> s`` to stderr; silent when ``enabled`` is False. Takes
    tqdm's ``set_postfix_str`` and ``update`` (the postfix is not shown: it is live detail)."""

    def __init__(self, items: Iterable | None = None, *, desc: str = "", unit: str = "it",
                 total: int | None = None, enabled: bool = True, stream: IO | None = None):
        self.items, self.desc, self.unit, self.enabled = items, desc, unit, enabled
        self.total = total if total is not None else _length(items)
        self.stream, self.n, self.start, self.closed = stream, 0, time.monotonic(), False

    def __iter__(self) -> Iterator:
        for item in self.items if self.items is not None else ():
            yield item
            self.n += 1
        self.close()

    def __enter__(self) -> "StageLine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, *args, **kwargs) -> None:
        """Ignored: a log keeps the stage's line only."""

    def set_description(self, desc: str, *args, **kwargs) -> None:
        self.desc = desc

    def close(self) -> None:
        """Write the stage's line (once)."""
        if self.closed:
            return
        self.closed = True
        if not self.enabled:
            return
        done = f"{self.n}" if self.total in (None, self.n) else f"{self.n} of {self.total}"
        stream = sys.stderr if self.stream is None else self.stream
        print(f"{self.desc or 'done'}: {done} {self.unit}(s) in {time.monotonic() - self.start:.1f} s",
              file=stream, flush=True)


def progress_bar(items: Iterable | None = None, *, desc: str = "", unit: str = "it",
                 total: int | None = None, enabled: bool = True):
    """A tqdm bar over ``items`` on a terminal; otherwise a :class:`StageLine` (one line when
    done). ``enabled`` False shows nothing."""
    if enabled and on_terminal():
        from tqdm.auto import tqdm

        return tqdm(items, desc=desc, unit=unit, total=total)
    return StageLine(items, desc=desc, unit=unit, total=total, enabled=enabled)


def _length(items) -> int | None:
    try:
        return len(items)
    except TypeError:
        return None
