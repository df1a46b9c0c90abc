"""MAGB loader on tiny fixtures in the published formats (no network: the Hub is faked)."""
from __future__ import annotations

import csv
import io
import shutil
import sys
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmgraph.data import load_image
from mmgraph.data.graph import homogeneous_view
from mmgraph.data.magb import load_magb, resolve_feature_file
from mmgraph.errors import DataError

try:
    import dgl  # noqa: F401
    HAS_DGL = True
except Exception:  # noqa: BLE001
    HAS_DGL = False

AMAZON_COLUMNS = ["id", "category", "text", "description", "title", "also_buy", "also_view",
                  "imageURLHighRes", "second_category", "label"]
REDDIT_COLUMNS = ["id", "subreddit", "caption", "url", "also_posted", "label"]

# Movies: (also_buy, also_view, second_category, label, title, description)
MOVIES = [([1], [2, 1], "Drama", 0, "A", "first, \"quoted\"\nline"),
          ([], [0], "Comedy", 1, "B", None),
          ([0, 3], [], "Drama", 0, "C", "third"),
          ([2], [2], "Comedy", 1, "D", "fourth"),
          ([3], [], "Drama", 0, None, None)]
MOVIES_STORED = [[0, 0, 1, 2, 2, 3, 4], [1, 2, 0, 0, 3, 2, 3]]
# Reddit-S: (also_posted, subreddit, label, caption); authors {0, 2} and {1, 3}
REDDIT = [([0, 2], "pics", 0, "a cat"), ([1, 3], "earthporn", 1, "a hill"),
          ([0, 2], "pics", 0, "a dog"), ([1, 3], "earthporn", 1, "")]
REDDIT_STORED = [[0, 0, 1, 1, 2, 2, 3, 3], [0, 2, 1, 3, 0, 2, 1, 3]]


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    """Like pandas' ``to_csv(index=False)``: lists as their repr, None as an empty field."""
    with open(path, "w", newline="", encoding="utf-8") as fp:
        w = csv.writer(fp, lineterminator="\n")
        w.writerow(header)
        for row in rows:
            w.writerow(["" if v is None else (str(v) if isinstance(v, list) else v) for v in row])


def _jpeg(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (12, 8), color).save(buf, "JPEG")
    return buf.getvalue()


