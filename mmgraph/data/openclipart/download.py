"""Obtaining the Open Clip Art files: an extracted tree, the ``.deb`` files, or ``apt-get download``."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

from mmgraph.errors import DataError

#: Upstream version of the Open Clip Art Library in the Debian packages.
LIBRARY_VERSION = "0.18"
PACKAGES = ("openclipart-png", "openclipart-svg")


def tree_ok(path: Path) -> bool:
    """Whether ``path`` holds the extracted ``png/`` and ``svg/`` folders."""
    return (path / "png").is_dir() and (path / "svg").is_dir()


class Layout(NamedTuple):
    """What :func:`obtain` looks for: Debian packages that install one folder under ``usr/share``."""
    label: str                       # the data set's name in messages
    packages: tuple[str, ...]        # the .deb packages, all needed
    share: str                       # the folder the packages install, under usr/share
    tree_ok: Callable[[Path], bool]  # whether an extracted folder is complete
    contents: str                    # what tree_ok checks, in words ("png/ and svg/ folders")
    expect: str                      # what the packages must contain below share ("{png,svg}")


OPENCLIPART = Layout("Open Clip Art", PACKAGES, "openclipart", tree_ok,
                     "png/ and svg/ folders", "{png,svg}")


def _find_debs(debs: Path, packages: Sequence[str] = PACKAGES) -> dict[str, Path] | None:
    found = {}
    for pkg in packages:
        cands = sorted(debs.glob(f"{pkg}_*.deb")) if debs.is_dir() else []
        if not cands:
            return None
        found[pkg] = cands[-1]
    return found


def run_tool(cmd: list[str], cwd: Path, what: str, hint: str) -> None:
    """Run a command-line tool in ``cwd``; a failure is a one-line DataError naming ``what`` failed
    and ``hint`` (what to do)."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except OSError as exc:
        raise DataError(f"cannot run {cmd[0]} to {what} ({exc.strerror or exc}); {hint}") from exc
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        detail = lines[-1].strip() if lines else f"exit status {proc.returncode}"
        raise DataError(f"{' '.join(cmd[:2])} failed to {what} ({detail}); {hint}")


def obtain(base: Path, download: bool, system_tree: Path, layout: Layout = OPENCLIPART) -> Path:
    """The extracted folder (by default the one holding ``png/`` and ``svg/``), extracting or
    downloading if needed.

    Looks for ``<base>/usr/share/<layout.share>`` (``openclipart``), then ``system_tree`` (a
    Debian install), then the ``.deb`` files of ``layout.packages`` in ``<base>/debs`` (fetched
    there by ``apt-get download`` when ``download``), which are extracted into a temporary
    sibling and renamed into place.
    """
    packages = layout.packages
    tree = base / "usr" / "share" / layout.share
    if layout.tree_ok(tree):
        return tree
    if layout.tree_ok(system_tree):
        return system_tree
    debs_dir = base / "debs"
    hint = (f"place {' and '.join(f'{p}_*.deb' for p in packages)} in {debs_dir}, or extract "
            f"them yourself (dpkg-deb -x FILE {base}), or install them (apt-get install "
            f"{' '.join(packages)})")
    debs = _find_debs(debs_dir, packages)
    what = f"download the {layout.label} packages"
    if debs is None:
        if not download:
            raise DataError(f"{layout.label} files not found in {tree} or {system_tree} and "
                            f"download=false; {hint}")
        debs_dir.mkdir(parents=True, exist_ok=True)
        how = "run `apt-get update` first (needs the Debian/Ubuntu archive), or " + hint
        try:
            run_tool(["apt-get", "download", *packages], debs_dir, what, how)
        except DataError:
            if not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get")):
                raise
            # as root on a fresh machine the package lists may be empty or stale: refresh once
            run_tool(["apt-get", "update", "-qq"], debs_dir, "refresh the package lists", how)
            run_tool(["apt-get", "download", *packages], debs_dir, what, how)
        debs = _find_debs(debs_dir, packages)
        if debs is None:
            raise DataError(f"apt-get download left no .deb files in {debs_dir}; {hint}")
    if (base / "usr").exists():
        raise DataError(f"{base / 'usr'} exists but has no {layout.contents} under "
                        f"share/{layout.share}; delete it and retry")
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=base))
    try:
        for deb in debs.values():
            run_tool(["dpkg-deb", "-x", str(deb), str(tmp)], base, f"extract {deb.name}",
                 "the .deb may be corrupt: delete it and retry, or " + hint)
        if not layout.tree_ok(tmp / "usr" / "share" / layout.share):
            raise DataError(f"the packages in {debs_dir} do not contain usr/share/{layout.share}/"
                            f"{layout.expect}; {hint}")
        os.rename(tmp / "usr", base / "usr")   # atomic: a partial extraction is never visible
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tree


def tree_signature(tree: Path, folders: Sequence[str] = ("png", "svg")) -> str:
    """A cheap identity of the extracted tree: relative paths and sizes of all files in
    ``folders`` (``("",)``: the whole tree)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(str(tree.resolve()).encode())
    for kind in folders:
        top = tree / kind
        entries = []
        for dirpath, _dirs, files in os.walk(top):
            for f in files:
                p = os.path.join(dirpath, f)
                try:
                    entries.append(f"{os.path.relpath(p, top)}\0{os.stat(p).st_size}")
                except OSError:
                    entries.append(f"{os.path.relpath(p, top)}\0missing")
        for e in sorted(entries):
            h.update(e.encode())
            h.update(b"\n")
    return h.hexdigest()


def find_tree(base: Path, tree: str | Path | None, download: bool, system_tree: Path,
              layout: Layout = OPENCLIPART) -> Path:
    """The extracted tree a loader reads: ``tree`` when given (checked), else :func:`obtain`
    under ``base`` (created)."""
    if tree is not None:
        path = Path(tree).expanduser()
        if not layout.tree_ok(path):
            raise DataError(f"tree={path} has no {layout.contents}; point it at "
                            f".../usr/share/{layout.share}")
        return path
    base.mkdir(parents=True, exist_ok=True)
    return obtain(base, download, system_tree, layout)

