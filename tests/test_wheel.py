"""An installed wheel runs its own runner: configs inside the package, data in the user cache.

The wheel is built from a copy of the checkout's sources (so no ``build/`` or ``*.egg-info``
lands in the checkout), installed with ``pip install --no-deps --target``, and run from a
temporary folder with ``PYTHONPATH`` pointing at the installed copy.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

from mmgraph import paths
from mmgraph.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
# what the build reads: pyproject.toml + setup.py, the readme and licence they name, the sources
SOURCES = ["pyproject.toml", "setup.py", "README.md", "LICENSE", "mmgraph", "configs"]
GIT = shutil.which("git")


# ---------------------------------------------------------------------------------------------
# paths: checkout versus installed layout (in-process)
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def installed_layout(tmp_path, monkeypatch):
    """paths as if mmgraph were installed in ``site``: a folder that, like a real site-packages,
    may hold a ``datasets/`` package (Hugging Face's) and sit in an unrelated git repository."""
    site = tmp_path / "site"
    (site / "datasets").mkdir(parents=True)
    (site / ".git").mkdir()
    (site / "mmgraph" / "_configs").mkdir(parents=True)
    (site / "mmgraph" / "_configs" / "config.yaml").write_text("runs: 1\n")
    monkeypatch.setattr(paths, "_CHECKOUT", site)
    monkeypatch.setattr(paths, "_SHIPPED_CONFIGS", site / "mmgraph" / "_configs")
    for var in ("MMGRAPH_DATA", "MMGRAPH_CONFIG_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return site


def test_checkout_layout(monkeypatch):
    for var in ("MMGRAPH_DATA", "MMGRAPH_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    assert paths.source_checkout() == ROOT
    assert paths.config_dir() == (ROOT / "configs").resolve()
    assert paths.default_data_root() == ROOT / "datasets"
    if (ROOT / ".git").exists():
        assert paths.repo_root() == ROOT


def test_installed_layout(installed_layout, tmp_path, monkeypatch):
    site = installed_layout
    assert paths.source_checkout() is None
    assert paths.config_dir() == (site / "mmgraph" / "_configs").resolve()
    assert paths.default_data_root() == tmp_path / "home" / ".cache" / "mmgraph"
    assert paths.repo_root() is None  # site/.git is not mmgraph's repository
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.default_data_root() == tmp_path / "xdg" / "mmgraph"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # the XDG spec: ignore relative paths
    assert paths.default_data_root() == tmp_path / "home" / ".cache" / "mmgraph"
    monkeypatch.setenv("MMGRAPH_DATA", str(tmp_path / "data"))
    assert paths.default_data_root() == tmp_path / "data"
    other = tmp_path / "configs"
    other.mkdir()
    (other / "config.yaml").write_text("runs: 2\n")
    monkeypatch.setenv("MMGRAPH_CONFIG_DIR", str(other))
    assert paths.config_dir() == other.resolve()


def test_missing_configs_is_one_line(installed_layout, tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "_SHIPPED_CONFIGS", tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=r"^no config\.yaml in .*nowhere; ") as info:
        paths.config_dir()
    assert "\n" not in str(info.value)
    monkeypatch.setenv("MMGRAPH_CONFIG_DIR", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match=r"^no config\.yaml in .*empty; set MMGRAPH_CONFIG_DIR"):
        paths.config_dir()


# ---------------------------------------------------------------------------------------------
# the wheel, built and installed
# ---------------------------------------------------------------------------------------------

def _pip(*args: str, cwd: Path) -> None:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    out = subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, f"pip {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"


def _build_args() -> list[str]:
    """Offline when this environment's setuptools meets pyproject's build requirement (it does
    where ``make install`` ran: torch pulls a recent setuptools); else pip fetches it from PyPI."""
    try:
        major = int(version("setuptools").split(".")[0])
    except Exception:  # noqa: BLE001 - no setuptools here: let pip isolate the build
        major = 0
    return ["--no-deps", "--no-build-isolation"] if major >= 77 else ["--no-deps"]


def _junk() -> set[str]:
    return {p.name for p in ROOT.iterdir() if p.name in ("build", "dist") or p.name.endswith(".egg-info")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel built from the checkout's sources, installed into a ``--target`` folder that is
    also an unrelated git repository with a commit of its own."""
    tmp = tmp_path_factory.mktemp("wheel")
    junk_before = _junk()
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    _pip("wheel", *_build_args(), "-w", str(tmp / "dist"), str(src), cwd=tmp)
    (wheel,) = (tmp / "dist").glob("mmgraph-*.whl")
    assert _junk() == junk_before, "building the wheel left files in the checkout"

    configs = sorted(str(p.relative_to(ROOT / "configs")) for p in (ROOT / "configs").rglob("*.yaml"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert sorted(n.split("mmgraph/_configs/", 1)[1] for n in names if n.startswith("mmgraph/_configs/")) == configs
    assert "mmgraph/zeroshot/imagenet_labels.txt" in names
    assert not any(n.startswith("configs/") for n in names)  # no top-level `configs` package

    # the sdist carries configs/ too, and a wheel built from it equals the direct one
    sdist = tmp / "sdist"
    code = f"from setuptools import build_meta as b; print(b.build_sdist({str(sdist)!r}))"
    out = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    (tarball,) = sdist.glob("mmgraph-*.tar.gz")
    with tarfile.open(tarball) as tf:
        tf.extractall(sdist, filter="data")
    _pip("wheel", *_build_args(), "-w", str(sdist / "dist"), str(sdist / tarball.name[:-len(".tar.gz")]), cwd=tmp)
    (again,) = (sdist / "dist").glob("mmgraph-*.whl")
    with zipfile.ZipFile(again) as zf:
        assert sorted(zf.namelist()) == sorted(names)

    site = tmp / "site"
    _pip("install", "--no-deps", "--target", str(site), str(wheel), cwd=tmp)
    if GIT:
        git = [GIT, "-C", str(site), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
        subprocess.run([GIT, "init", "-q", str(site)], check=True, timeout=60)
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "unrelated"], check=True, timeout=60)
    return site


def _env(site: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MMGRAPH_DATA", "MMGRAPH_CONFIG_DIR", "XDG_CACHE_HOME", "PYTHONPATH")}
    return {**env, "PYTHONPATH": str(site), "HOME": str(home)}


def test_installed_wheel_runs_the_runner(installed, tmp_path):
    site, home, work = installed, tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = _env(site, home)
    cache = home / ".cache" / "mmgraph"

    probe = ("import json, mmgraph, mmgraph.paths as p; print(json.dumps({'module': mmgraph.__file__, "
             "'configs': str(p.config_dir()), 'data': str(p.default_data_root()), "
             "'repo': p.repo_root() and str(p.repo_root())}))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=work, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(seen["module"]).resolve().is_relative_to(site.resolve())  # the installed copy
    assert Path(seen["configs"]) == (site / "mmgraph" / "_configs").resolve()
    assert Path(seen["data"]) == cache and seen["repo"] is None

    out = subprocess.run([sys.executable, "-m", "mmgraph.bench", "dataset=synthetic", "model=gcn", "runs=1",
                          "trainer.max_epochs=1"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| synthetic | gcn | text+image | 1 |" in out.stdout
    (record,) = (work / "outputs").glob("synthetic/gcn/*/runs/seed_42.json")
    record = json.loads(record.read_text())
    assert record["config"]["paths"]["data_root"] == str(cache)
    assert record["git"]["commit"] is None  # not the commit of the repository around site/

    # a run that writes data: MiniLM text features of a small synthetic graph, cached under it
    out = subprocess.run([sys.executable, "-m", "mmgraph.bench", "dataset=synthetic", "model=gcn", "runs=1",
                          "trainer.max_epochs=1", "trainer.progress=false", "features.encoders.text=minilm",
                          "dataset.loader.num_nodes=200", "dataset.loader.num_edges=1000"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| synthetic | gcn |" in out.stdout
    assert list(cache.glob("features/synthetic/item.text.minilm.*/values.npy"))
