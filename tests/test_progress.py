"""Progress: a bar on a terminal, plain lines in a log, nothing when disabled."""
from __future__ import annotations

import io
import re

from mmgraph.progress import Progress, on_terminal, track


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


LINE = re.compile(r"^count: (\d+)/100 item \((\d+)%\), [\d.]+ (item/s|s/item), \d+:\d\d$")


def test_a_terminal_gets_a_tqdm_bar():
    out = Terminal()
    with Progress(100, "count", unit="item", stream=out) as bar:
        assert bar.mode == "bar"
        for _ in range(100):
            bar.update()
    text = out.getvalue()
    assert "\r" in text and "100/100" in text and "count" in text


def test_a_log_gets_a_plain_line_every_tenth_and_no_bar():
    out = io.StringIO()
    with Progress(100, "count", unit="item", stream=out) as bar:
        assert bar.mode == "lines"
        for _ in range(100):
            bar.update()
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert [int(LINE.match(line).group(1)) for line in lines] == list(range(10, 101, 10)), text


def test_lines_go_to_stderr_when_it_is_not_a_terminal(capsys):
    with Progress(4, "count", unit="item") as bar:  # pytest's captured stderr is no terminal
        bar.update(3)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("count: 3/4 item (75%), ") and "\r" not in captured.err


def test_a_resumed_task_counts_from_where_it_was_and_the_last_line_closes_it():
    out = io.StringIO()
    with Progress(100, "count", unit="item", initial=37, stream=out) as bar:
        bar.update(5)   # 42: less than a tenth since the start, no line yet
        assert out.getvalue() == ""
        bar.update(10)  # 52
        bar.update(3)   # 55: the last line
    assert [LINE.match(line).group(1) for line in out.getvalue().splitlines()] == ["52", "55"]


def test_lines_by_time_and_postfix_and_unknown_total():
    out = io.StringIO()
    bar = Progress(None, "epochs", unit="epoch", stream=out, interval=0.0)
    bar.set_postfix(loss="0.1234")
    bar.update()
    bar.update()
    bar.close()
    bar.close()  # closing twice writes nothing more
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert re.match(r"^epochs: 2 epoch, [\d.]+ (epoch/s|s/epoch), \d+:\d\d, loss=0\.1234$", lines[1]), lines


def test_disabled_or_auto_off_a_terminal_writes_nothing():
    for enabled, stream in ((False, Terminal()), (False, io.StringIO()), (None, io.StringIO())):
        with Progress(10, "count", enabled=enabled, stream=stream) as bar:
            bar.update(10)
        assert bar.mode == "off" and stream.getvalue() == "", (enabled, type(stream))
    auto = Terminal()
    with Progress(10, "count", enabled=None, stream=auto) as bar:
        assert bar.mode == "bar"


def test_track_yields_every_item():
    out = io.StringIO()
    assert list(track(range(20), "count", unit="item", stream=out)) == list(range(20))
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1].startswith("count: 20/20 item (100%)")


def test_on_terminal_survives_odd_streams():
    closed = io.StringIO()
    closed.close()
    assert not on_terminal(closed) and not on_terminal(object()) and on_terminal(Terminal())
