"""Tux Paint stamps: a fixture tree in the package's layout, and the real Debian package."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from mmgraph.data.tuxpaint import (LAYOUT, SYSTEM_TREE, english_description, load_tuxpaint)
from mmgraph.errors import DataError

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'


def _png(path: Path, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), colour).save(path)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def stamps(tmp_path: Path) -> Path:
    """``usr/share/tuxpaint/stamps`` with six stamps in five folders, and every kind of bad input."""
    t = tmp_path / "stamps"
    _png(t / "animals/birds/robin.png", (200, 0, 0))
    _png(t / "animals/birds/robin_mirror.png", (201, 0, 0))      # alternate image, not a stamp
    _write(t / "animals/birds/robin.txt", "A robin.\nfr.utf8=Un rouge-gorge.\n".encode())
    _write(t / "animals/birds/owl.svg", SVG)                       # SVG-only stamp
    _write(t / "animals/birds/owl.txt", b"An owl.\n")
    _write(t / "animals/birds/owl.dat", b"noflip\ncolorable\n")
    _png(t / "animals/cats/lion.png", (0, 200, 0))
    _write(t / "animals/cats/lion.txt",
           "\ufeff  A   big lion. \r\nde.utf8=Ein L\u00f6we.\r\n".encode())   # BOM, CRLF, spaces
    _png(t / "animals/cats/tiger.png", (0, 0, 200))                # no .txt
    _png(t / "food/apple.png", (9, 9, 9))
    _write(t / "food/apple.txt", "fr.utf8=Une pomme.\nde.utf8=Ein Apfel.\n".encode())  # no English
    _png(t / "food/pear.png", (8, 8, 8))
    _write(t / "food/pear.txt", b"A p\xe9ar.\n")                   # Latin-1: not UTF-8
    _write(t / "food/fruit/banana.ogg", b"OggS")                    # a folder with sounds only
    _write(t / "food/gift.txt", b"A gift.\n")                       # description without image
    return t


def _load(tree: Path, root: Path, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_tuxpaint(root, tree=tree, progress=False, **kw)
    return data, [str(w.message) for w in caught if "tuxpaint" in w.filename or
                  "stamp" in str(w.message) or "description" in str(w.message)
                  or "cache" in str(w.message)]


def _by_name(data) -> dict[str, int]:
    return {n: i for i, n in enumerate(data["stamp"].name)}


def test_english_description():
    assert english_description("A frog.\nfr.utf8=Une grenouille.\n") == "A frog."
    assert english_description("\ufeff\n  A  big\tfrog. \r\naf.utf8='n Padda.\r\n") == "A big frog."
    assert english_description("fr.utf8=Une grenouille.\n") is None
    assert english_description("pt_BR.utf8=Um sapo.\nsr@latin.utf8=Žaba.\n") is None
    assert english_description("") is None and english_description("\n \n") is None


def test_fixture_tree(stamps, tmp_path):
    data, msgs = _load(stamps, tmp_path / "root")
    st = data.meta["stats"]
    s = data["stamp"]
    assert s.num_nodes == 6 and data["category"].num_nodes == 5
    idx = _by_name(data)
    assert sorted(idx) == ["apple", "lion", "owl", "pear", "robin", "tiger"]
    text = {n: s.text[i] for n, i in idx.items()}
    assert text == {"robin": "A robin.", "owl": "An owl.", "lion": "A big lion.",
                    "tiger": None, "apple": None, "pear": None}
    assert s.text_mask.tolist() == [t is not None for t in s.text]
    assert s.image[idx["owl"]] == "animals/birds/owl.svg"
    assert s.image[idx["robin"]] == "animals/birds/robin.png" and bool(s.image_mask.all())
    assert (Path(data.meta["image_root"]) / s.image[idx["lion"]]).is_file()
    assert s.category[idx["lion"]] == "animals/cats" and s.category[idx["pear"]] == "food"
    assert s.options[idx["owl"]] == ["noflip", "colorable"] and s.options[idx["robin"]] == []
    assert s.content_hash[idx["owl"]].startswith("svg:") and len(set(s.content_hash)) == 6
    assert list(s.content_hash) == sorted(s.content_hash)            # content order, not path

    cats = data["category"]
    assert list(cats.path) == ["animals", "animals/birds", "animals/cats", "food", "food/fruit"]
    assert list(cats.name) == ["animals", "birds", "cats", "food", "fruit"]
    assert cats.depth.tolist() == [1, 2, 2, 1, 2]
    sub = data["category", "subcategory_of", "category"].edge_index
    assert sorted(map(tuple, sub.t().tolist())) == [(1, 0), (2, 0), (4, 3)]
    ic = data["stamp", "in_category", "category"].edge_index
    assert ic.size(1) == 6
    assert {(data["stamp"].name[a], cats.path[b]) for a, b in ic.t().tolist()} == {
        ("robin", "animals/birds"), ("owl", "animals/birds"), ("lion", "animals/cats"),
        ("tiger", "animals/cats"), ("apple", "food"), ("pear", "food")}
    assert torch.equal(data["category", "has_stamp", "stamp"].edge_index, ic.flip(0))
    same = data["stamp", "same_category", "stamp"].edge_index
    names = data["stamp"].name
    assert sorted((names[a], names[b]) for a, b in same.t().tolist()) == sorted(
        [("robin", "owl"), ("owl", "robin"), ("lion", "tiger"), ("tiger", "lion"),
         ("apple", "pear"), ("pear", "apple")])

    assert st["stamps"] == 6 and st["with_english"] == 3 and st["without_english"] == 3
    assert (st["txt_missing"], st["txt_without_english"], st["txt_unreadable"]) == (1, 1, 1)
    assert (st["png_only"], st["svg_only"], st["png_and_svg"]) == (5, 1, 0)
    assert st["alternate_images_skipped"] == 1 and st["descriptions_without_image"] == 1
    assert st["categories"] == 5 and st["top_level_categories"] == 2 and st["max_depth"] == 2
    assert st["categories_with_stamps"] == 3 and st["with_options"] == 1
    assert st["text_words_mean"] == 2.33 and st["text_words_median"] == 2.0
    assert st["duplicated_texts"] == 0 and st["edges"]["same_category"] == 6
    assert data.meta["license"] == "GPL-2.0-or-later" and data.meta["name"] == "tuxpaint"
    assert data.meta["version"].startswith("tuxpaint-stamps-default-unknown/build-")
    assert data.meta["target"] == "stamp"

    no_english = [m for m in msgs if "no English description" in m]
    unreadable = [m for m in msgs if "unreadable or non-UTF-8" in m]
    assert len(no_english) == 1 and no_english[0].startswith("2 of 6 Tux Paint stamps")
    assert len(unreadable) == 1 and unreadable[0].startswith("1 unreadable")

    # second load: from the cache, no rebuild and so no warnings; same graph
    again, msgs2 = _load(stamps, tmp_path / "root")
    assert msgs2 == [] and list(again["stamp"].text) == list(s.text)
    assert torch.equal(again["stamp", "same_category", "stamp"].edge_index, same)


def test_corrupt_cache_is_rebuilt(stamps, tmp_path):
    root = tmp_path / "root"
    _load(stamps, root)
    (cache,) = (root / "tuxpaint" / "processed").glob("*.pt")
    cache.write_bytes(b"not a torch file")
    data, msgs = _load(stamps, root)
    assert any("corrupt processed cache" in m for m in msgs)
    assert data["stamp"].num_nodes == 6 and cache.stat().st_size > 100


def test_same_category_is_bounded_and_deterministic(tmp_path):
    t = tmp_path / "stamps"
    for i in range(7):
        _png(t / "shapes" / f"s{i}.png", (i * 30, 0, 0))
        _write(t / "shapes" / f"s{i}.txt", f"Shape {i}.\n".encode())
    ring, _ = _load(t, tmp_path / "r", same_category_k=2, use_cache=False)
    ei = ring["stamp", "same_category", "stamp"].edge_index
    assert torch.bincount(ei[0], minlength=7).tolist() == [2] * 7     # ring lattice
    assert ei.size(1) == 14 and not bool((ei[0] == ei[1]).any())
    clique, _ = _load(t, tmp_path / "r", same_category_k=10, use_cache=False)
    assert clique["stamp", "same_category", "stamp"].edge_index.size(1) == 7 * 6
    again, _ = _load(t, tmp_path / "r", same_category_k=2, use_cache=False)
    assert torch.equal(again["stamp", "same_category", "stamp"].edge_index, ei)
    other, _ = _load(t, tmp_path / "r", same_category_k=2, seed=1, use_cache=False)
    assert other.meta["version"] != ring.meta["version"]


def test_missing_tree_is_one_line_error(tmp_path):
    if LAYOUT.tree_ok(SYSTEM_TREE):
        pytest.skip(f"{SYSTEM_TREE} is installed on this machine")
    with pytest.raises(DataError) as exc:
        load_tuxpaint(tmp_path, download=False, progress=False)
    msg = str(exc.value)
    assert "\n" not in msg and "download=false" in msg and "tuxpaint-stamps-default" in msg
    with pytest.raises(DataError, match="no category folders"):
        load_tuxpaint(tmp_path, tree=tmp_path / "nowhere", progress=False)
    with pytest.raises(DataError, match="same_category_k"):
        load_tuxpaint(tmp_path, same_category_k=-1)


def test_empty_tree_is_an_error(tmp_path):
    (tmp_path / "stamps" / "empty").mkdir(parents=True)
    with pytest.raises(DataError, match="no stamp images"):
        load_tuxpaint(tmp_path, tree=tmp_path / "stamps", progress=False)


# ------------------------------------------------------------------------------ the real package
@pytest.fixture(scope="session")
def tuxpaint_root(tmp_path_factory) -> Path:
    """A data root with ``tuxpaint-stamps-default`` downloaded and extracted once (~160 MB)."""
    from mmgraph.data.openclipart.download import obtain

    from tests.conftest import download_or_skip

    root = tmp_path_factory.mktemp("tuxpaint_root")
    download_or_skip("Tux Paint stamps", lambda: obtain(root / "tuxpaint", True, SYSTEM_TREE, LAYOUT))
    return root


@pytest.mark.slow
def test_real_package(tuxpaint_root):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_tuxpaint(tuxpaint_root, download=False, progress=False)
    assert not [w for w in caught if "stamp" in str(w.message) or "description" in str(w.message)]
    if data.meta["package_version"] != "2022.06.04-1":
        pytest.skip(f"counts measured on 2022.06.04-1, found {data.meta['package_version']}")
    st = data.meta["stats"]
    assert data["stamp"].num_nodes == st["stamps"] == 950
    assert data["category"].num_nodes == st["categories"] == 145
    assert (st["with_english"], st["without_english"], st["txt_unreadable"]) == (950, 0, 0)
    assert (st["png_only"], st["svg_only"], st["png_and_svg"]) == (702, 165, 83)
    assert st["alternate_images_skipped"] == 11 and st["descriptions_without_image"] == 2
    assert (st["top_level_categories"], st["max_depth"], st["categories_with_stamps"]) == (16, 5, 125)
    assert (st["distinct_texts"], st["duplicated_texts"]) == (804, 132)
    assert st["edges"] == {"subcategory_of": 129, "in_category": 950, "same_category": 7576}
    assert st["same_category_max_degree"] == 10
    s = data["stamp"]
    (i,) = [i for i, p in enumerate(s.image) if p == "animals/amphibians/frog.png"]
    assert s.text[i] == "A frog." and s.name[i] == "frog" and s.category[i] == "animals/amphibians"
    assert all((Path(data.meta["image_root"]) / p).is_file() for p in data["stamp"].image)
