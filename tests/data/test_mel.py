"""The MIMIC / M3EL layout loader (``load_mel``) on the fixture of tests/data/mel_fixture.py, for
the three data sets and both description keys (MIMIC's ``attr``, M3EL's ``desc``)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from urllib.parse import unquote

import pytest
import torch

from mmgraph.data import mel
from mmgraph.data.mel import load_mel, mention_image_name
from mmgraph.errors import ConfigError, DataError
from tests.data.mel_fixture import (ABSENT_QID, ENTITIES, LAYOUTS, MENTIONS, mention_prefix,
                                    write_mel_fixture)

NAMES = list(LAYOUTS)
SPLIT_OF = {"train": "train", "dev": "val", "test": "test"}


def _load(root, name="wikimel", **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_mel(root, name, progress=False, **kw)
    return data, [str(w.message) for w in caught]


def _error(exc_type, root, name="wikimel", **kw) -> str:
    with pytest.raises(exc_type) as info:
        load_mel(root, name, progress=False, use_cache=False, **kw)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


@pytest.fixture()
def root(tmp_path):
    return write_mel_fixture(tmp_path / "WikiMEL", "wikimel")


def _edit_json(path: Path, edit) -> None:
    value = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(edit(value)), encoding="utf-8")


# ----------------------------------------------------------------------------- fields


@pytest.mark.parametrize("desc_key", ["attr", "desc"])
@pytest.mark.parametrize("name", NAMES)
def test_every_field_for_each_data_set_and_description_key(tmp_path, name, desc_key):
    root = write_mel_fixture(tmp_path / name, name, desc_key)
    data, msgs = _load(root, name.upper() if desc_key == "desc" else name)
    image_root = Path(data.meta["image_root"])
    assert image_root == root.absolute()
    assert data.meta["name"] == name and data.meta["task"] == "entity_linking"
    assert data.meta["target"] == "mention" and data.meta["version"] == mel.VERSION

    ent = data["entity"]
    assert ent.num_nodes == len(ENTITIES)
    assert list(ent.key) == [e[0] for e in ENTITIES]                  # id order, not file order
    assert list(ent.name) == [unquote(e[2]) for e in ENTITIES]
    assert ent.name[0] == "François_Hollande" and ent.name[5] == "Zürich"
    assert list(ent.text) == [f"{unquote(e[2])}. {e[3]}" for e in ENTITIES]
    assert bool(ent.text_mask.all())
    expected = [[f"kb_image/{i}" for i in e[4] if i not in e[5]] for e in ENTITIES]
    assert list(ent.image) == [imgs[0] if imgs else None for imgs in expected]
    assert ent.num_images.tolist() == [len(imgs) for imgs in expected]
    assert ent.image_mask.tolist() == [bool(imgs) for imgs in expected]
    assert ent.image[1] == "kb_image/Q567_1.jpg"                     # the first listed has no file
    assert ent.image[5] == "kb_image/Q72/0.jpg"                       # a sub-folder
    assert ent.image[4] is None and ent.image[9] is None and ent.image[11] is None
    assert all((image_root / p).is_file() for p in ent.image if p is not None)

    men = data["mention"]
    rows = [(s, m) for s in ("train", "dev", "test") for m in MENTIONS[s]]
    assert men.num_nodes == len(rows) == 12
    assert list(men.key) == [f"{SPLIT_OF[s]}/{m[0]}" for s, m in rows]
    assert list(men.mention) == [unquote(m[1]) for _, m in rows]
    assert men.mention[0] == "François Hollande" and men.mention[2] == "São Paulo"
    assert list(men.sentence) == [m[2] for _, m in rows]
    assert men.text[1] == "President Obama at the White House."        # the words are in the sentence
    assert men.text[11] == "someone. A man waves from a boat."        # words not in the sentence
    folder = LAYOUTS[name][1]
    stems = [m[3].rsplit("/", 1)[-1].split(".", 1)[0] for _, m in rows]
    assert list(men.image) == [f"{folder}/{st}.jpg" if m[5] else None for st, (_, m) in zip(stems, rows)]
    assert men.image[2] == f"{folder}/train_2.jpg"                    # train_2.photo.png
    assert men.image_mask.tolist() == [m[5] for _, m in rows]
    assert all((image_root / p).is_file() for p in men.image if p is not None)
    index = {e[0]: i for i, e in enumerate(ENTITIES)}
    assert men.y.tolist() == [index.get(m[4], -1) for _, m in rows]
    assert men.y.tolist() == [0, 3, 2, 0, 8, 1, -1, 6, 3, -1, 4, -1]
    assert MENTIONS["test"][1][4] == ABSENT_QID and men.y[9] == -1     # kept, not linked
    for s in ("train", "dev", "test"):
        mask = [sp == s for sp, _ in rows]
        assert men[f"{SPLIT_OF[s]}_mask"].tolist() == mask

    # gold links of training mentions only
    links = data["mention", "links_to", "entity"].edge_index
    assert links.t().tolist() == [[0, 0], [1, 3], [2, 2], [3, 0], [4, 8]]
    assert torch.equal(data["entity", "linked_from", "mention"].edge_index, links.flip(0))
    assert [ent.key[i] for i in torch.nonzero(ent.seen).view(-1).tolist()] == ["Q157", "Q174", "Q76", "Q23"]

    el = data.meta["entity_linking"]
    assert el["nil"] == {"train": 0, "val": 1, "test": 1}
    assert el["answer_not_in_kb"] == {"train": 0, "val": 0, "test": 1}
    assert el["unseen_gold"] == {"train": 0, "val": 2, "test": 1}     # Q567, Q42 / Q243
    assert data.meta["split"]["sizes"] == {"train": 5, "val": 3, "test": 4}

    stats = data.meta["stats"]
    assert stats["entities"] == 12 and stats["entities_with_image"] == 9 and stats["entity_images"] == 11
    assert stats["description_key"] == {desc_key: 12}
    assert stats["kb_images_missing"] == 2 and stats["mention_images_missing"] == 1
    assert stats["mentions_without_image_path"] == 1 and stats["answer_not_in_kb"] == 1
    assert stats["published"]["kb_entities"] == mel.DATASETS[name].kb_size
    prefix = mention_prefix(name, desc_key)
    assert data.meta["files"]["test"] == f"{prefix}_test.json"
    assert data.meta["files"]["mention_images"] == folder
    assert "MIMIC" in data.meta["source"] and "M3EL" in data.meta["source"]
    assert data.meta["license"] and data.meta["dataset"] == mel.DATASETS[name].label

    # one counted line per kind of problem
    assert len(msgs) == 3 and all("\n" not in m for m in msgs)
    assert sum("2 images listed in kb_entity.json have no file" in m and "1 entities are left" in m
               for m in msgs) == 1
    assert sum("1 mention images have no file" in m for m in msgs) == 1
    assert sum("1 mentions answer a QID that kb_entity.json lacks" in m for m in msgs) == 1


def test_mention_image_name_follows_mimic():
    assert mention_image_name("abc.png") == "abc.jpg"
    assert mention_image_name("dir/sub/abc.def.jpeg") == "abc.jpg"
    assert mention_image_name("abc") == "abc.jpg"
    assert mention_image_name("") is None and mention_image_name("dir/") is None


def test_fixture_writes_the_published_layout(root):
    assert sorted(p.name for p in root.iterdir()) == [
        "WIKIMEL_dev.json", "WIKIMEL_test.json", "WIKIMEL_train.json", "kb_entity.json",
        "kb_image", "mention_image", "qid2id.json"]
    lines = (root / "qid2id.json").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["Q157"] == 0
    kb = json.loads((root / "kb_entity.json").read_text(encoding="utf-8"))
    assert isinstance(kb, list) and set(kb[0]) == {"id", "qid", "type", "entity_name", "attr", "image_list"}
    assert "\\u00e9" in (root / "kb_entity.json").read_text(encoding="ascii")   # json.dump's escapes
    rec = json.loads((root / "WIKIMEL_dev.json").read_text(encoding="utf-8"))[1]
    assert rec == {"id": 1, "mentions": "the crowd", "sentence": "The crowd outside the stadium.",
                   "imgPath": "dev_1.jpg", "answer": "nil"}
    m3el = write_mel_fixture(root.parent / "m3el", "wikidiverse", "desc")
    rec = json.loads((m3el / "WikiDiverse_train.json").read_text(encoding="utf-8"))[0]
    assert rec["entities"] == "Fran%C3%A7ois_Hollande"
    assert "desc" in json.loads((m3el / "kb_entity.json").read_text(encoding="utf-8"))[0]


def test_other_folder_and_file_names_are_found(tmp_path):
    # WikiMEL with RichpediaMEL's folder name; WikiDiverse with MIMIC's and M3EL's file names
    a = write_mel_fixture(tmp_path / "a", "wikimel", mention_dir="mention_images")
    data, _ = _load(a, "wikimel")
    assert data["mention"].image[0] == "mention_images/train_0.jpg"
    for prefix in ("wiki_diverse", "WikiDiverse"):
        b = write_mel_fixture(tmp_path / prefix, "wikidiverse", prefix=prefix)
        data, _ = _load(b, "wikidiverse")
        assert data.meta["files"]["train"] == f"{prefix}_train.json"


def test_limit_keeps_the_first_mentions_of_each_split(root):
    data, _ = _load(root, limit=1, use_cache=False)
    assert list(data["mention"].key) == ["train/0", "val/0", "test/0"]
    assert data["entity"].num_nodes == 12                             # the KB stays whole
    assert data.meta["stats"]["mention_records"] == {"train": 5, "val": 3, "test": 4}


def test_kb_records_without_qid_duplicated_or_not_entities(root):
    def edit(kb):
        for rec in kb:
            if rec["qid"] == "Q90":
                del rec["qid"]                          # found through qid2id.json
        kb.append({"id": 12, "type": "entity", "entity_name": "Nowhere", "attr": "", "image_list": []})
        kb.append({"id": 13, "qid": "Q157", "type": "entity", "entity_name": "Again", "attr": "",
                   "image_list": []})
        kb.append({"id": 14, "type": "mention", "mentions": "x"})
        kb.append({"id": 5, "qid": "Q99", "type": "entity", "entity_name": "Wrong_id", "attr": "x",
                   "image_list": []})
        return kb
    _edit_json(root / "kb_entity.json", edit)
    _edit_json(root / "qid2id.json", lambda q: {**q, "Q99": 15})
    data, msgs = _load(root, use_cache=False)
    keys = list(data["entity"].key)
    assert keys.count("Q90") == 1 and keys.count("Q157") == 1 and "Q99" in keys
    assert data["entity"].name[keys.index("Q157")] == "François_Hollande"   # the first record wins
    skipped = data.meta["stats"]["skipped_records"]
    assert skipped == {"not_entity": 1, "no_qid": 1, "duplicate_qid": 1}
    assert data.meta["stats"]["qid2id_mismatch"] == 1
    for text in ("skipped 1 records of kb_entity.json whose type is not 'entity'",
                 "skipped 1 records of kb_entity.json with no QID",
                 "skipped 1 records of kb_entity.json whose QID an earlier record has",
                 "1 records of kb_entity.json have an 'id' other than"):
        assert sum(text in m for m in msgs) == 1


def test_missing_image_folders_are_warnings(root):
    for folder in ("kb_image", "mention_image"):
        for p in sorted((root / folder).rglob("*"), reverse=True):
            p.rmdir() if p.is_dir() else p.unlink()
        (root / folder).rmdir()
    data, msgs = _load(root, use_cache=False)
    assert not bool(data["entity"].image_mask.any()) and not bool(data["mention"].image_mask.any())
    assert data["entity"].num_images.sum() == 0
    assert any("13 images listed" in m and "there is no folder" in m for m in msgs)
    assert any("11 mention images have no file" in m and "no such folder" in m for m in msgs)


# ----------------------------------------------------------------------------- cache


def test_second_load_reads_the_cache(root, monkeypatch):
    first, msgs = _load(root)
    assert msgs                                                       # built: warnings
    cached = list((root / "processed").glob("wikimel-*.pt"))
    assert len(cached) == 1

    def no_build(*args, **kwargs):
        raise AssertionError("the graph was rebuilt")
    monkeypatch.setattr(mel, "_build", no_build)
    second, msgs = _load(root)
    assert msgs == []
    assert list(second["entity"].key) == list(first["entity"].key)
    assert torch.equal(second["mention"].y, first["mention"].y)
    assert second.meta["stats"] == first.meta["stats"]
    monkeypatch.undo()

    # another limit or changed files: another cache entry
    _load(root, limit=2)
    assert len(list((root / "processed").glob("wikimel-*.pt"))) == 2
    _edit_json(root / "WIKIMEL_test.json", lambda rows: rows[:2])
    data, _ = _load(root)
    assert data["mention"].test_mask.sum() == 2


def test_corrupt_cache_is_rebuilt_with_a_warning(root):
    _load(root)
    (cache,) = (root / "processed").glob("wikimel-*.pt")
    cache.write_bytes(b"not a torch file")
    data, msgs = _load(root)
    assert data["mention"].num_nodes == 12
    assert sum("corrupt processed cache" in m for m in msgs) == 1
    again, msgs = _load(root)
    assert msgs == [] and again["mention"].num_nodes == 12


def test_no_cache_writes_nothing(root):
    _load(root, use_cache=False)
    assert not (root / "processed").exists()


# ----------------------------------------------------------------------------- bad input


def test_missing_folder(tmp_path):
    msg = _error(DataError, tmp_path / "nowhere")
    assert "nowhere" in msg and "does not exist" in msg and "MIMIC" in msg and "M3EL" in msg
    assert "kb_entity.json" in msg


@pytest.mark.parametrize("fname", ["kb_entity.json", "qid2id.json", "WIKIMEL_dev.json"])
def test_missing_file(root, fname):
    (root / fname).unlink()
    msg = _error(DataError, root)
    assert fname in msg and str(root.absolute()) in msg and "not found" in msg
    assert "github.com/pengfei-luo/MIMIC" in msg


@pytest.mark.parametrize("fname", ["kb_entity.json", "qid2id.json", "WIKIMEL_train.json"])
def test_corrupt_json(root, fname):
    path = root / fname
    path.write_text(path.read_text(encoding="utf-8")[:-7], encoding="utf-8")
    msg = _error(DataError, root)
    assert str(path.absolute()) in msg and "cannot parse" in msg


def test_wrong_shapes(root):
    (root / "kb_entity.json").write_text('{"a": 1}', encoding="utf-8")
    assert "expected a JSON list" in _error(DataError, root)
    write_mel_fixture(root, "wikimel")
    _edit_json(root / "kb_entity.json", lambda kb: kb + [{"id": 20, "qid": "Q1", "attr": "x"}])
    msg = _error(DataError, root)
    assert "kb_entity.json: record 12 lacks 'entity_name'" in msg
    write_mel_fixture(root, "wikimel")
    _edit_json(root / "WIKIMEL_test.json", lambda rows: rows + ["just a string"])
    assert "WIKIMEL_test.json: record 4 is not a JSON object" in _error(DataError, root)
    write_mel_fixture(root, "wikimel")
    _edit_json(root / "WIKIMEL_train.json", lambda rows: [{k: v for k, v in r.items() if k != "answer"}
                                                          for r in rows])
    assert "record 0 lacks 'answer'" in _error(DataError, root)


@pytest.mark.parametrize("bad", ["wikimelx", "MEL", None, 3])
def test_wrong_name(root, bad):
    msg = _error(ConfigError, root, bad)
    assert "wikimel, richpediamel, wikidiverse" in msg


def test_bad_limit(root):
    assert "limit" in _error(ConfigError, root, limit=-1)
