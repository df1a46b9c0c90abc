"""Command line: compute (or check) the cached node features of a data set.

    python -m mmgraph.features dataset=openclipart                   # the data set's encoders
    python -m mmgraph.features dataset=openclipart encoder=minilm    # one encoder
    python -m mmgraph.features dataset=magb_movies encoder=hf:openai/clip-vit-large-patch14 modality=image

Options (``key=value``): ``encoder``, ``modality`` (text, image or joint; default: every
modality the encoder produces that the data set has raw inputs for), ``cache_dir``,
``storage`` (float32 | float16), ``batch_size``, ``num_workers``, ``device``, ``progress``
(true: a bar on a terminal, a plain line every ~10 % when stderr is a file or pipe; false:
none). Any other ``key=value`` is a config override as for ``python -m mmgraph.bench`` (e.g.
``dataset.loader.keep_label_words=true``). Prints one line per modality: encoder, items,
distinct items, missing, seconds, distinct items per second and the cache entry. Errors are one line on stderr
(exit status 2 for configuration, 1 for data).

Ctrl-C stops the extraction, keeping every finished batch, and prints one line on stderr saying
how many features were saved and where, e.g. ``mmgraph.features: interrupted: 866 of 4,284 image
features saved in <entry>.partial; run the same command again to resume`` (exit status 130);
the same command resumes there.

Under torchrun (``torchrun --nproc_per_node=N -m mmgraph.features ...``) the N processes split the
batches and rank 0 merges the cache entry (:mod:`mmgraph.features.sharded`); rank 0 prints the
table and the progress, and on Ctrl-C every rank says what its shard saved.
"""
from __future__ import annotations

import sys
from typing import NoReturn

from mmgraph.cli import compose, fail
from mmgraph.errors import ConfigError, MMGraphError

PROG = "mmgraph.features"
OWN = ("encoder", "modality", "cache_dir", "storage", "batch_size", "num_workers", "device", "progress")
_FLAGS = {"true": True, "false": False}


def _fail(message: str, status: int) -> NoReturn:
    fail(PROG, message, status)


def main(argv: list[str] | None = None) -> list:
    from mmgraph._malloc import tune_malloc

    tune_malloc()
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
        return []
    own, overrides = {}, []
    for a in args:
        key, eq, value = a.partition("=")
        if not eq:
            _fail(f"malformed argument {a!r}: arguments look like key=value, e.g. dataset=openclipart "
                  f"encoder=minilm", 2)
        (own.__setitem__(key, value) if key in OWN else overrides.append(a))
    try:
        return _run(own, overrides)
    except ConfigError as exc:
        _fail(str(exc), 2)
    except MMGraphError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt as exc:  # Interrupted says what was saved; elsewhere nothing was
        from mmgraph.features.loop import Interrupted

        print(f"{PROG}: {exc if isinstance(exc, Interrupted) else 'interrupted'}", file=sys.stderr)
        sys.exit(130)
    return []


def _run(own: dict, overrides: list[str]) -> list:
    from omegaconf import OmegaConf

    from mmgraph.assembly import build_dataset, resolve_device
    from mmgraph.data.graph import target_type
    from mmgraph.features.encoders import get_encoder
    from mmgraph.features.extract import attach_features, encode_nodes
    from mmgraph import distributed
    from mmgraph.paths import config_dir

    distributed.init()  # torchrun: split the batches over the processes (else nothing)
    cdir = config_dir()
    cfg = compose(cdir, overrides)
    feats = cfg.features
    try:
        kwargs = {"cache_dir": own.get("cache_dir", feats.get("cache_dir")),
                  "storage": own.get("storage", feats.get("storage", "float32")),
                  "batch_size": int(own["batch_size"]) if own.get("batch_size") else feats.get("batch_size"),
                  "num_workers": int(own.get("num_workers", feats.get("num_workers", 2))),
                  "device": distributed.local_device(resolve_device(own.get("device", str(cfg.device)))),
                  "progress": _FLAGS.get(own.get("progress", "true").lower())}
    except ValueError as exc:
        raise ConfigError(f"batch_size and num_workers must be integers ({exc})") from None
    if kwargs["progress"] is None:
        raise ConfigError(f"progress must be true or false, got {own['progress']!r}")
    data = build_dataset(cfg)  # torchrun: one process per machine downloads/builds
    store = data[target_type(data)]
    raw = [m for m in ("text", "image") if m in store]
    if "encoder" in own:
        enc = get_encoder(own["encoder"], device=kwargs["device"])
        if "modality" in own:
            wanted = [own["modality"]]
        else:
            wanted = [m for m in enc.modalities if m in raw]
            if not wanted:
                raise ConfigError(f"encoder {enc.name!r} produces {', '.join(enc.modalities)} features but "
                                  f"{cfg.dataset.name} has raw {', '.join(raw) or 'nothing'} to encode")
        results = [encode_nodes(data, m, enc, **kwargs) for m in wanted]
    else:
        defaults = OmegaConf.to_container(cfg.dataset.encoders, resolve=True) if cfg.dataset.get("encoders") else {}
        if not defaults:
            raise ConfigError(f"{cfg.dataset.name} names no default encoders; pass encoder=<name>")
        mods = [own["modality"]] if "modality" in own else None
        results = attach_features(data, encoders=defaults, modalities=mods, **kwargs)
    if not distributed.is_main():
        return results
    print(f"\n| modality | encoder | dim | items | distinct | missing | seconds | distinct/s | cache |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        where = "loaded" if r.from_cache else "computed"
        print(f"| {r.modality} | {r.encoder} | {r.x.size(1)} | {r.num_items} | {r.num_unique} | {r.missing} | "
              f"{r.seconds:.1f} | {r.items_per_second:.1f} | {where}: {r.cache} |")
    return results


if __name__ == "__main__":
    main()
