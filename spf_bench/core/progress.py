"""One progress policy for every long command: training, the lab, triple builds, runs, reports.

Every progress bar of the suite is made by :func:`progress_bar` (tqdm underneath), so one
switch governs all of them:

- ``--no-progress`` on a command (or :func:`set_enabled`) hides every bar, the ones of the
  trainings a command starts included;
- the ``SPF_PROGRESS`` environment variable chooses how bars are drawn: ``auto`` (default)
  draws a live bar on a terminal and, when the output is a file or a pipe, a plain line at
  most every ``SPF_PROGRESS_INTERVAL`` seconds (default 30) instead of tqdm's carriage-return
  redraws, which fill a log with thousands of overwritten lines; ``bar`` and ``lines`` force
  one or the other; ``off`` hides the bars like ``--no-progress``.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterable, Iterator, TextIO

from spf_bench.core.errors import SpfError

ENV_MODE, ENV_INTERVAL = "SPF_PROGRESS", "SPF_PROGRESS_INTERVAL"
MODES = ("auto", "bar", "lines", "off")
DEFAULT_LINE_INTERVAL_S = 30.0

_enabled = True


def set_enabled(enabled: bool) -> None:
    """Show (True) or hide (False) every progress bar made from now on in this process."""
    global _enabled
    _enabled = bool(enabled)


def enabled() -> bool:
    return _enabled


@contextmanager
def progress_shown(shown: bool) -> Iterator[None]:
    """Within the block, bars are hidden when ``shown`` is False; the previous setting returns after."""
    before = _enabled
    set_enabled(before and shown)
    try:
        yield
    finally:
        set_enabled(before)


def mode(stream: TextIO | None = None) -> str:
    """How bars are drawn on ``stream`` now: ``bar``, ``lines`` or ``off``."""
    if not _enabled:
        return "off"
    chosen = os.environ.get(ENV_MODE, "auto").strip().lower() or "auto"
    if chosen not in MODES:
        raise SpfError(f"{ENV_MODE} must be one of {', '.join(MODES)}, not '{chosen}'.")
    if chosen != "auto":
        return chosen
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return "bar" if isatty is not None and isatty() else "lines"


def line_interval() -> float:
    text = os.environ.get(ENV_INTERVAL, "").strip()
    try:
        value = float(text) if text else DEFAULT_LINE_INTERVAL_S
    except ValueError:
        raise SpfError(f"{ENV_INTERVAL} must be a number of seconds, not '{text}'.") from None
    return max(0.0, value)


class _LineWriter:
    """Turns tqdm's redraws (``\\r`` + the bar + padding) into one plain line per update.

    tqdm has no line-per-update mode of its own; its ``disable=None`` only hides bars off a
    terminal, which leaves a long job's log with no sign of life.
    """

    encoding = "ascii"

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.last = ""

    def write(self, text: str) -> int:
        for piece in text.replace("\r", "\n").split("\n"):
            piece = piece.strip()
            # tqdm redraws the finished bar once more when it closes: one line says it.
            if piece and piece != self.last:
                self.stream.write(piece + "\n")
                self.last = piece
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, file: TextIO | None = None, **kwargs):
    """A tqdm bar drawn as the process's progress policy says (see the module's docstring).

    ``enabled=False`` hides this bar alone (e.g. on every process but the main one).
    """
    stream = file if file is not None else sys.stderr
    how = mode(stream) if enabled else "off"
    if how == "off":
        from tqdm import tqdm

        return tqdm(iterable, disable=True, **kwargs)
    if how == "lines":
        from tqdm import tqdm

        interval = max(line_interval(), float(kwargs.get("mininterval", 0.1)))
        # maxinterval too: tqdm's monitor thread otherwise redraws a slow bar every 10 s.
        kwargs.update(file=_LineWriter(stream), ascii=True, ncols=100, dynamic_ncols=False,
                      mininterval=interval, maxinterval=max(interval, 10.0))
        return tqdm(iterable, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, file=stream, **kwargs)
