"""Progress of a long loop, readable both on a terminal and in a log file.

:class:`Progress` counts the steps of one task and shows them in the form the reader can use:

- on a terminal (the stream is a TTY): a tqdm bar, redrawn in place;
- elsewhere (a redirected log, a pipe, CI): a plain line each time about another 10 % is done,
  or a minute has passed, with the count, the total, the rate and the time so far::

      image features (efficientnet_lite0): 866/4,284 item (20%), 21.3 item/s, 0:40

  and a last line when the task ends;
- nothing when disabled.

``enabled`` picks between them: ``True`` shows a bar or lines, ``None`` a bar on a terminal and
nothing elsewhere (tqdm's ``disable=None``; for library defaults), ``False`` nothing.

>>> with Progress(len(batches), "train", unit="batch") as bar:   # doctest: +SKIP
...     for batch in batches:
...         loss = step(batch)
...         bar.update()
...         bar.set_postfix(loss=f"{loss:.4f}")
>>> for path in track(paths, "reading files", unit="file"):      # doctest: +SKIP
...     read(path)
"""
from __future__ import annotations

import math
import sys
import time
from typing import IO, Any, Iterable, Iterator, TypeVar

__all__ = ["Progress", "track", "on_terminal"]

T = TypeVar("T")


def on_terminal(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal (a closed stream, or one without ``isatty``, is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _clock(seconds: float) -> str:
    """``75`` -> ``1:15``, ``3725`` -> ``1:02:05``."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts the steps of one task: a bar on a terminal, a plain line now and then elsewhere.

    Args:
        total: steps in all (``None``: unknown; lines then come by time only).
        desc: what is counted; starts the bar and every line.
        unit: the name of one step.
        initial: steps already done (a resumed task); the rate counts only the new ones.
        enabled: ``True``: a bar on a terminal, lines elsewhere; ``None``: a bar on a terminal,
            nothing elsewhere; ``False``: nothing.
        leave: keep the finished bar on the terminal.
        stream: where to write (default: ``sys.stderr``).
        every: off a terminal, a line each time this share of ``total`` more is done ...
        interval: ... or this many seconds have passed since the last line.
    """

    def __init__(self, total: int | None, desc: str, *, unit: str = "it", initial: int = 0,
                 enabled: bool | None = True, leave: bool = True, stream: IO[str] | None = None,
                 every: float = 0.1, interval: float = 60.0):
        self.stream = sys.stderr if stream is None else stream
        self.total, self.desc, self.unit, self.n = total, desc, unit, int(initial)
        terminal = enabled is not False and on_terminal(self.stream)
        #: ``"bar"``, ``"lines"`` or ``"off"``
        self.mode = "bar" if terminal else "lines" if enabled else "off"
        self._bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, initial=self.n, leave=leave,
                             file=self.stream, dynamic_ncols=True)
        self._step = max(1, math.ceil(every * total)) if total else None
        self._interval = interval
        self._start = self._last_time = time.monotonic()
        self._initial = self._last_n = self.n
        self._postfix: dict[str, Any] = {}

    def update(self, n: int = 1) -> None:
        """``n`` more steps are done."""
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "lines":
            now = time.monotonic()
            if (self._step is not None and self.n - self._last_n >= self._step) or \
                    now - self._last_time >= self._interval:
                self._line(now)

    def set_postfix(self, **values: Any) -> None:
        """Values shown after the count (``loss=0.1234``), on the bar or on the next line."""
        self._postfix = values
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)

    def close(self) -> None:
        """End the task: close the bar, or write the last line if it says something new."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.mode == "lines" and self.n != self._last_n:
            self._line(time.monotonic())
        self.mode = "off"

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _line(self, now: float) -> None:
        count = f"{self.n:,}/{self.total:,} {self.unit} ({100 * self.n / self.total:.0f}%)" if self.total \
            else f"{self.n:,} {self.unit}"
        elapsed = now - self._start
        rate = (self.n - self._initial) / elapsed if elapsed > 0 else 0.0
        speed = f"{rate:.1f} {self.unit}/s" if rate >= 1 or rate == 0 else f"{1 / rate:.1f} s/{self.unit}"
        extra = "".join(f", {k}={v}" for k, v in self._postfix.items())
        print(f"{self.desc}: {count}, {speed}, {_clock(elapsed)}{extra}", file=self.stream, flush=True)
        self._last_n, self._last_time = self.n, now


def track(iterable: Iterable[T], desc: str, *, total: int | None = None, **kwargs: Any) -> Iterator[T]:
    """The items of ``iterable``, one :class:`Progress` step each (``total`` defaults to its
    ``len``); ``kwargs`` go to :class:`Progress`."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(total, desc, **kwargs) as bar:
        for item in iterable:
            yield item
            bar.update()