def _tarball(path: Path, inner: str, ids: list[int]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for i in ids:
            blob = _jpeg((40 * i % 256, 90, 200))
            info = tarfile.TarInfo(f"{inner}/{i}.jpg")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        note = b"not an image"
        info = tarfile.TarInfo(f"{inner}/README.txt")
        info.size = len(note)
        tar.addfile(info, io.BytesIO(note))


def make_movies(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (buy, view, cat, label, title, desc) in enumerate(MOVIES):
        text = "" if i == 4 else f"Title: {title}; Description: {desc}"
        rows.append([i, ["Movies & TV", cat], text, desc, title, buy, view,
                     [f"https://img/{i}.jpg"], cat, label])
    _write_csv(folder / "Movies.csv", AMAZON_COLUMNS, rows)
    _tarball(folder / "MoviesImages.tar.gz", "MoviesImages", [0, 1, 3, 4])   # 2 has no image
    (folder / "TextFeature").mkdir()
    rng = np.random.default_rng(0)
    np.save(folder / "TextFeature" / "Movies_roberta_base_512_mean.npy", rng.normal(size=(5, 4)))
    np.save(folder / "TextFeature" / "Movies_bad_mean.npy", np.zeros((3, 4), np.float32))
    (folder / "ImageFeature").mkdir()
    np.save(folder / "ImageFeature" / "Movies_Llama-3.2-11B-Vision-Instruct_visual.npy",
            rng.normal(size=(5, 3)).astype(np.float16))
    (folder / "MMFeature").mkdir()
    np.save(folder / "MMFeature" / "Movies_LLAMA8B_CLIP.npy", rng.normal(size=(5, 6)))


def make_reddit(folder: Path, prefix: str = "RedditS", parts: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [[i, sub, cap, f"https://i.redd.it/{i}.jpg", posted, label]
            for i, (posted, sub, label, cap) in enumerate(REDDIT)]
    _write_csv(folder / f"{prefix}.csv", REDDIT_COLUMNS, rows)
    tar = folder / f"{prefix}Images.tar.gz"
    _tarball(tar, f"{prefix}Images", [0, 1, 2, 3])
    if parts:
        blob = tar.read_bytes()
        cut = [0, len(blob) // 3, 2 * len(blob) // 3, len(blob)]
        for k, letter in enumerate("abc"):
            (folder / f"{prefix}Images_part{letter}").write_bytes(blob[cut[k]:cut[k + 1]])
        tar.unlink()


class FakeHub:
    """Stands in for ``huggingface_hub.hf_hub_download``, serving files from a folder."""

    def __init__(self, hub: Path, offline: bool = False):
        self.hub, self.offline, self.requests = hub, offline, []

    def __call__(self, repo_id, filename, repo_type=None, local_dir=None, **kw):
        assert repo_id == "Sherirto/MAGB" and repo_type == "dataset"
        self.requests.append(filename)
        if self.offline:
            raise LocalEntryNotFoundError("Cannot find the requested files in the disk cache\n"
                                          "and outgoing traffic has been disabled.")
        src = self.hub / filename
        if not src.is_file():
            raise EntryNotFoundError(f"404 Client Error.\nEntry Not Found for url: {filename}")
        dst = Path(local_dir) / filename
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        return str(dst)


class EntryNotFoundError(Exception):
    pass


class LocalEntryNotFoundError(Exception):
    pass


@pytest.fixture
def hub(tmp_path, monkeypatch):
    import huggingface_hub

    make_movies(tmp_path / "hub" / "Movies")
    make_reddit(tmp_path / "hub" / "RedditS")            # not the first folder name tried
    fake = FakeHub(tmp_path / "hub")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    return fake


def _load(*args, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_magb(*args, **kw)
    return data, [str(w.message) for w in caught]


def test_csv_rebuild_edges_labels_text_images(hub, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dgl", None)  # the path without the dgl extra
    root = tmp_path / "root"
    data, warns = _load("movies", root, text_feature="roberta_base_512_mean")
    needed = {"Movies/Movies.csv", "Movies/TextFeature/Movies_roberta_base_512_mean.npy",
              "Movies/MoviesImages.tar.gz"}
    assert sorted(hub.requests) == sorted(needed)           # only what is needed, once each
    store = data["product"]
    assert data.meta["name"] == "magb_movies" and data.meta["target"] == "product"
    assert data.meta["class_names"] == ["Drama", "Comedy"]
    assert store.num_nodes == 5 and store.y.tolist() == [0, 1, 0, 1, 0]
    stored = torch.tensor(MOVIES_STORED)
    ei = data["product", "also_view_or_buy", "product"].edge_index
    assert torch.equal(ei, torch.cat([stored, stored.flip(0)], 1))
    assert data.meta["num_stored_edges"] == 7
    assert homogeneous_view(data).edge_index.size(1) == 8    # 4 undirected pairs, coalesced
    assert store.text[0] == 'Title: A; Description: first, "quoted"\nline'
    assert store.text[1] == "Title: B; Description: None"     # published text kept as is
    assert store.text[4] is None and store.text_mask.tolist() == [True] * 4 + [False]
    # images: extracted once into <folder>/images, node 2 has none (counted warning)
    assert [w for w in warns if "1 of 5 nodes have no image" in w]
    assert store.image_mask.tolist() == [True, True, False, True, True]
    assert store.image[2] is None and store.image[3] == "3.jpg"
    image_root = Path(data.meta["image_root"])
    assert image_root == root / "magb" / "Movies" / "images"
    assert sorted(p.name for p in image_root.iterdir()) == ["0.jpg", "1.jpg", "3.jpg", "4.jpg"]
    assert not [p for p in image_root.parent.iterdir() if p.name.startswith(".images.tmp")]
    img = load_image(store.image[3], root=data.meta["image_root"], max_side=6)
    assert img.mode == "RGB" and max(img.size) == 6
    # second load: everything is local, nothing is downloaded or extracted again
    hub.requests.clear()
    again, _ = _load("Movies", root, text_feature="Movies_roberta_base_512_mean.npy")
    assert hub.requests == [] and again.meta["csv_digest"] == data.meta["csv_digest"]
    assert torch.equal(again["product"].x_text, data["product"].x_text)


def test_reddit_same_author_empty_caption_and_folder_fallback(hub, tmp_path):
    data, _ = _load("reddit_s", tmp_path / "root", images=False)
    # "Reddit-S/..." is tried first, then the prefix-named folder; later files use the one found
    assert hub.requests[:2] == ["Reddit-S/RedditS.csv", "RedditS/RedditS.csv"]
    store = data["post"]
    stored = torch.tensor(REDDIT_STORED)
    assert torch.equal(data["post", "same_author", "post"].edge_index,
                       torch.cat([stored, stored.flip(0)], 1))
    assert data.meta["class_names"] == ["pics", "earthporn"]
    assert store.text[3] is None and store.text_mask.tolist() == [True, True, True, False]
    assert store.image_mask.sum() == 0 and data.meta["image_root"] is None
    assert not any(r.endswith("Images.tar.gz") for r in hub.requests)   # images=False: no tarball


def test_split_tarball_parts(tmp_path):
    folder = tmp_path / "magb" / "Reddit-M"
    make_reddit(folder, prefix="RedditM", parts=True)
    data, warns = _load("RedditM", tmp_path, download=False)
    assert data.meta["name"] == "magb_reddit_m"
    assert data["post"].image_mask.all() and not [w for w in warns if "no image" in w]
    assert load_image(data["post"].image[1], root=data.meta["image_root"]).size == (12, 8)


def test_published_features_and_fingerprints(hub, tmp_path):
    root = tmp_path / "root"
    data, _ = _load("movies", root, text_feature="roberta_base_512_mean",
                    image_feature="Llama-3.2-11B-Vision-Instruct_visual", mm_feature="LLAMA8B_CLIP")
    store, feats = data["product"], data.meta["features"]
    ref = np.load(root / "magb" / "Movies" / "TextFeature" / "Movies_roberta_base_512_mean.npy")
    assert store.x_text.dtype == torch.float32 and torch.allclose(store.x_text, torch.from_numpy(ref).float())
    assert store.x_image.shape == (5, 3) and store.x_joint.shape == (5, 6)
    assert feats["x_text"]["encoder"] == "magb:Movies_roberta_base_512_mean.npy"
    assert feats["x_joint"]["encoder"] == "magb:Movies_LLAMA8B_CLIP.npy"
    spec = feats["x_text"]["spec"]
    assert spec["file"] == "TextFeature/Movies_roberta_base_512_mean.npy" and ":" in spec["digest"]
    assert store.text_mask.tolist()[4] is False                   # empty text stays masked
    # the fingerprint follows the file's content
    path = root / "magb" / "Movies" / "TextFeature" / "Movies_roberta_base_512_mean.npy"
    np.save(path, ref + 1.0)
    changed, _ = _load("movies", root, text_feature="roberta_base_512_mean", images=False)
    assert changed.meta["features"]["x_text"]["fingerprint"] != feats["x_text"]["fingerprint"]
    assert resolve_feature_file("roberta_base_512_mean", "Movies") == "Movies_roberta_base_512_mean.npy"


def test_wrong_row_count(hub, tmp_path):
    with pytest.raises(DataError, match=r"shape \(3, 4\), expected \[5 nodes"):
        load_magb("movies", tmp_path / "root", text_feature="bad_mean", images=False)


def test_missing_files_are_one_line_errors(hub, tmp_path):
    with pytest.raises(DataError) as err:
        load_magb("toys", tmp_path / "empty", download=False)
    msg = str(err.value)
    assert "\n" not in msg and "Toys.csv" in msg and str(tmp_path / "empty" / "magb" / "Toys") in msg
    assert "MMGRAPH_DATA" in msg and hub.requests == []
    hub.offline = True
    with pytest.raises(DataError) as err:
        load_magb("grocery", tmp_path / "empty")
    msg = str(err.value)
    assert "\n" not in msg and "GroceryS.csv" in msg and "LocalEntryNotFoundError" in msg
    assert hub.requests == ["Grocery/GroceryS.csv"]                # offline: no second guess
    with pytest.raises(DataError, match="unknown MAGB data set 'books'"):
        load_magb("books", tmp_path)


def test_images_required_vs_auto(tmp_path, monkeypatch):
    import huggingface_hub

    folder = tmp_path / "magb" / "Movies"
    make_movies(folder)
    (folder / "MoviesImages.tar.gz").unlink()
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", FakeHub(tmp_path / "nohub", offline=True))
    with pytest.raises(DataError, match="MoviesImages.tar.gz"):
        load_magb("movies", tmp_path)                             # images=True: required
    data, warns = _load("movies", tmp_path, images="auto")
    assert data["product"].image_mask.sum() == 0 and [w for w in warns if "no images" in w]


@pytest.mark.skipif(not HAS_DGL, reason="needs the dgl extra")
def test_dgl_graph_agrees_with_csv(tmp_path, monkeypatch):
    import dgl

    folder = tmp_path / "magb" / "Movies"
    make_movies(folder)
    g = dgl.graph((torch.tensor(MOVIES_STORED[0]), torch.tensor(MOVIES_STORED[1])))
    g.ndata["label"] = torch.tensor([m[3] for m in MOVIES])
    dgl.save_graphs(str(folder / "MoviesGraph.pt"), g)
    data = load_magb("movies", tmp_path, download=False, images=False)
    assert "dgl" in data.meta["graph_source"]
    import mmgraph.data.magb as magb
    rebuilt = magb._edges_from_csv(magb._read_csv(folder / "Movies.csv", magb.MAGB_DATASETS["movies"]),
                                   magb.MAGB_DATASETS["movies"], 5, folder / "Movies.csv")
    ei = data["product", "also_view_or_buy", "product"].edge_index
    assert torch.equal(ei[:, :rebuilt.size(1)], rebuilt)
    g.ndata["label"] = torch.tensor([1, 1, 0, 1, 0])
    dgl.save_graphs(str(folder / "MoviesGraph.pt"), g)
    with pytest.raises(DataError, match="disagrees"):
        load_magb("movies", tmp_path, download=False, images=False)


@pytest.mark.skipif(not HAS_DGL, reason="needs the dgl extra")
def test_missing_dgl_graph_file_falls_back_to_the_csv(hub, tmp_path):
    data, warns = _load("movies", tmp_path / "root", text_feature="roberta_base_512_mean", images=False)
    assert "Movies/MoviesGraph.pt" in hub.requests
    assert [w for w in warns if "rebuilding the edges from Movies.csv instead" in w]
    stored = torch.tensor(MOVIES_STORED)
    assert torch.equal(data["product", "also_view_or_buy", "product"].edge_index,
                       torch.cat([stored, stored.flip(0)], 1))
