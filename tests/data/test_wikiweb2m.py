"""WikiWeb2M loader on a tiny fixture in MMGL's layout (byte-string parquet files, split pickle,
images named ``{page_id}_{section_id}_{image_index}.{ext}``)."""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mmgraph.data.wikiweb2m import COLUMNS, EDGE_TYPES, load_wikiweb2m
from mmgraph.errors import DataError

SCHEMA = pa.schema([("page_id", pa.int64()), ("page_url", pa.binary()), ("page_title", pa.binary()),
                    ("page_description", pa.binary()), ("section_title", pa.list_(pa.binary())),
                    ("section_depth", pa.list_(pa.int64())), ("section_heading", pa.list_(pa.int64())),
                    ("section_parent_index", pa.list_(pa.int64())),
                    ("section_summary", pa.list_(pa.binary())),
                    ("section_rest_sentence", pa.list_(pa.binary())),
                    ("image_url", pa.list_(pa.binary())), ("image_caption", pa.list_(pa.binary()))])


def _page(pid, title, sections, per_section=2):
    """sections: (title, parent, summary, rest, [(url, caption), ...]); images flattened as MMGL
    stores them: [sections x per_section], padded with empty URLs."""
    urls, caps = [], []
    for *_, imgs in sections:
        imgs = list(imgs) + [(b"", b"")] * (per_section - len(imgs))
        urls += [u for u, _ in imgs]
        caps += [c for _, c in imgs]
    return {"page_id": pid, "page_url": f"https://en.wikipedia.org/wiki/{title}".encode(),
            "page_title": title.encode(), "page_description": f"About {title}.\n".encode(),
            "section_title": [s[0] for s in sections], "section_depth": [1] * len(sections),
            "section_heading": [2] * len(sections), "section_parent_index": [s[1] for s in sections],
            "section_summary": [s[2] for s in sections], "section_rest_sentence": [s[3] for s in sections],
            "image_url": urls, "image_caption": caps}


PAGES = {
    "train": [
        _page(0, "Alpha", [(b"Intro", -1, b"Alpha intro first.", b"Alpha intro  rest.",
                            [(b"http://img/a0.png", b"cap a0")]),
                           (b"History", 0, b"Alpha history first.", b"Alpha history rest.",
                            [(b"http://img/a1.jpg", b"cap a1")]),          # file missing
                           (b"Early", 1, b"Alpha early first.", b"Alpha early rest.", [])]),
        _page(1, "Beta", [(b"Intro", -1, b"", b"Beta intro rest.", []),      # empty target
                          (b"Caf\xe9", -1, b"Caf\xe9 first.", b"Beta rest.", [])]),  # not UTF-8
    ],
    "val": [
        _page(2, "Gamma", [(f"S{i}".encode(), -1, f"Gamma {i} first.".encode(), f"Gamma {i} rest.".encode(),
                            [(f"http://img/g{i}.png".encode(), f"cap g{i}".encode())]) for i in range(4)]),
    ],
    "test": [
        _page(3, "Delta", [(b"Intro", -1, b"Delta intro first.", b"Delta intro rest.", []),
                           (b"Body", 0, b"Delta body first.", b"Delta body rest.",
                            [(b"http://img/d1.png", b"cap d1")])]),
    ],
}
IMAGES = ["0_0_0.png", "2_0_0.png", "2_1_0.png", "2_2_0.png", "2_3_0.png", "3_1_0.png"]
SPLIT = {"train": [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)], "val": [(2, 0), (2, 2)],
         "test": [(3, 1), (99, 0)]}          # (1, 0): empty target; (99, 0): unknown page


def _write(root: Path, pages=PAGES, schema=SCHEMA) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split, rows in pages.items():
        table = pa.Table.from_pylist(rows, schema=schema)
        pq.write_table(table, root / f"wikiweb2m_{split}_large.parquet")
    with open(root / "section_id_split_large.pkl", "wb") as fp:
        pickle.dump(SPLIT, fp)
    (root / "images").mkdir(exist_ok=True)
    for name in IMAGES:
        Image.new("RGB", (2, 2), (255, 0, 0)).save(root / "images" / name)
    return root


@pytest.fixture()
def root(tmp_path):
    return _write(tmp_path / "wikiweb2m")


