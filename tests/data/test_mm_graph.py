"""MM-GRAPH loader on tiny fixtures saved in the published formats (no network)."""
from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch_geometric.utils import is_undirected

from mmgraph.data.graph import homogeneous_view, set_model_input
from mmgraph.data.images import load_image
from mmgraph.data.mm_graph import load_mm_graph
from mmgraph.errors import ConfigError, DataError

N = 12          # nodes
D = 4           # per-modality feature width (files hold [N, 2D])
ASINS = [f"B{i:05d}X" for i in range(N)]


def _jpeg(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (6, 5), color).save(buf, format="JPEG")
    return buf.getvalue()


def _hub(tmp_path: Path) -> Path:
    """A copy of the Hub layout with tiny ele-fashion and sports-copurchase folders."""
    hub = tmp_path / "hub"
    gen = torch.Generator().manual_seed(0)
    feat = torch.randn(N, 2 * D, generator=gen)
    feat[3, D:] = 0.0                                   # node 3 has no image embedding

    nc = hub / "ele-fashion"
    nc.mkdir(parents=True)
    # MM-GRAPH's NC files are plain pickles of Python lists/dicts (no tensor imports).
    edges = [[i, (i + 1) % N] for i in range(N)] + [[2, 2], [0, 5]]
    torch.save(edges, nc / "nc_edges-nodeid.pt")
    labels = [i % 3 for i in range(N)]
    labels[4] = labels[9] = -1
    torch.save(labels, nc / "labels-w-missing.pt")
    torch.save({"train_idx": [0, 1, 2, 3, 5, 6], "val_idx": [7, 8], "test_idx": [10, 11, 9]},
               nc / "split.pt")
    for name in ("clip", "t5vit"):
        torch.save(feat.clone() * (1 if name == "clip" else 2), nc / f"{name}_feat.pt")
    torch.save({a: i for i, a in enumerate(ASINS)}, nc / "node_mapping.pt")

    lp = hub / "sports-copurchase"
    lp.mkdir(parents=True)
    train = torch.tensor([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [6, 7], [7, 7]])
    split = {"train": {"source_node": train[:, 0], "target_node": train[:, 1]},
             "valid": {"source_node": torch.tensor([8, 9]), "target_node": torch.tensor([9, 10]),
                       "target_node_neg": torch.randint(0, N, (2, 5), generator=gen)},
             "test": {"source_node": torch.tensor([10, 0, 5]),
                      "target_node": torch.tensor([11, 11, 11]),
                      "target_node_neg": torch.randint(0, N, (3, 5), generator=gen)}}
    torch.save(split, lp / "lp-edge-split.pt")
    torch.save(feat.clone(), lp / "clip_feat.pt")
    torch.save({a: i for i, a in enumerate(ASINS)}, lp / "node_mapping.pt")

    raw = hub / "raw-data"
    raw.mkdir()
    with open(raw / "ele-fashion-raw-text.jsonl", "w") as fh:
        for i, a in enumerate(ASINS):
            if i != 6:                                   # node 6 has no text record
                fh.write(json.dumps({"asin": a, "raw_text": [f"title {i}", f"desc {i}"]}) + "\n")
    with tarfile.open(raw / "ele-fashion-images.tar", "w") as tar:
        for i, a in enumerate(ASINS):
            if i == 7:                                   # node 7 has no image
                continue
            blob = _jpeg((20 * i, 0, 0))
            info = tarfile.TarInfo(f"ele-fashion-images/{a}.jpg")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        info = tarfile.TarInfo("ele-fashion-images/readme.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    return hub


@pytest.fixture
def hub(tmp_path):
    return _hub(tmp_path)


@pytest.fixture
def fake_hub(hub, monkeypatch):
    """Patch huggingface_hub.hf_hub_download to copy from the fixture; records requests."""
    import huggingface_hub

    requested: list[str] = []

    def fake(repo_id, filename, repo_type=None, local_dir=None, **kw):
        assert repo_id == "mm-graph-org/mm-graph" and repo_type == "dataset"
        requested.append(filename)
        src = hub / filename
        if not src.is_file():
            raise huggingface_hub.errors.EntryNotFoundError(f"404 {filename}")
        dst = Path(local_dir) / filename
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        return str(dst)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    return requested


def test_node_classification_load(tmp_path, fake_hub, hub):
    root = tmp_path / "root"
    data = load_mm_graph("ele-fashion", root, feature="clip", text=False)
    assert sorted(fake_hub) == sorted(["ele-fashion/nc_edges-nodeid.pt", "ele-fashion/labels-w-missing.pt",
                                       "ele-fashion/split.pt", "ele-fashion/clip_feat.pt"])
    assert (root / "mm_graph" / "ele-fashion" / "split.pt").is_file()
    store = data["product"]
    assert data.meta["target"] == "product" and store.num_nodes == N
    assert store.y.dtype == torch.long and store.y[4] == -1 and store.y[9] == -1
    assert data.meta["class_names"] == ["class_0", "class_1", "class_2"]
    # MM-GRAPH's own split, as given (unlabelled node 9 stays in test and is counted)
    assert store.train_mask.nonzero().view(-1).tolist() == [0, 1, 2, 3, 5, 6]
    assert store.val_mask.nonzero().view(-1).tolist() == [7, 8]
    assert store.test_mask.sum() == 3
    assert data.meta["split"]["name"] == "mm-graph"
    assert data.meta["split"]["params"]["unlabelled"] == {"train": 0, "val": 0, "test": 1}
    # features: [text | image] halves
    feat = torch.load(hub / "ele-fashion" / "clip_feat.pt")
    assert torch.equal(store.x_text, feat[:, :D]) and torch.equal(store.x_image, feat[:, D:])
    assert store.image_mask.tolist() == [i != 3 for i in range(N)] and store.text_mask.all()
    info = data.meta["features"]["x_image"]
    assert info["encoder"] == "mm-graph:clip" and info["dim"] == D
    assert info["spec"]["file"] == "ele-fashion/clip_feat.pt" and info["spec"]["columns"] == [D, 2 * D]
    # undirected, no self-loops, duplicates merged
    ei = data["product", "linked", "product"].edge_index
    assert is_undirected(ei) and not (ei[0] == ei[1]).any() and ei.size(1) == 2 * (N + 1)
    assert data.meta["mm_graph"]["self_loops_dropped"] == 1
    assert homogeneous_view(set_model_input(data)).x.shape == (N, 2 * D)
    # cached: a second load requests nothing; another feature set only fetches its file
    fake_hub.clear()
    other = load_mm_graph("ele_fashion", root, feature="t5vit", text=False)
    assert fake_hub == ["ele-fashion/t5vit_feat.pt"]
    assert other.meta["features"]["x_text"]["fingerprint"] != info["fingerprint"]


def test_link_prediction_load(tmp_path, fake_hub):
    data = load_mm_graph("sports-copurchase", tmp_path, feature="clip")
    assert sorted(fake_hub) == ["sports-copurchase/clip_feat.pt", "sports-copurchase/lp-edge-split.pt"]
    et = ("product", "co_purchased", "product")
    store = data[et]
    assert store.train_pos.shape == (2, 7) and store.val_pos.shape == (2, 2)
    assert store.val_neg.shape == (2, 5) and store.test_pos.shape == (2, 3)
    assert store.test_neg.shape == (3, 5) and store.test_neg.dtype == torch.long
    assert store.val_pos[:, 0].tolist() == [8, 9]
    # message passing sees the training edges only, both directions, no self-loop
    pairs = {tuple(p) for p in store.edge_index.t().tolist()}
    train = {(u, v) for u, v in store.train_pos.t().tolist() if u != v}
    assert pairs == train | {(v, u) for u, v in train}
    for part in ("val_pos", "test_pos"):
        for u, v in store[part].t().tolist():
            assert (u, v) not in pairs and (v, u) not in pairs
    meta = data.meta["lp_split"]
    assert meta["sizes"] == {"train": 7, "val": 2, "test": 3} and meta["num_neg"] == 5
    assert data["product"].num_nodes == N and "y" not in data["product"]
    assert data.meta["task"] == "link_prediction" and "split" not in data.meta


def test_link_prediction_named_split_missing(tmp_path, fake_hub):
    with pytest.raises(DataError, match="lp-edge-split-hard.pt") as info:
        load_mm_graph("sports-copurchase", tmp_path, split="hard")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="random, hard"):
        load_mm_graph("sports-copurchase", tmp_path, split="easy")


