"""Replaying a run from its record gives exactly the stored numbers (CPU training is deterministic)."""
from __future__ import annotations

import json

import pytest

from mmgraph.bench.__main__ import main as bench_main
from mmgraph.bench.replay import RecordError, provenance_warnings, replay

from .conftest import edit_json, make_run


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    folder = tmp_path_factory.mktemp("replay") / "run"
    make_run(folder, "model=sage", "seeds=[3]")
    return folder / "runs" / "seed_3.json"


def test_replay_matches_the_record_exactly(record, tmp_path):
    result = replay(record, output_dir=tmp_path / "again")
    stored = json.loads(record.read_text())
    assert result.seed == 3 and result.matches
    assert {(c.metric, c.field) for c in result.comparisons} == \
        {(m, f) for m in stored["selected"] for f in ("epoch", "val", "test")} | {("(run)", "epochs")}
    for c in result.comparisons:
        want = stored["selected"][c.metric][c.field] if c.metric != "(run)" else stored["epochs"]
        assert c.stored == want and c.replayed == want
    again = json.loads((tmp_path / "again" / "runs" / "seed_3.json").read_text())
    assert again["config"] == stored["config"] | {"seeds": [3]}
    assert not [w for w in result.warnings if "differ" in w]   # same commit, packages, input, split, device


def test_cli_replay_exit_status(record, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_main(["--replay", str(record)])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and "all selected values match exactly" in out
    assert "| accuracy | test |" in out

    changed = tmp_path / "seed_3.json"
    changed.write_text(record.read_text())
    edit_json(changed, lambda r: r["selected"]["accuracy"].update(test=r["selected"]["accuracy"]["test"] + 0.01))
    with pytest.raises(SystemExit) as exc:
        bench_main(["--replay", str(changed), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert exc.value.code == 1 and "1 of 7 values differ" in out and "| accuracy | test |" in out and "**no**" in out
    assert (tmp_path / "out" / "runs" / "seed_3.json").is_file()


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ('{"seed": 1, "config": {', "is not valid JSON"),
    ("", "is empty"),
    ('{"dataset": "x", "summary": {}}', "is not a seed record: no config, seed, selected (a summary.json?"),
])
def test_cli_replay_bad_records_are_one_line_errors(tmp_path, capsys, content, message):
    path = tmp_path / "seed_0.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as exc:
        bench_main(["--replay", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1
    assert err[0].startswith("mmgraph.bench: error: record ") and message in err[0]
    with pytest.raises(RecordError):
        replay(path)


def test_provenance_warnings_name_what_changed():
    old = {"git": {"commit": "a" * 40, "dirty": False}, "versions": {"torch": "2.13.0", "numpy": "2.4.6"},
           "input": {"fingerprint": "f1"}, "task": {"split": {"fingerprint": "s1"}}, "device": "cpu"}
    new = {"git": {"commit": "b" * 40, "dirty": True}, "versions": {"torch": "2.14.0", "numpy": "2.4.6"},
           "input": {"fingerprint": "f2"}, "task": {"split": {"fingerprint": "s1"}}, "device": "cpu"}
    assert provenance_warnings(old, old) == []
    assert provenance_warnings(old, new) == [
        f"git commit differs: record {'a' * 40}, now {'b' * 40}", "the checkout has uncommitted changes now",
        "package versions differ: torch 2.13.0 -> 2.14.0", "input fingerprint differs: record f1, now f2"]
