"""Every bad value gets one line: each key of the composed configs, set to a value of the wrong
kind, either runs normally (the value is legitimately accepted) or ends with exactly one line
``mmgraph.bench: error: ...`` on stderr and exit status 1 or 2, never a traceback.

The cases run in-process (``mmgraph.bench.__main__.main``), each a tiny synthetic run.
"""
from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny runs: one torch thread (tests/conftest.py)

SMALL = ["dataset=synthetic", "dataset.loader.num_nodes=200", "dataset.loader.num_edges=800",
         "dataset.loader.text_dim=8", "dataset.loader.image_dim=8", "runs=1", "trainer.max_epochs=2",
         "trainer.progress=false", "device=cpu"]

# The composed config to walk and the keys walked (prefixes; "" = all). The default config (gcn,
# node classification, no fusion) is walked whole, the others only in the group they change.
# SmolLM2: only the keys its constructor (or the zero-shot task's) checks before any weights
# load (a value accepted there would load the model and generate, which takes a while); its
# generator, revision, chat_template and cache_file are free text (a Hub id, a path, a template).
SMOLLM2 = ["model=smollm2", "task.sample=2", "model.module.parse_embedding=false",
           "model.module.cache_file=null", "model.module.images_as_words=false"]
VARIANTS = {
    "default": ([], ("",)),
    "gat": (["model=gat"], ("model.",)),
    "link_prediction": (["task=link_prediction"], ("task.",)),
    "attention": (["fusion=attention"], ("fusion.",)),
    "lowrank": (["fusion=lowrank"], ("fusion.",)),
    "late": (["fusion=late"], ("fusion.",)),
    "smollm2": (SMOLLM2, ("task.", *(f"model.module.{k}" for k in (
        "kind", "dtype", "num_neighbors", "neighbor_mode", "neighbor_strategy", "images_as_words",
        "image_words_top_k", "cot", "max_new_tokens", "max_chars", "batch_size", "parse_embedding")))),
}

# Keys left alone, and why.
SKIP = {
    "dataset.name": "a label: names the output folder and the tables",
    "model.name": "a label: names the output folder and the tables",
    "features.cache_dir": "a path: any text is a valid folder name",
    "fusion.kind": "chosen by the fusion group (fusion=<name>), checked by FusionModel",
    "device": "checked on its own below (test_wrong_device_is_one_line)",
}
SKIP_PREFIXES = ("hydra.", "paths.")  # Hydra's own settings; paths are free text by nature

UNKNOWN = "no_such_name"


def wrong_values(value) -> list[str]:
    """Overrides of the wrong kind for a leaf whose default is ``value``."""
    if isinstance(value, bool):
        return ["maybe", "[1]"]                   # text, a list for a bool
    if isinstance(value, (int, float)):
        return ["abc", "[1]"]                     # text for a number, a list for a scalar
    if isinstance(value, str):
        return [UNKNOWN, "[abc]", "7"]            # an unknown name, a list, a number
    if isinstance(value, list):
        return ["7", "abc", "[abc]"]              # a number, text for a list, wrong elements
    if isinstance(value, dict):
        return ["abc"]                            # text for a group of keys
    return ["abc", "7", "[abc]"]                  # null: nothing says its kind; try each


def leaves(node, prefix: str = ""):
    """``(dotted key, default)`` for every key of ``node``; a nested group comes first as a whole."""
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if prefix:  # a top-level group is chosen by name (model=gat), not overridden
                yield name, value
            yield from leaves(value, f"{name}.")
        else:
            yield name, value


def skipped(key: str, value) -> bool:
    return (key in SKIP or key.startswith(SKIP_PREFIXES)
            or (isinstance(value, str) and "${" in value))  # interpolated: a path or a label


def cases() -> list[tuple[str, list[str]]]:
    from mmgraph.cli import compose
    from mmgraph.paths import config_dir

    out = []
    for variant, (group, walked) in VARIANTS.items():
        cfg = compose(config_dir(), [*SMALL, *group])
        tree = OmegaConf.to_container(cfg, resolve=False)
        for key, value in leaves(tree):
            if not key.startswith(walked) or skipped(key, value):
                continue
            out += [(f"{variant}:{key}={bad}", [*group, f"{key}={bad}"]) for bad in wrong_values(value)]
    return out


def run_main(argv: list[str], run_dir: Path, base: list[str] = SMALL) -> tuple[int, str, str]:
    """``python -m mmgraph.bench <base> <argv>`` in this process: (exit status, stdout, stderr)."""
    from mmgraph.bench.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    saved = list(sys.argv)
    status = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main([*base, *argv, f"hydra.run.dir={run_dir}"])
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved
    return status, out.getvalue(), err.getvalue()


def problem(status: int, stderr: str) -> str | None:
    """What is wrong with how a run ended, or None when it ran or ended with one line."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    if "Traceback" in stderr or "Error executing job" in stderr:
        return f"traceback (status {status}):\n{stderr}"
    if status == 0:
        return None
    if status not in (1, 2):
        return f"exit status {status}: {stderr}"
    if len(lines) != 1 or not lines[0].startswith("mmgraph.bench: error: "):
        return f"not one error line (status {status}):\n{stderr}"
    return None


CASES = cases()


@pytest.mark.parametrize("argv", [argv for _, argv in CASES], ids=[name for name, _ in CASES])
def test_bad_value_is_one_line_or_runs(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a value taken as a relative path lands here
    status, _, stderr = run_main(argv, tmp_path / "run")
    assert problem(status, stderr) is None, f"{' '.join(argv)}: {problem(status, stderr)}"


def test_the_walk_covers_the_groups():
    walked = {argv[-1].split("=")[0] for _, argv in CASES}
    for key in ("runs", "seeds", "dataset.loader.num_nodes", "dataset.split.seed", "task.batch_size",
                "model.module.hidden_channels", "model.module.heads", "trainer.lr", "features.storage",
                "fusion.fusion_dim", "task.num_neg_eval", "task.sample"):
        assert key in walked, key


@pytest.mark.parametrize("device", ["no_such_device", "[abc]", "7", "cuda:7"])
def test_wrong_device_is_one_line(device, tmp_path):
    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("a CUDA device exists here")
    status, _, stderr = run_main([f"device={device}"], tmp_path / "run")
    assert status == 2 and problem(status, stderr) is None, stderr
    assert "device" in stderr


@pytest.mark.parametrize("module, where", [("mmgraph.bench.__main__", "compose"),  # starting
                                           ("mmgraph.bench.runner", "fit")])        # training
def test_ctrl_c_is_one_line(module, where, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(f"{module}.{where}", interrupted)
    status, _, stderr = run_main([], tmp_path / "run")
    assert status == 130 and stderr == "mmgraph.bench: interrupted\n"


def test_seeds_of_text_is_one_line(tmp_path):
    status, _, stderr = run_main(["seeds=[a]"], tmp_path / "run")
    assert status == 2 and problem(status, stderr) is None
    assert "seeds must be a non-empty list of integers" in stderr


def test_unknown_modality_names_the_available_ones(openclipart_root, tmp_path):
    """Open Clip Art has raw text and images and no features yet: they are what is available."""
    argv = ["dataset=openclipart", f"paths.data_root={openclipart_root}", "dataset.loader.download=false",
            "features.modalities=[audio]", "runs=1", "device=cpu"]
    status, _, stderr = run_main(argv, tmp_path / "run", base=[])
    assert status == 2 and "Traceback" not in stderr, stderr
    assert stderr.splitlines()[-1] == ("mmgraph.bench: error: features.modalities: openclipart has no "
                                       "'audio' modality; available: image, text")