def test_offline_and_no_download_errors_are_one_line(tmp_path, monkeypatch):
    import huggingface_hub

    def offline(**kw):
        raise huggingface_hub.errors.LocalEntryNotFoundError(
            "An error happened while trying to locate the file on the Hub\nand more lines")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(DataError) as info:
        load_mm_graph("books-nc", tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and "books-nc/" in msg and str(tmp_path / "mm_graph") in msg
    assert "MMGRAPH_DATA" in msg and "online" in msg
    with pytest.raises(DataError, match="download=false") as info:
        load_mm_graph("books-nc", tmp_path, download=False)
    assert "\n" not in str(info.value)


def test_corrupt_file_is_one_line_error(tmp_path, fake_hub):
    load_mm_graph("ele-fashion", tmp_path, text=False)
    target = tmp_path / "mm_graph" / "ele-fashion" / "split.pt"
    target.write_bytes(target.read_bytes()[:40])      # truncated download
    with pytest.raises(DataError, match="corrupt") as info:
        load_mm_graph("ele-fashion", tmp_path, text=False)
    assert "\n" not in str(info.value) and "split.pt" in str(info.value)
    target.write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="corrupt") as info:
        load_mm_graph("ele-fashion", tmp_path, text=False)
    assert "\n" not in str(info.value)


