"""Open Clip Art loader on tiny trees in the published layout (no downloads), and the real graph
(the session fixture ``openclipart_graph`` of tests/conftest.py downloads the Debian packages)."""
from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmgraph.data import openclipart as oc
from mmgraph.data.graph import tensor_digest
from mmgraph.data.openclipart import load_openclipart
from mmgraph.data.openclipart.text import label_pattern
from mmgraph.errors import DataError

SVG = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!-- Created with Inkscape (http://www.inkscape.org/) --><svg height="150pt" id="svg2" width="150pt" \
xmlns="http://www.w3.org/2000/svg" xmlns:cc="http://web.resource.org/cc/" \
xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" \
xmlns:svg="http://www.w3.org/2000/svg">
  <metadata>
    <rdf:RDF xmlns:cc="http://web.resource.org/cc/" xmlns:dc="http://purl.org/dc/elements/1.1/" \
xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
      <cc:Work rdf:about="">
        <dc:title>{title}</dc:title>
        <dc:description>{desc}</dc:description>
        <dc:subject>
          <rdf:Bag>
{lis}
          </rdf:Bag>
        </dc:subject>
        <dc:publisher>
          <cc:Agent rdf:about="http://www.openclipart.org/">
            <dc:title>Open Clip Art Library</dc:title>
          </cc:Agent>
        </dc:publisher>
        <dc:creator>
          <cc:Agent>
            <dc:title>{creator}</dc:title>
          </cc:Agent>
        </dc:creator>
        <dc:rights>
          <cc:Agent>
            <dc:title>{creator}</dc:title>
          </cc:Agent>
        </dc:rights>
        <dc:date></dc:date>
        <dc:format>image/svg+xml</dc:format>
        <dc:type rdf:resource="http://purl.org/dc/dcmitype/StillImage"/>
        <cc:license rdf:resource="http://web.resource.org/cc/PublicDomain"/>
        <dc:language>en</dc:language>
      </cc:Work>
    </rdf:RDF>
  </metadata>
  <g id="layer1"><rect height="10" width="10" x="0" y="0" style="fill:#ff0000"/></g>
</svg>
"""


def write_item(tree: Path, rel: str, color: int, title="", desc="", keywords=(), creator="Ann",
               svg_text: str | None = None) -> None:
    """One clip art item: ``png/<rel>.png`` (a 3x3 image of ``color``) and ``svg/<rel>.svg``."""
    png, svg = tree / "png" / f"{rel}.png", tree / "svg" / f"{rel}.svg"
    png.parent.mkdir(parents=True, exist_ok=True)
    svg.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (3, 3), ((color * 37) % 256, (color * 91) % 256, color // 256)).save(png)
    lis = "\n".join(f"            <rdf:li>{k}</rdf:li>" for k in keywords)
    svg.write_text(svg_text if svg_text is not None else
                   SVG.format(title=title, desc=desc, lis=lis, creator=creator), encoding="utf-8")


# (relative path, colour, title, description, keywords, creator)
ITEMS = [
    ("animals/cat_ann_01", 1, "Happy cat", "A cat, a domestic animal.", ["animal", "mammal", "cat"], "Ann"),
    ("animals/birds/owl_bob_01", 2, "Owl", "HASH(0x89cb06c)", ["bird", "hash", "hash(0x8a0b6a8)"], "Bob"),
    ("animals/dog_ann_01", 3, "Dog", "", ["mammal", "Animals"], "Ann"),
    ("animals/mammals/cow_cy_01", 4, "Cow", "jean.victor.balin@gmail.com", ["mammal", "farm"], "Cy"),
    ("food/apple_ann_01", 5, "Apple", "Fresh fruit food", ["fruit", "food", "farm"], "Ann"),
    ("food/pear_bob_01", 6, "Pear", "", ["fruit", "pear"], "Bob"),
    ("food/fruit/plum_cy_01", 7, "Plum", "Plum", ["fruit"], "Cy"),
    ("signs_and_symbols/stop_sign_dd_01", 8, "Stop sign", "Signs and symbols", ["signs_and_symbols",
                                                                               "Symbol", "road"], "Dd"),
    ("signs_and_symbols/flags/flag_dd_01", 9, "Flag", "", ["flag", "road"], "Dd"),
    ("unsorted/thing_ann_01", 10, "Thing", "", ["unsorted"], "Ann"),
]
OPTS = dict(min_class_size=1, download=False, progress=False)


def make_tree(base: Path, items=ITEMS) -> Path:
    tree = base / "openclipart" / "usr" / "share" / "openclipart"
    for rel, color, title, desc, kws, creator in items:
        write_item(tree, rel, color, title, desc, kws, creator)
    return tree


@pytest.fixture(autouse=True)
def no_system_tree(monkeypatch, tmp_path):
    """Never pick up a system-wide install in the fast tests."""
    monkeypatch.setattr(oc, "SYSTEM_TREE", tmp_path / "no-system-install")


def by_title(data) -> dict[str, int]:
    out = {}
    for i, t in enumerate(data["clipart"].text):
        if t:
            out[t.split(".")[0]] = i
    return out


def edge_set(data, rel, hashes=None):
    ei = data["clipart", rel, "clipart"].edge_index
    if hashes is None:
        return {(int(a), int(b)) for a, b in ei.t()}
    return {(hashes[a], hashes[b]) for a, b in ei.t().tolist()}


def test_nodes_labels_text_image(tmp_path):
    tree = make_tree(tmp_path)
    data = load_openclipart(tmp_path, **OPTS)
    st = data["clipart"]
    assert data.meta["name"] == "openclipart" and data.meta["target"] == "clipart"
    assert "0.18" in data.meta["version"]
    assert data.meta["class_names"] == ["animals", "food", "signs_and_symbols"]   # unsorted out
    assert st.num_nodes == 9 and st.y.dtype == torch.long
    assert len(st.text) == len(st.image) == 9
    assert Path(data.meta["image_root"]) == tree / "png"
    for i in range(9):
        ref = st.image[i]
        assert (Path(data.meta["image_root"]) / ref).is_file()
        cat = ref.split("/")[0]
        assert data.meta["class_names"][int(st.y[i])] == cat
    assert st.image_mask.all() and st.text_mask.all()
    # nodes in content-hash order, not path order
    assert list(st.content_hash) == sorted(st.content_hash)
    idx = by_title(data)
    assert st.text[idx["Happy cat"]] == "Happy cat. A cat, a domestic. keywords: mammal, cat"
    assert st.text[idx["Plum"]] == "Plum. keywords: fruit"                  # desc repeats title
    stats = data.meta["stats"]
    assert stats["nodes"] == 9 and stats["per_class"] == {"animals": 4, "food": 3,
                                                          "signs_and_symbols": 2}
    assert stats["excluded_files"] == 1 and stats["excluded_categories"] == ["unsorted"]


def test_label_words_removed_and_kept(tmp_path):
    make_tree(tmp_path)
    data = load_openclipart(tmp_path, **OPTS)
    words = re.compile(r"(?<![a-z0-9])(animals?|foods?|signs?|symbols?|unsorted)(?![a-z0-9])", re.I)
    for t in data["clipart"].text:
        assert t is None or not words.search(t), t
    assert not any(words.search(n) for n in data["keyword"].name)
    idx = by_title(data)
    assert data["clipart"].text[idx["Stop"]] == "Stop. keywords: road"
    kept = load_openclipart(tmp_path, keep_label_words=True, **OPTS)
    texts = " ".join(t for t in kept["clipart"].text if t)
    for w in ("animal", "animals", "food", "signs and symbols", "Stop sign"):
        assert w in texts
    assert kept.meta["version"] != data.meta["version"]
    assert oc.remove_label_words("Road-Signs and pics", label_pattern(oc.label_words(
        ["signs_and_symbols"]))) == "Road- and pics"


def test_hash_like_descriptions_and_artefact_keywords_dropped(tmp_path):
    make_tree(tmp_path)
    data = load_openclipart(tmp_path, **OPTS)
    idx = by_title(data)
    assert data["clipart"].text[idx["Owl"]] == "Owl. keywords: bird"
    assert data["clipart"].text[idx["Cow"]] == "Cow. keywords: mammal, farm"    # e-mail only
    assert data.meta["stats"]["junk_descriptions_dropped"] == 2
    assert "hash" not in data["keyword"].name


def test_duplicates_merged_or_dropped(tmp_path):
    tree = make_tree(tmp_path)
    write_item(tree, "animals/sub/cat_copy", 1, "Cat copy", "", ["mammal"], "Zed")   # same PNG
    write_item(tree, "food/pear_copy", 6, "Pear copy", "", ["fruit"], "Zed")        # same PNG
    write_item(tree, "animals/pear_in_animals", 6, "Pear 3", "", [], "Zed")        # other category
    data = load_openclipart(tmp_path, **OPTS)
    stats = data.meta["stats"]
    assert stats["merged_groups"] == 1 and stats["merged_files"] == 2
    assert stats["ambiguous_groups_dropped"] == 1 and stats["ambiguous_files_dropped"] == 3
    assert data["clipart"].num_nodes == 8          # 9 - pear + nothing new (cat merged)
    assert len(set(data["clipart"].content_hash)) == 8
    assert not any(t and t.startswith("Pear") for t in data["clipart"].text)


def test_metadata_twins_capped_and_min_class_size(tmp_path):
    items = [(f"shapes/stars/star_{i}", 100 + i, "gramastar", "", ["stars", "geometry"], "Cod")
             for i in range(12)]
    items += [("plants/tree_a", 300, "Tree", "", ["tree"], "Ann"),
              ("plants/tree_b", 301, "Oak", "", ["tree"], "Ann"),
              ("tools/saw", 400, "Saw", "", ["saw"], "Ann")]
    make_tree(tmp_path, items)
    data = load_openclipart(tmp_path, **{**OPTS, "max_metadata_twins": 5, "min_class_size": 2})
    assert data.meta["class_names"] == ["plants", "shapes"]
    assert data.meta["stats"]["per_class"] == {"plants": 2, "shapes": 5}
    assert data.meta["stats"]["twins_dropped"] == 7
    assert data.meta["stats"]["small_categories_dropped"] == ["tools"]


def many_items(n=24):
    """Items with two creators and overlapping keywords, over three categories."""
    cats = ["animals", "food", "plants"]
    out = []
    for i in range(n):
        kws = [f"k{i % 5}", f"k{i % 3}x", "common"]
        out.append((f"{cats[i % 3]}/sub{i % 2}/item_{i}", 500 + i, f"Item {i}", "",
                    kws, "Ann" if i % 4 else "Bob"))
    return out


def check_undirected(ei: torch.Tensor, n: int, k: int):
    pairs = {(int(a), int(b)) for a, b in ei.t()}
    assert len(pairs) == ei.size(1)                         # no duplicates
    assert all(a != b for a, b in pairs)                    # no self loops
    assert all((b, a) in pairs for a, b in pairs)           # both directions
    assert int(torch.bincount(ei[0], minlength=n).max()) <= k


def test_edges_symmetric_bounded_deterministic(tmp_path):
    make_tree(tmp_path, many_items())
    kw = {**OPTS, "creator_k": 4, "keyword_k": 3, "max_keyword_df": 0.5, "use_cache": False}
    data = load_openclipart(tmp_path, **kw)
    n = data["clipart"].num_nodes
    assert n == 24
    for rel, k in (("same_creator", 4), ("shares_keyword", 3)):
        ei = data["clipart", rel, "clipart"].edge_index
        assert ei.size(1) > 0
        check_undirected(ei, n, k)
    # creators: Ann has 18 items -> ring lattice of degree 4; Bob has 6 -> degree 4 too
    deg = torch.bincount(data["clipart", "same_creator", "clipart"].edge_index[0], minlength=n)
    assert deg.tolist() == [4] * n
    hashes = list(data["clipart"].content_hash)
    creator_of = {}
    for i, t in enumerate(data["clipart"].text):
        j = int(t.split(".")[0].split()[1])
        creator_of[i] = "Ann" if j % 4 else "Bob"
    assert all(creator_of[a] == creator_of[b] for a, b in edge_set(data, "same_creator"))
    # 'common' is on every item: above the df cap, it makes no edges
    assert data.meta["stats"]["keywords_used_for_edges"] == 8
    again = load_openclipart(tmp_path, **kw)
    for rel in ("same_creator", "shares_keyword"):
        assert torch.equal(data["clipart", rel, "clipart"].edge_index,
                           again["clipart", rel, "clipart"].edge_index)
    other_seed = load_openclipart(tmp_path, **{**kw, "seed": 1})
    assert edge_set(other_seed, "same_creator") != edge_set(data, "same_creator")
    assert list(other_seed["clipart"].content_hash) == hashes       # node order is content order


def test_graph_independent_of_paths(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    make_tree(a, many_items())
    renamed = [(f"{rel.split('/')[0]}/zz{len(rel) % 7}/{rel.split('/')[-1][::-1]}_renamed", *rest)
               for rel, *rest in reversed(many_items())]
    make_tree(b, renamed)
    kw = {**OPTS, "creator_k": 4, "keyword_k": 3, "max_keyword_df": 0.5}
    ga, gb = load_openclipart(a, **kw), load_openclipart(b, **kw)
    ha, hb = list(ga["clipart"].content_hash), list(gb["clipart"].content_hash)
    assert ha == hb
    assert torch.equal(ga["clipart"].y, gb["clipart"].y)
    assert list(ga["clipart"].text) == list(gb["clipart"].text)
    assert ga["clipart"].image != gb["clipart"].image            # the paths did change
    for rel in ("same_creator", "shares_keyword"):
        assert edge_set(ga, rel, ha) == edge_set(gb, rel, hb)
    for et in ga.edge_types:
        assert torch.equal(ga[et].edge_index, gb[et].edge_index)


def test_keyword_nodes(tmp_path):
    make_tree(tmp_path)
    data = load_openclipart(tmp_path, **OPTS)
    names = list(data["keyword"].name)
    assert names == sorted(names) and data["keyword"].num_nodes == len(names)
    assert names == ["farm", "fruit", "mammal", "road"]          # df >= 2 after cleaning
    fwd = data["clipart", "has_keyword", "keyword"].edge_index
    back = data["keyword", "keyword_of", "clipart"].edge_index
    assert {tuple(p) for p in fwd.t().tolist()} == {tuple(p) for p in back.flip(0).t().tolist()}
    idx = by_title(data)
    linked = {names[k] for c, k in fwd.t().tolist() if c == idx["Apple"]}
    assert linked == {"fruit", "farm"}
    assert data.meta["stats"]["edges"]["has_keyword"] == fwd.size(1)


def test_corrupt_svg_counted(tmp_path):
    tree = make_tree(tmp_path)
    write_item(tree, "food/broken", 50, svg_text="<svg><metadata><rdf:RDF")
    with pytest.warns(UserWarning, match=r"^1 corrupt or unreadable SVG"):
        data = load_openclipart(tmp_path, **OPTS)
    st = data.meta["stats"]
    assert st["svg_corrupt"] == 1 and st["nodes"] == 10 and st["empty_text"] == 1
    i = [t is None for t in data["clipart"].text].index(True)
    assert data["clipart"].image[i] == "food/broken.png" and not data["clipart"].text_mask[i]


def test_missing_tree_without_download(tmp_path):
    with pytest.raises(DataError) as info:
        load_openclipart(tmp_path, download=False)
    msg = str(info.value)
    assert "\n" not in msg and "openclipart-png" in msg and "download=false" in msg


def test_download_failure_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))      # no apt-get
    with pytest.raises(DataError) as info:
        load_openclipart(tmp_path, download=True)
    msg = str(info.value)
    assert "\n" not in msg and "apt-get" in msg and "debs" in msg


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed")
def test_extracts_debs(tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    debs = tmp_path / "root" / "openclipart" / "debs"
    debs.mkdir(parents=True)
    for kind in ("png", "svg"):
        pkg = tmp_path / f"pkg-{kind}"
        (pkg / "DEBIAN").mkdir(parents=True)
        (pkg / "DEBIAN" / "control").write_text(
            f"Package: openclipart-{kind}\nVersion: 1:0.18+dfsg-19\nArchitecture: all\n"
            f"Maintainer: test <t@example.org>\nDescription: test\n")
        dst = pkg / "usr" / "share" / "openclipart" / kind
        shutil.copytree(src / "openclipart" / "usr" / "share" / "openclipart" / kind, dst)
        subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(pkg),
                        str(debs / f"openclipart-{kind}_0.18_all.deb")], check=True,
                       capture_output=True)
    data = load_openclipart(tmp_path / "root", **OPTS)
    assert data["clipart"].num_nodes == 9
    base = tmp_path / "root" / "openclipart"
    assert (base / "usr" / "share" / "openclipart" / "png").is_dir()
    assert not [p for p in base.iterdir() if p.name.startswith(".extract-")]


def test_cache_reused_and_corrupt_cache_rebuilt(tmp_path, monkeypatch):
    make_tree(tmp_path)
    first = load_openclipart(tmp_path, **OPTS)
    files = list((tmp_path / "openclipart" / "processed").glob("*.pt"))
    assert len(files) == 1
    real_build = oc.build_graph

    def boom(*a, **k):
        raise AssertionError("rebuilt although a valid cache exists")
    monkeypatch.setattr(oc, "build_graph", boom)
    cached = load_openclipart(tmp_path, **OPTS)
    assert list(cached["clipart"].text) == list(first["clipart"].text)
    assert cached.meta["stats"] == first.meta["stats"]
    files[0].write_bytes(b"not a torch file")
    monkeypatch.setattr(oc, "build_graph", real_build)
    with pytest.warns(UserWarning, match="corrupt processed cache"):
        rebuilt = load_openclipart(tmp_path, **OPTS)
    assert torch.equal(rebuilt["clipart"].y, first["clipart"].y)
    monkeypatch.setattr(oc, "build_graph", boom)
    load_openclipart(tmp_path, **OPTS)                       # the rebuilt cache is valid again


#: The default graph on the Debian packages 1:0.18+dfsg-19. The feature cache is keyed on the
#: version: a change of the digest without a new BUILD_VERSION would leave stale features.
REAL_VERSION = "oca-0.18/build-2/99ed20530345e326"
REAL_DIGEST = {"1": "9fd36dc3fc58be76-0de0d82220497c51",
               "2": "9fd36dc3fc58be76-0de0d82220497c51"}   # 2 added the title only (not in the digest)


def graph_digest(data) -> str:
    """A hash of every tensor, text, image reference, content hash and keyword of the graph."""
    st = data["clipart"]
    lists = [list(st.text), list(st.image), list(st.content_hash), list(data["keyword"].name)]
    tensors = [st.y, st.text_mask, st.image_mask] + [data[et].edge_index for et in sorted(data.edge_types)]
    lists_digest = tensor_digest(np.frombuffer(json.dumps(lists).encode(), dtype=np.uint8))
    return f"{lists_digest}-{tensor_digest(*tensors)}"


@pytest.mark.slow
def test_real_graph(openclipart_graph, openclipart_root):
    data = openclipart_graph
    st = data.meta["stats"]
    assert st["files"] == 8121 and st["svg_corrupt_files"] == 0
    assert data["clipart"].num_nodes == st["nodes"] and 4000 <= st["nodes"] <= 4600
    assert len(data.meta["class_names"]) == 14 and "unsorted" not in data.meta["class_names"]
    n = st["nodes"]
    for rel, k in (("same_creator", 10), ("shares_keyword", 10)):
        check_undirected(data["clipart", rel, "clipart"].edge_index, n, k)
    words = re.compile(r"(?<![a-z0-9])(animals?|computers?|people|shapes?|signs?|symbols?|"
                       r"transport(ation)?|recreation|geography)(?![a-z0-9])", re.I)
    assert not any(t and words.search(t) for t in data["clipart"].text)
    assert (openclipart_root / "openclipart" / "processed").is_dir()       # cached for reuse
    assert data.meta["version"] == REAL_VERSION
    titles = data["clipart"].title
    assert len(titles) == n and sum(t is not None for t in titles) == n - 58   # the generation target
    assert graph_digest(data) == REAL_DIGEST[oc.BUILD_VERSION], (
        "the built graph changed: bump BUILD_VERSION (cached features are keyed on the version) "
        "and record the new digest")


@pytest.mark.slow
def test_default_split_keeps_identical_texts_on_one_side(openclipart_graph):
    """The data set's default split (configs/dataset/openclipart.yaml) is grouped on text: no
    validation or test text occurs verbatim (case and spacing aside) on a training node, while
    MAGB's node-level split puts hundreds of test nodes next to a training copy."""
    from omegaconf import OmegaConf

    from mmgraph.data.splits import make_split, normalised_text
    from mmgraph.paths import config_dir

    split = OmegaConf.to_container(OmegaConf.load(config_dir() / "dataset" / "openclipart.yaml").split)
    assert split["name"] == "grouped" and split["key"] == "text"
    data = copy.copy(openclipart_graph)
    data.meta = dict(openclipart_graph.meta)

    def seen_in_train():
        st = data["clipart"]
        texts = [normalised_text(t) for t in st.text]
        train = {texts[i] for i in st.train_mask.nonzero().view(-1).tolist() if texts[i]}
        return [sum(texts[i] in train for i in st[f"{k}_mask"].nonzero().view(-1).tolist())
                for k in ("val", "test")]

    make_split(data, **split)
    assert seen_in_train() == [0, 0]
    sizes = data.meta["split"]["sizes"]
    assert abs(sizes["test"] / sum(sizes.values()) - 0.2) < 0.02
    make_split(data, "magb")
    assert seen_in_train()[1] > 200
