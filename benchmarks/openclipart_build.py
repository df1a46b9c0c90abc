"""The openclipart graph: build time, cache read time, and every statistic of its card.

Builds the graph from the extracted Debian tree into a fresh temporary data root (so the
processed cache of ``datasets/`` is neither read nor written), times the build and a second
load from the new processed cache, and prints ``meta["stats"]`` plus the figures of
``datasets/openclipart.md`` that are not in it: mean degrees, clipart nodes with a keyword,
text lengths in characters, the most repeated texts and titles, the largest PNG, counts over the
raw SVG metadata (creators, the keyword ``hash`` and Perl ``HASH(0x...)`` artefacts, one contact
address, the keyword ``unsorted``), the metadata-twin groups the cap applies to, and the graph built with ``keep_label_words=true``.

    .venv/bin/python benchmarks/openclipart_build.py [--tree datasets/openclipart/usr/share/openclipart] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import struct
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

ROOT = _provenance.ROOT
HASH_RE = re.compile(r"^hash\(0x[0-9a-f]+\)$", re.IGNORECASE)  # Perl reference artefacts


def png_size(path: Path) -> tuple[int, int] | None:
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", type=Path, default=ROOT / "datasets/openclipart/usr/share/openclipart")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    from mmgraph.data.openclipart import load_openclipart
    from mmgraph.data.openclipart.edges import creator_key
    from mmgraph.data.openclipart.metadata import scan

    lines = _provenance.header("openclipart: build, cache and the statistics of its card")
    lines += [f"Tree: `{args.tree.relative_to(ROOT) if ROOT in args.tree.parents else args.tree}` "
              "(Debian's `openclipart-png`/`-svg` 1:0.18+dfsg-19, extracted); each build into a fresh "
              "temporary data root.", ""]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        data = load_openclipart(tmp, download=False, tree=args.tree, progress=False)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_openclipart(tmp, download=False, tree=args.tree, progress=False)
        cache_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        keep = load_openclipart(tmp, download=False, tree=args.tree, progress=False, keep_label_words=True)
    stats = data.meta["stats"]
    n = data["clipart"].num_nodes
    texts = [t for t in data["clipart"].text if t]
    chars = [len(t) for t in texts]
    top = Counter(texts).most_common(3)
    kw_src = data["clipart", "has_keyword", "keyword"].edge_index[0].unique().numel()
    sizes = [s for p in (args.tree / "png").rglob("*.png") if p.is_file() and (s := png_size(p))]
    largest = max(sizes, key=lambda wh: wh[0] * wh[1])
    titles = Counter(t.split(". ")[0] for t in texts).most_common(2)
    items, _counts = scan(args.tree, progress=False)
    creators_exact = len({i.creator for i in items})
    creators_all = len({creator_key(i.creator) for i in items if i.creator.strip()})

    def keywords(i):
        return [k.strip().lower() for raw in i.keywords for k in re.split(r"[,;]", raw)]

    bare_hash = [i for i in items if "hash" in keywords(i)]
    perl_ref = [i for i in items if HASH_RE.match(i.description.strip()) or any(HASH_RE.match(k) for k in keywords(i))]
    contact = Counter(i.description.strip() for i in items
                      if re.fullmatch(r"[\w.+-]+@[\w-]+\.[\w.]+", i.description.strip()))
    unsorted_kw = [i for i in items if "unsorted" in keywords(i)]
    # the metadata-twin groups the cap applies to (the grouping of mmgraph.data.openclipart.dedup,
    # on the kept classes, before the cap): category, title, nodes, files
    from collections import defaultdict
    from mmgraph.data.openclipart.dedup import _dedup_and_cap

    uncapped, _ = _dedup_and_cap(items, set(data.meta["class_names"]), None, 0)
    twins = defaultdict(list)
    for it, files in uncapped:
        twins[(it.category, it.creator.casefold(), it.title, it.description,
               tuple(sorted(set(it.keywords))))].append(files)
    capped = sorted(((k[0], k[2], len(g), sum(g)) for k, g in twins.items() if len(g) > 100), key=lambda t: -t[2])
    kstats = keep.meta["stats"]
    lines += [
        "| measurement | value |", "|---|---|",
        f"| build from the tree (s, wall) | {build_s:.1f} |",
        f"| load from the processed cache (s, wall) | {cache_s:.2f} |",
        f"| nodes | {n:,d} |",
        f"| mean degree same_creator / shares_keyword (directed edges / nodes) | "
        f"{stats['edges']['same_creator'] / n:.1f} / {stats['edges']['shares_keyword'] / n:.1f} |",
        f"| clipart nodes with at least one keyword node | {kw_src:,d} |",
        f"| non-empty texts: characters mean / max | {statistics.mean(chars):.0f} / {max(chars)} |",
        f"| most repeated texts (count × first 40 characters) | "
        + "; ".join(f"{c} × {t[:40]!r}" for t, c in top) + " |",
        f"| most repeated titles (count × title: distinct texts among them) | "
        + "; ".join(f"{c} × {t!r}: {len({x for x in texts if x.split('. ')[0] == t})}" for t, c in titles) + " |",
        f"| PNG files read / largest (width × height px) | {len(sizes):,d} / {largest[0]:,d} × {largest[1]:,d} |",
        f"| raw items scanned / distinct creator strings (the empty one included) / distinct creators "
        f"compared as the edges compare them (`creator_key`, empty left out) | {len(items):,d} / {creators_exact} / {creators_all} |",
        f"| raw items with the bare keyword `hash` (of them in `computer`) | "
        f"{len(bare_hash):,d} ({sum(i.category == 'computer' for i in bare_hash):,d}) |",
        f"| raw items with a `HASH(0x...)` description or keyword (of them in `computer`) | "
        f"{len(perl_ref):,d} ({sum(i.category == 'computer' for i in perl_ref):,d}) |",
        f"| most frequent description that is only an e-mail address | "
        + (f"{contact.most_common(1)[0][1]} × {contact.most_common(1)[0][0]}" if contact else "none") + " |",
        f"| raw items with the keyword `unsorted` (of them outside the `unsorted` folder) | "
        f"{len(unsorted_kw)} ({sum(i.category != 'unsorted' for i in unsorted_kw)}) |",
        "| metadata-twin groups above the cap of 100 (category, title: nodes / files) | "
        + "; ".join(f"`{c}`, {t[:40]!r}: {n:,d} / {f:,d}" for c, t, n, f in capped) + " |",
        f"| `keep_label_words=true`: shares_keyword edges, its homophily, keyword nodes, empty texts | "
        f"{kstats['edges']['shares_keyword']:,d}, {kstats['edge_homophily']['shares_keyword']:.3f}, "
        f"{kstats['keyword_nodes']}, {kstats['empty_text']} |",
        "", "`meta[\"stats\"]` of the default build:", "", "```",
        json.dumps(stats, indent=None, sort_keys=False), "```", "",
        f"`meta[\"version\"]`: `{data.meta['version']}`.", "",
        f"Load average at end: {_provenance.load()}.", ""]
    _provenance.emit(lines, args.out)


if __name__ == "__main__":
    main()