def test_bad_names(tmp_path, fake_hub):
    with pytest.raises(ConfigError, match="clip, imagebind, t5vit, t5dino"):
        load_mm_graph("ele-fashion", tmp_path, feature="vit")
    with pytest.raises(ConfigError, match="ele-fashion, books-nc, sports-copurchase"):
        load_mm_graph("amazon-sports", tmp_path)
    with pytest.raises(ConfigError, match="node split"):
        load_mm_graph("ele-fashion", tmp_path, split="random")
    assert fake_hub == []


def _leave_marker(path: str, labels: list[int]) -> list[int]:
    """What unpickling a :class:`_Marker` calls: a file left behind proves the pickle's code ran."""
    Path(path).write_text("unpickled")
    return labels


class _Marker:
    """Pickles as a call of ``_leave_marker``, as a malicious file would pickle ``os.system``."""

    def __init__(self, path: Path, labels: list[int]):
        self.path, self.labels = str(path), labels

    def __reduce__(self):
        return _leave_marker, (self.path, self.labels)


def test_pickled_code_refused_by_default_and_run_only_when_allowed(tmp_path, fake_hub, hub):
    marker = tmp_path / "code-ran"
    labels = [i % 3 for i in range(N)]
    torch.save(_Marker(marker, labels), hub / "ele-fashion" / "labels-w-missing.pt")
    with pytest.raises(DataError) as info:
        load_mm_graph("ele-fashion", tmp_path / "root", text=False)
    msg = str(info.value)
    assert "\n" not in msg and "labels-w-missing.pt pickles tests.data.test_mm_graph._leave_marker" in msg
    assert "dataset.loader.allow_pickle=true" in msg
    assert not marker.exists()                                  # the file's code never ran
    data = load_mm_graph("ele-fashion", tmp_path / "root", text=False, allow_pickle=True)
    assert marker.read_text() == "unpickled"
    assert data["product"].y.tolist() == labels


def test_numpy_pickle_needs_allow_pickle(tmp_path, fake_hub, hub):
    torch.save(np.array([i % 3 for i in range(N)]), hub / "ele-fashion" / "labels-w-missing.pt")
    with pytest.raises(DataError, match=r"pickles numpy\S*_reconstruct, which .*allow_pickle=True"):
        load_mm_graph("ele-fashion", tmp_path, text=False)
    data = load_mm_graph("ele-fashion", tmp_path, text=False, allow_pickle=True)
    assert data["product"].y.tolist() == [i % 3 for i in range(N)]