def _load(root, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_wikiweb2m(root, progress=False, **kw)
    return ds, [str(w.message) for w in caught]


def _edges(ex, rel):
    src, dst = next((s, d) for s, r, d in EDGE_TYPES if r == rel)
    return [tuple(e) for e in ex[src, rel, dst].edge_index.t().tolist()]


def _find(ds, page_id, section_id):
    return next(ex for ex in ds if ex.page_id == page_id and ex.section_id == section_id)


def test_examples_per_split_for_both_split_sources(root):
    ds, msgs = _load(root, split_source="mmgl")
    assert ds.counts() == {"train": 4, "val": 2, "test": 1}
    assert [(ex.page_id, ex.section_id) for ex in ds.split("train")] == [(0, 0), (0, 1), (0, 2), (1, 1)]
    assert ds.meta["name"] == "wikiweb2m" and ds.meta["split_source"] == "mmgl"
    assert any("skipped 1 split entries" in m for m in msgs)
    ds2, _ = _load(root, split_source="wikiweb2m")
    assert ds2.counts() == {"train": 4, "val": 4, "test": 2}
    assert {ex.split for ex in ds2 if ex.page_id == 2} == {"val"}


def test_wikiweb2m_split_does_not_need_the_pickle(root):
    (root / "section_id_split_large.pkl").unlink()
    ds, _ = _load(root, split_source="wikiweb2m")
    assert len(ds) == 10
    with pytest.raises(DataError, match="section_id_split_large.pkl"):
        _load(root, split_source="mmgl")


def test_example_nodes_edges_and_texts(root):
    ds, _ = _load(root)
    ex = _find(ds, 0, 0)
    assert ex.split == "train" and ex.meta["name"] == "wikiweb2m" and "MMGL" in ex.meta["source"]
    assert ex.meta["target"] == "section" and "version" in ex.meta
    assert {t: ex[t].num_nodes for t in ("section", "page", "image", "caption")} == \
        {"section": 3, "page": 1, "image": 2, "caption": 2}
    assert set(ex.edge_types) == set(EDGE_TYPES)
    s = ex["section"]
    assert s.section_index.tolist() == [0, 1, 2] and s.is_target.tolist() == [True, False, False]
    assert s.target_text[0] == "Alpha intro first." and s.input_text[0] == "Alpha intro rest."
    assert s.text[0] == "Alpha intro rest."            # the target's node text is its input, never the summary
    assert s.text[1] == "Alpha history first., Alpha history rest."
    assert s.target_text[1] is None and s.title[2] == "Early"
    assert ex["page"].text[0] == "Alpha, About Alpha."
    assert list(ex["caption"].text) == ["cap a0", "cap a1"]
    assert list(ex["image"].image) == ["0_0_0.png", None] and ex["image"].image_mask.tolist() == [True, False]
    assert (Path(ex.meta["image_root"]) / ex["image"].image[0]).is_file()
    assert _edges(ex, "in_page") == [(0, 0)] and _edges(ex, "has_section") == [(0, 0)]
    assert _edges(ex, "next") == [(0, 1), (1, 2)] and _edges(ex, "prev") == [(1, 0), (2, 1)]
    assert _edges(ex, "child_of") == [(1, 0), (2, 1)] and _edges(ex, "parent_of") == [(0, 1), (1, 2)]
    assert _edges(ex, "has_image") == [(0, 0), (1, 1)] and _edges(ex, "image_of") == [(0, 0), (1, 1)]
    assert _edges(ex, "captioned_by") == [(0, 0), (1, 1)] and _edges(ex, "describes") == [(0, 0), (1, 1)]
    assert _edges(ex, "has_caption") == [(0, 0), (1, 1)]

    # target in the middle: node 0 is page section 2, edges follow page order and parents
    ex = _find(ds, 0, 2)
    assert ex["section"].section_index.tolist() == [2, 0, 1]
    assert _edges(ex, "next") == [(1, 2), (2, 0)]
    assert sorted(_edges(ex, "child_of")) == [(0, 2), (2, 1)]
    assert ex["image"].section_index.tolist() == [0, 1]
    assert ex["section"].target_text[0] == "Alpha early first."


def test_counted_warnings_and_non_utf8(root):
    ds, msgs = _load(root)
    assert sum("1 section images have no file" in m for m in msgs) == 1
    assert sum("dropped 1 examples whose target text" in m for m in msgs) == 1
    assert sum("2 text values are not valid UTF-8" in m for m in msgs) == 1   # title + summary
    assert all("\n" not in m for m in msgs)
    ex = _find(ds, 1, 1)
    assert ex["section"].target_text[0] == "Caf\ufffd first."
    assert ex["section"].title[0] == "Caf\ufffd"
    assert ex["image"].num_nodes == 0 and ex["caption"].num_nodes == 0
    assert _edges(ex, "next") == [(1, 0)]       # page section 0 (context) -> 1 (target)
    assert (1, 0) not in {(e.page_id, e.section_id) for e in ds}


def test_missing_images_folder_is_a_warning_not_a_crash(root):
    for name in IMAGES:
        (root / "images" / name).unlink()
    (root / "images").rmdir()
    ds, msgs = _load(root)
    assert len(ds) == 7
    assert all(not bool(ex["image"].image_mask.any()) for ex in ds)
    assert any("section images have no file" in m and "no folder" in m for m in msgs)


@pytest.mark.parametrize("max_text,max_image,expect", [
    (2, 1, {"section": 1, "page": 1, "image": 1, "caption": 1}),
    (3, 2, {"section": 2, "page": 1, "image": 2, "caption": 1}),
    (1, 3, {"section": 3, "page": 1, "image": 3, "caption": 0}),
    (0, 0, {"section": 4, "page": 0, "image": 0, "caption": 0}),
])
def test_neighbour_caps(root, max_text, max_image, expect):
    ds, _ = _load(root, split_source="wikiweb2m", max_text_neighbors=max_text,
                  max_image_neighbors=max_image)
    for ex in ds:
        texts = ex["page"].num_nodes + int(ex["section"].text_mask[1:].sum()) + ex["caption"].num_nodes
        assert texts <= max_text and ex["image"].num_nodes <= max_image
        for n, sec in zip(ex["image"].section_index.tolist(), _edges(ex, "image_of")):
            assert ex["section"].section_index[sec[1]].item() == n   # each image hangs on its section
    ex = _find(ds, 2, 0)
    if expect["section"] == 4:                    # no budget at all: only the target remains
        expect = {"section": 1, "page": 0, "image": 0, "caption": 0}
    assert {t: ex[t].num_nodes for t in expect} == expect
    if (max_text, max_image) == (1, 3):           # sections kept only for their images: no text
        assert ex["section"].text_mask.tolist() == [True, False, False]
        assert ex["section"].text[1:] == [None, None]


def test_default_caps_on_a_large_page(root):
    ds, _ = _load(root, limit=1)
    assert ds.counts() == {"train": 1, "val": 1, "test": 1}
    ex = _find(ds, 2, 0)
    assert {t: ex[t].num_nodes for t in ("section", "page", "image", "caption")} == \
        {"section": 4, "page": 1, "image": 4, "caption": 4}
    assert _edges(ex, "next") == [(0, 1), (1, 2), (2, 3)] and _edges(ex, "child_of") == []


def test_missing_file_is_a_one_line_data_error(root):
    (root / "wikiweb2m_val_large.parquet").unlink()
    with pytest.raises(DataError) as err:
        load_wikiweb2m(root, progress=False)
    msg = str(err.value)
    assert "wikiweb2m_val_large.parquet" in msg and "\n" not in msg and "preprocess_data.py" in msg
    with pytest.raises(DataError, match="does not exist"):
        load_wikiweb2m(root / "nowhere", progress=False)


def test_wrong_column_is_a_one_line_data_error(tmp_path):
    schema = pa.schema([f if f.name != "section_summary" else pa.field("summary", f.type) for f in SCHEMA])
    pages = {s: [{("summary" if k == "section_summary" else k): v for k, v in row.items()} for row in rows]
             for s, rows in PAGES.items()}
    root = _write(tmp_path / "w", pages, schema)
    with pytest.raises(DataError) as err:
        load_wikiweb2m(root, progress=False)
    msg = str(err.value)
    assert "'section_summary'" in msg and "\n" not in msg and "wikiweb2m_train_large.parquet" in msg


def test_corrupt_parquet_and_pickle(root):
    (root / "wikiweb2m_test_large.parquet").write_bytes(b"not a parquet file at all")
    with pytest.raises(DataError, match="corrupt") as err:
        load_wikiweb2m(root, split_source="wikiweb2m", progress=False)
    assert "\n" not in str(err.value)
    (root / "section_id_split_large.pkl").write_bytes(b"\x00garbage")
    with pytest.raises(DataError, match="cannot read WikiWeb2M split file"):
        load_wikiweb2m(root, progress=False)


def test_columns_constant_matches_mmgl():
    assert list(COLUMNS) == [f.name for f in SCHEMA]


def test_images_as_one_list_per_section_and_progress_lines(tmp_path, capsys):
    nested = pa.schema([f if f.name not in ("image_url", "image_caption")
                        else pa.field(f.name, pa.list_(pa.list_(pa.binary()))) for f in SCHEMA])
    pages = {}
    for split, rows in PAGES.items():
        pages[split] = []
        for row in rows:
            n = len(row["section_title"])
            k = len(row["image_url"]) // n
            row = dict(row, image_url=[row["image_url"][i * k:(i + 1) * k] for i in range(n)],
                       image_caption=[row["image_caption"][i * k:(i + 1) * k] for i in range(n)])
            pages[split].append(row)
    root = _write(tmp_path / "nested", pages, nested)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_wikiweb2m(root, progress=True)
    ex = _find(ds, 0, 0)
    assert list(ex["image"].image) == ["0_0_0.png", None] and list(ex["caption"].text) == ["cap a0", "cap a1"]
    assert "WikiWeb2M examples:" in capsys.readouterr().err
