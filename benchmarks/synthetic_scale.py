"""Scale check of the synthetic generator: wall time and peak RSS per stage.

Usage: ``python benchmarks/synthetic_scale.py [--nodes 1000000] [--edges 10000000]``

Stages are timed from the DEBUG records ``mmgraph.data.synthetic`` emits when each one ends.
Peak RSS is ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the process high-water mark so far,
so each row shows the peak reached by the end of that stage. Images are references only; a last
stage renders a sample of them to show the lazy path works at this size.
"""
from __future__ import annotations

import argparse
import logging
import platform
import resource
import time
import warnings


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class StageTimer(logging.Handler):
    """Prints the time since the previous stage and the peak RSS when a stage ends."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.last = time.perf_counter()
        self.rows: list[tuple[str, float, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("stage done: "):
            self.mark(msg[len("stage done: "):])

    def mark(self, stage: str) -> None:
        now = time.perf_counter()
        row = (stage, now - self.last, peak_rss_mb())
        self.rows.append(row)
        self.last = now
        print(f"{row[0]:<28s} {row[1]:8.2f} s   peak RSS {row[2]:9.0f} MiB", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--edges", type=int, default=10_000_000)
    ap.add_argument("--render", type=int, default=1000, help="images to render at the end")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    warnings.filterwarnings("ignore", message=".*torch.jit.script.*")
    timer = StageTimer()
    import torch  # noqa: F401  (imported here so its cost is a stage of its own)

    from mmgraph.data.synthetic import logger, make_synthetic, render_image
    timer.mark("import")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(timer)

    print(f"machine: {platform.machine()}, {platform.python_version()}, torch threads "
          f"{torch.get_num_threads()}; nodes={args.nodes:,} edges={args.edges:,}", flush=True)
    start = time.perf_counter()
    data = make_synthetic(num_nodes=args.nodes, num_edges=args.edges, seed=args.seed)
    total = time.perf_counter() - start

    store = data["item"]
    refs = [r for r in store.image[: 4 * args.render] if r is not None][: args.render]
    for ref in refs:
        render_image(ref, size=64)
    timer.mark(f"render {len(refs)} images")

    ei = data["item", "links", "item"].edge_index
    homophily = (store.y[ei[0]] == store.y[ei[1]]).float().mean().item()
    print(f"make_synthetic total: {total:.1f} s; peak RSS {peak_rss_mb():.0f} MiB")
    print(f"edge_index {tuple(ei.shape)}, edge homophily {homophily:.4f}; x {tuple(store.x.shape)} "
          f"{store.x.dtype}; text missing {(~store.text_mask).float().mean():.4f}, "
          f"image missing {(~store.image_mask).float().mean():.4f}")


if __name__ == "__main__":
    main()