def test_text_and_lazy_images(tmp_path, fake_hub):
    root = tmp_path / "root"
    data = load_mm_graph("ele-fashion", root, feature=None, text=True, images=True)
    assert "ele-fashion/node_mapping.pt" in fake_hub
    assert "raw-data/ele-fashion-raw-text.jsonl" in fake_hub and "raw-data/ele-fashion-images.tar" in fake_hub
    assert "ele-fashion/clip_feat.pt" not in fake_hub
    store = data["product"]
    assert store.num_nodes == N and "x_text" not in store
    assert store.text[0] == "title 0 desc 0" and store.text[6] is None
    assert store.text_mask.tolist() == [i != 6 for i in range(N)]
    assert store.image[7] is None and store.image_mask.tolist() == [i != 7 for i in range(N)]
    image_root = Path(data.meta["image_root"])
    assert image_root == root / "mm_graph" / "raw-data" / "ele-fashion-images"
    assert store.image[2] == f"ele-fashion-images/{ASINS[2]}.jpg"
    img = load_image(store.image[2], root=image_root)
    assert img.size == (6, 5) and abs(img.getpixel((2, 2))[0] - 40) < 8
    assert not (image_root / "ele-fashion-images" / "readme.txt").exists()
    assert [p.name for p in image_root.parent.iterdir() if p.name.startswith(".")] == []
    # once extracted, the tar is no longer needed (nor re-read)
    (root / "mm_graph" / "raw-data" / "ele-fashion-images.tar").unlink()
    fake_hub.clear()
    again = load_mm_graph("ele-fashion", root, feature=None, images=True)
    assert fake_hub == [] and list(again["product"].image) == list(store.image)
    assert again["product"].text[0] == "title 0 desc 0"   # text=None: used since it is local
    sub = again.subgraph({"product": torch.tensor([2, 7])})
    assert list(sub["product"].image) == [store.image[2], None]


def test_no_images_without_request(tmp_path, fake_hub):
    data = load_mm_graph("ele-fashion", tmp_path, text=False)
    assert "image" not in data["product"] and "image_root" not in data.meta
    assert not any("raw-data" in f or "node_mapping" in f for f in fake_hub)


def test_configs_match_the_loader(tmp_path, fake_hub):
    import inspect

    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    configs = sorted((Path(__file__).resolve().parents[2] / "configs" / "dataset").glob("mmg_*.yaml"))
    assert [c.stem for c in configs] == ["mmg_books_nc", "mmg_cloth_copurchase",
                                         "mmg_ele_fashion", "mmg_sports_copurchase"]
    params = set(inspect.signature(load_mm_graph).parameters)
    for path in configs:
        cfg = OmegaConf.load(path)
        assert cfg.split == {"name": "given"} and cfg.name == path.stem
        assert set(cfg.loader) - {"_target_"} <= params
        if cfg.loader.name in ("ele-fashion", "sports-copurchase"):
            cfg.loader.root = str(tmp_path)
            data = instantiate(cfg.loader)
            assert data.meta["name"] == path.stem


def test_given_split_keeps_the_loaders_record_and_lp_task_uses_the_published_edges(tmp_path, fake_hub):
    """The runner's `split: {name: given}` keeps MM-GRAPH's split; link prediction ranks its negatives."""
    from mmgraph.data.splits import make_split
    from mmgraph.tasks import LinkPrediction

    nc = load_mm_graph("ele-fashion", tmp_path / "a", feature="clip", text=False)
    before = dict(nc.meta["split"])
    make_split(nc, "given")
    assert nc.meta["split"]["name"] == before["name"] == "mm-graph"
    assert nc.meta["split"]["fingerprint"] == before["fingerprint"]

    lp = load_mm_graph("sports-copurchase", tmp_path / "b", feature="clip")
    set_model_input(lp)
    task = LinkPrediction()
    task.setup(lp, torch.device("cpu"))
    et = tuple(lp.meta["lp_split"]["edge_type"])
    assert torch.equal(task.pos["test"], lp[et].test_pos) and torch.equal(task.neg["val"], lp[et].val_neg)
    assert task.describe()["split"]["sizes"] == lp.meta["lp_split"]["sizes"]
    from mmgraph.nn import GCN
    model = task.wrap(GCN(hidden_channels=8, num_layers=2, **task.model_kwargs()))
    metrics = task.evaluate(model)
    assert set(metrics) == {"train", "val", "test"} and 0 < metrics["test"]["mrr"] <= 1
