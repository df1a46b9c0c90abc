"""Reading the items: one per path stem in ``png/`` and ``svg/``, with the SVG's RDF metadata.

An SVG's ``cc:Work`` gives the title (``dc:title``), the description (``dc:description``),
keywords (``dc:subject`` / ``rdf:Bag`` / ``rdf:li``) and the creator (``dc:creator`` /
``cc:Agent`` / ``dc:title``); the top-level folder is the category.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from mmgraph.data.openclipart.hashing import sha1_file
from mmgraph.errors import DataError

_DC = "{http://purl.org/dc/elements/1.1/}"
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"


@dataclass
class Item:
    """One clip art item as found on disk (before deduplication)."""
    rel: str                      # path stem relative to png/ and svg/, without extension
    category: str
    png: str | None               # path relative to the png folder, None if missing
    key: str                      # content hash: sha1 of the PNG (or "svg:" + sha1 of the SVG)
    svg_sha1: str
    title: str = ""
    description: str = ""
    keywords: list[str] = field(default_factory=list)
    creator: str = ""
    svg_status: str = "ok"        # ok | missing | corrupt


def parse_svg(path: Path) -> tuple[str, str, list[str], str]:
    """(title, description, keywords, creator) from the SVG's ``cc:Work`` RDF metadata."""
    title = desc = creator = ""
    kws: list[str] = []
    stack: list[str] = []
    for event, el in ET.iterparse(path, events=("start", "end")):
        if event == "start":
            stack.append(el.tag)
            continue
        stack.pop()
        tag = el.tag
        if tag == _RDF + "RDF":
            break                              # the rest of the file is drawing
        parent = stack[-1] if stack else ""
        if tag == _DC + "title" and parent.endswith("}Work"):
            title = (el.text or "").strip()
        elif tag == _DC + "description" and parent.endswith("}Work"):
            desc = (el.text or "").strip()
        elif tag == _RDF + "li" and _DC + "subject" in stack:
            kws.append((el.text or "").strip())
        elif tag == _DC + "title" and _DC + "creator" in stack:
            creator = (el.text or "").strip()
    return title, desc, kws, creator


def scan(tree: Path, progress: bool) -> tuple[list[Item], Counter]:
    """Every item under ``tree/png`` and ``tree/svg``, and counts of what was missing or corrupt.

    The counts are ``no_category``, ``png_missing``, ``svg_missing``, ``svg_corrupt`` and
    ``_corrupt_example`` (the first corrupt SVG and its error).
    """
    from mmgraph.progress import track

    stems: dict[str, set[str]] = defaultdict(set)
    for kind in ("png", "svg"):
        top = tree / kind
        for dirpath, _dirs, files in os.walk(top):
            for f in files:
                if f.lower().endswith("." + kind):
                    rel = os.path.relpath(os.path.join(dirpath, f), top)[: -len(kind) - 1]
                    stems[rel.replace(os.sep, "/")].add(kind)
    counts: Counter = Counter()
    items = []
    # Iterating in sorted path order only fixes the order of work; nothing downstream uses it.
    for rel in track(sorted(stems), "openclipart: reading files", unit="item", enabled=bool(progress)):
        parts = rel.split("/")
        if len(parts) < 2:                     # a file directly under png/: no category
            counts["no_category"] += 1
            continue
        png_path, svg_path = tree / "png" / f"{rel}.png", tree / "svg" / f"{rel}.svg"
        has_png = "png" in stems[rel] and png_path.is_file()   # is_file: no dangling links
        has_svg = "svg" in stems[rel] and svg_path.is_file()
        try:
            png_sha1 = sha1_file(png_path) if has_png else None
            svg_sha1 = sha1_file(svg_path) if has_svg else ""
        except OSError as exc:
            raise DataError(f"cannot read {png_path if has_png else svg_path}: "
                            f"{exc.strerror or exc}") from exc
        if png_sha1 is None and not has_svg:
            continue
        item = Item(rel=rel, category=parts[0], png=f"{rel}.png" if has_png else None,
                    key=png_sha1 or f"svg:{svg_sha1}", svg_sha1=svg_sha1)
        if not has_png:
            counts["png_missing"] += 1
        if not has_svg:
            item.svg_status = "missing"
            counts["svg_missing"] += 1
        else:
            try:
                item.title, item.description, item.keywords, item.creator = parse_svg(svg_path)
            except (ET.ParseError, UnicodeDecodeError, ValueError) as exc:
                item.svg_status = "corrupt"
                counts["svg_corrupt"] += 1
                counts.setdefault("_corrupt_example", f"{rel}.svg: {str(exc).splitlines()[0]}")
        items.append(item)
    return items, counts
