import pytest
import torch

from mmgraph.data.graph import homogeneous_view, split_indices
from mmgraph.data.planetoid import load_planetoid
from mmgraph.errors import DataError


def test_cora_from_raw_files(cora_root):
    data = load_planetoid("Cora", cora_root)
    store = data["paper"]
    assert store.num_nodes == 2708 and store.x_text.shape == (2708, 1433)
    assert data["paper", "cites", "paper"].edge_index.size(1) == 10556
    assert len(data.meta["class_names"]) == 7 and int(store.y.max()) == 6
    sizes = {k: v.numel() for k, v in split_indices(data).items()}
    assert sizes == {"train": 140, "val": 500, "test": 1000}
    assert torch.bincount(store.y[store.train_mask]).tolist() == [20] * 7
    assert torch.allclose(store.x_text.sum(1), torch.ones(2708))  # row-normalised
    assert data.meta["split"]["name"] == "public"
    assert homogeneous_view(data).edge_index.size(1) == 10556


def test_feature_fingerprint_tracks_preprocessing(cora_root):
    a = load_planetoid("Cora", cora_root).meta["features"]["x_text"]["fingerprint"]
    b = load_planetoid("Cora", cora_root, normalize_features=False).meta["features"]["x_text"]["fingerprint"]
    assert a != b and a == load_planetoid("cora", cora_root).meta["features"]["x_text"]["fingerprint"]


def test_unknown_name_and_corrupt_files(cora_root, tmp_path):
    with pytest.raises(DataError, match="unknown Planetoid data set 'Corra'"):
        load_planetoid("Corra", cora_root)
    bad = tmp_path / "bad"
    (bad / "Cora" / "raw").mkdir(parents=True)
    for f in (cora_root / "Cora" / "raw").iterdir():
        (bad / "Cora" / "raw" / f.name).write_bytes(f.read_bytes())
    (bad / "Cora" / "raw" / "ind.cora.x").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="corrupt"):
        load_planetoid("Cora", bad)
