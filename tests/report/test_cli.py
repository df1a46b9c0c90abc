"""``python -m mmgraph.report``: output files, stdout/stderr, and one-line errors."""
from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys

import pytest

from mmgraph.report.__main__ import main


def test_default_output_folder_and_stdout(runs_root, tmp_path, capsys):
    root = tmp_path / "runs"
    shutil.copytree(runs_root, root)
    assert main([str(root), "--no-plots", "--metrics", "accuracy"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("| model | synthetic accuracy | synthetic_b accuracy |")
    assert out.strip() + "\n" == (root / "report" / "table.md").read_text().strip() + "\n"
    assert "read 8 run folders (16 seed records)" in err and "wrote 3 files" in err
    assert not [ln for ln in err.splitlines() if not ln.startswith("mmgraph.report: ")]


def test_the_module_runs_as_a_program(runs_root, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "mmgraph.report", str(runs_root), "--out", str(tmp_path),
                           "--no-plots"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "| gcn |" in done.stdout or "| gcn † |" in done.stdout
    assert (tmp_path / "table.tex").is_file()


def one_line_error(capsys, code, status):
    assert code == status
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert "Traceback" not in err and all(ln.startswith("mmgraph.report: ") for ln in lines)
    errors = [ln for ln in lines if ln.startswith("mmgraph.report: error: ")]
    assert errors == lines[-1:], err   # progress and warnings may come first; one error line, last
    return errors[0]


def test_missing_runs_dir_is_a_one_line_error(tmp_path, capsys):
    line = one_line_error(capsys, main([str(tmp_path / "nope")]), 2)
    assert "does not exist" in line


def test_no_summaries_says_what_was_searched(tmp_path, capsys):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "notes.json").write_text("{}")
    line = one_line_error(capsys, main([str(tmp_path)]), 1)
    assert str(tmp_path.resolve()) in line and "summary.json" in line and "subfolders" in line and "none found" in line


def test_unknown_metric_and_bad_usage(runs_root, tmp_path, capsys):
    line = one_line_error(capsys, main([str(runs_root), "--out", str(tmp_path), "--metrics", "bleu"]), 2)
    assert "unknown metric 'bleu'" in line and "accuracy, macro_f1" in line
    with pytest.raises(SystemExit) as exc:
        main(["--frobnicate"])
    one_line_error(capsys, exc.value.code, 2)


def test_corrupt_json_is_counted_skipped_and_never_a_crash(runs_root, tmp_path, capsys):
    root = tmp_path / "runs"
    shutil.copytree(runs_root, root)
    text = (root / "synthetic/gcn_b/summary.json").read_text()
    (root / "synthetic/gcn_b/summary.json").write_text(text[: len(text) // 2])        # half-written
    (root / "synthetic/mlp_text/runs/seed_1.json").write_text("")                      # empty
    (root / "synthetic_b/mlp/runs/seed_0.json").write_text("[1, 2]")                   # not a record
    assert main([str(root), "--out", str(tmp_path / "out"), "--no-plots"]) == 0
    out, err = capsys.readouterr()
    warn = [ln for ln in err.splitlines() if "unreadable JSON" in ln]
    assert len(warn) == 1 and "skipped 3 unreadable JSON files" in warn[0]
    assert "synthetic/gcn_b/summary.json: not valid JSON" in warn[0]
    assert "synthetic/mlp_text/runs/seed_1.json: empty" in warn[0]
    # the rest is still reported: gcn on synthetic from gcn_a alone, mlp [text] from seed 0 alone
    rows = {(r["row"].rstrip(" †"), r["dataset"], r["metric"]): r
            for r in csv.DictReader(io.StringIO((tmp_path / "out" / "table.csv").read_text()))}
    assert rows[("gcn", "synthetic", "accuracy")]["seeds"] == "0 1"
    assert rows[("mlp [text]", "synthetic", "accuracy")]["seeds"] == "0"
    assert rows[("mlp [text+image]", "synthetic_b", "accuracy")]["seeds"] == "1"
    assert "| mlp [text]" in out


def test_only_corrupt_summaries_is_an_error(runs_root, tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "summary.json").write_text('{"dataset": "synthetic", ')
    line = one_line_error(capsys, main([str(tmp_path), "--no-plots"]), 1)
    assert "1 found, none readable" in line
