"""``run(cfg)``: load a data set, build features and a task, train a model over several seeds.

One path for every task and model (see :mod:`mmgraph.tasks.base`): the data set, the task and
the model are built from their configs' ``_target_`` (:func:`mmgraph.assembly.build`); every
model goes through :func:`mmgraph.train.fit` (a model without trainable parameters, such as a
zero-shot predictor, is evaluated once), every result through the task's Evaluator and the same
record and summary code. Data sets, models and tasks never read a config themselves.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from mmgraph import distributed
from mmgraph.assembly import build, build_dataset, plain, resolve_device, seeds_of
from mmgraph.bench import torchrun
from mmgraph.bench.records import (command_line, git_state, machine, markdown_table, package_versions,
                                   summarize, write_json)
from mmgraph.checks import integer, number
from mmgraph.errors import ConfigError, MMGraphError
from mmgraph.redact import redact
from mmgraph.train import TrainerConfig, fit, seed_everything

log = logging.getLogger("mmgraph.bench")


def trainer_config(node: DictConfig) -> TrainerConfig:
    """Validate the ``trainer`` group against :class:`TrainerConfig` (types and names) and the
    ranges the optimiser and schedule accept."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        merged = OmegaConf.merge(OmegaConf.structured(TrainerConfig), node)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or getattr(exc, "key", None)
        msg = str(exc).splitlines()[0]
        raise ConfigError(f"trainer.{key}: {msg}" if key else f"trainer: {msg}") from exc
    cfg = TrainerConfig(**OmegaConf.to_container(merged, resolve=True))
    for key, low in (("patience", 0), ("lr_patience", 0), ("min_epochs", 0), ("warmup_epochs", 0),
                     ("eval_every", 1)):  # max_epochs: fit checks it (a zero-shot model needs none)
        integer(f"trainer.{key}", getattr(cfg, key), low, optional=True)
    for key in ("lr", "weight_decay", "min_lr"):
        number(f"trainer.{key}", getattr(cfg, key), 0.0)
    if not 0.0 < cfg.lr_factor < 1.0:  # ReduceLROnPlateau's factor
        raise ConfigError(f"trainer.lr_factor must be in (0, 1); got {cfg.lr_factor}")
    return cfg


def fusion_label(cfg: DictConfig) -> str:
    """The fusion of a run as the tables show it: ``none``, ``concat``, ``late-logits``, ..."""
    node = cfg.get("fusion")
    kind = str(node.get("kind", "none")) if node is not None else "none"
    return f"late-{node.get('late_level', 'logits')}" if kind == "late" else kind


def build_model(cfg: DictConfig, data, model_kwargs: dict[str, Any]) -> torch.nn.Module:
    """``cfg.model.module`` built with the task's constructor arguments; unless ``cfg.fusion.kind``
    is ``none``, wrapped in a :class:`~mmgraph.nn.FusionModel` (``late``: one model per modality)
    over the input modalities of ``data.meta["input"]``, in the order of the blocks of ``x``."""
    what = f"model {cfg.model.name}"
    node = cfg.get("fusion")
    kind = str(node.get("kind", "none")) if node is not None else "none"
    if kind == "none":
        return build(cfg.model.module, what, **model_kwargs)
    from mmgraph.nn.fusion import FusionModel

    info = data.meta["input"]
    mods = list(info["modalities"])
    dims = [int(data[info["node_type"]][f"x_{m}"].size(1)) for m in mods]
    if "in_channels" in model_kwargs and sum(dims) != model_kwargs["in_channels"]:
        raise ConfigError(f"fusion {kind}: the input has {model_kwargs['in_channels']} channels but its "
                          f"modalities {'+'.join(mods)} have {sum(dims)}")

    def factory(in_channels: int, out_channels: int) -> torch.nn.Module:
        return build(cfg.model.module, what, **{**model_kwargs, "in_channels": in_channels,
                                                  "out_channels": out_channels})

    params = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if k != "kind"}
    try:
        return FusionModel(dims, factory, model_kwargs["out_channels"], kind=kind, modalities=mods, **params)
    except TypeError as exc:
        raise ConfigError(f"cannot build fusion {kind}: {str(exc).splitlines()[-1]}") from exc


def load_dataset(cfg: DictConfig, device: torch.device | None = None):
    """The graph of ``cfg.dataset`` with features computed or loaded and the model input built.

    Features: ``cfg.features.encoders`` (modality -> encoder) always applies; features the data
    set comes with are kept otherwise; the data set config's ``encoders`` fill in the rest; the
    data set config's ``feature_node_types`` (neighbour node types such as ``page``) are encoded
    too. See :func:`mmgraph.features.attach_features`.
    """
    from mmgraph.data.graph import set_model_input, target_type
    from mmgraph.features import attach_features

    data = build_dataset(cfg)
    feats = cfg.features
    modalities = feats.get("modalities")
    if modalities is not None and not OmegaConf.is_list(modalities):
        raise ConfigError(f"features.modalities must be a list, e.g. features.modalities=[text]; "
                          f"got {modalities!r}")
    modalities = [str(m) for m in modalities] if modalities else None
    encoders = plain(feats.get("encoders")) or {}
    if not isinstance(encoders, dict):
        raise ConfigError(f"features.encoders must map modalities to encoders, e.g. "
                          f"features.encoders.text=minilm; got {encoders!r}")
    encoders = {m: e for m, e in encoders.items() if e is not None}
    defaults = plain(cfg.dataset.get("encoders")) or {}
    if modalities:
        store = data[target_type(data)]
        available = sorted({m for m in ("text", "image") if m in store} | set(encoders) | set(defaults) |
                           {k[2:] for k in store.keys() if k.startswith("x_")})
        missing = [m for m in modalities if m not in available]
        if missing:
            raise ConfigError(f"features.modalities: {cfg.dataset.name} has no {missing[0]!r} modality; "
                              f"available: {', '.join(available) or 'none'}")
    node_types = plain(cfg.dataset.get("feature_node_types")) or None
    if node_types is not None and (not isinstance(node_types, list)
                                   or not all(isinstance(t, str) for t in node_types)):
        raise ConfigError(f"dataset.feature_node_types must be a list of node types, e.g. [page, caption]; "
                          f"got {node_types!r}")
    attach_features(data, encoders=encoders, defaults=defaults, node_types=node_types,
                    modalities=modalities, cache_dir=feats.get("cache_dir"),
                    storage=feats.get("storage", "float32"), batch_size=feats.get("batch_size"),
                    num_workers=feats.get("num_workers", 2), device=device or "cpu",
                    progress=distributed.is_main())
    set_model_input(data, modalities)
    return data


def split_config(cfg: DictConfig) -> dict | None:
    """The split a run applies: ``split=<configs/split/>`` (``cfg.split``) when chosen, else the
    data set's own (``cfg.dataset.split``); ``None`` keeps whatever masks the loader set."""
    chosen = cfg.get("split")
    split = plain(chosen if chosen is not None else cfg.dataset.get("split")) or None
    if split is not None and (not isinstance(split, dict) or "name" not in split):
        where = "split" if chosen is not None else "dataset.split"
        raise ConfigError(f"{where} must be a group of keys with a name, e.g. "
                          f"split=magb or dataset.split.name=magb; got {split!r}")
    return split


def build_task(cfg: DictConfig, data, device: torch.device):
    """``cfg.task`` built and set up on ``data``: the data set's relations and
    :func:`split_config`'s split."""
    extra = {}
    if "edge_types" in cfg.task and cfg.task.get("edge_types") is None and cfg.dataset.get("edge_types"):
        extra["edge_types"] = plain(cfg.dataset.edge_types)  # the data set's choice of relations
    task = build(cfg.task, "task", **extra)
    task.setup(data, device, split=split_config(cfg))
    return task


def prepare(cfg: DictConfig) -> tuple[torch.device, Any, Any]:
    """Device, data (features attached) and the set-up task of ``cfg``: everything a run needs
    before a model exists. A sweep prepares once and trains many models on it."""
    device = resolve_device(str(cfg.device))
    device = torchrun.prepare_device(cfg, device)  # torchrun: process group, checks, cuda:<LOCAL_RANK>
    data = load_dataset(cfg, device)
    return device, data, build_task(cfg, data, device)


def make_model(cfg: DictConfig, data, task, device: torch.device) -> torch.nn.Module:
    """``cfg.model`` (with ``cfg.fusion`` around it, or heterogeneous) wrapped by ``task``."""
    if cfg.model.get("hetero"):  # node and relation types kept: see mmgraph.nn.hetero
        if fusion_label(cfg) != "none":
            raise ConfigError(f"fusion {fusion_label(cfg)} is not available for heterogeneous "
                              f"models (model {cfg.model.name}); use fusion=none")
        if not task.supports_hetero:
            raise ConfigError(f"task {task.kind} does not support heterogeneous models "
                              f"(model {cfg.model.name}); use node_classification")
        backbone = build(cfg.model.module, f"model {cfg.model.name}", **task.model_kwargs(hetero=True))
    else:
        backbone = build_model(cfg, data, task.model_kwargs())  # with cfg.fusion around it, if any
    return task.wrap(backbone).to(device)


def _reusable(path: Path, record_base: dict[str, Any]) -> dict[str, Any] | None:
    """The stored record at ``path`` when it was made by this exact configuration, input and
    commit (a resumed run keeps it instead of training that seed again), else ``None``."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    same = (old.get("config") == record_base["config"]
            and old.get("input", {}).get("fingerprint") == record_base["input"].get("fingerprint")
            and old.get("git", {}).get("commit") == record_base["git"].get("commit")
            and not record_base["git"].get("dirty") and "selected" in old)
    return old if same else None


def run(cfg: DictConfig, output_dir: str | Path | None = None, *, prepared: tuple | None = None,
        extra: dict[str, Any] | None = None, resume: bool = False) -> dict[str, Any]:
    """Train and evaluate ``cfg.model`` on ``cfg.dataset`` for every seed; returns the summary row.

    Writes ``runs/seed_<s>.json`` per run and ``summary.json`` + ``results.md`` into
    ``output_dir`` (the Hydra run directory when called from the command line).

    Args:
        prepared: ``(device, data, task)`` from :func:`prepare` for this ``cfg``, to reuse them.
        extra: more keys for the summary row (a sweep adds ``sweep``).
        resume: keep the seeds whose records in ``output_dir`` were made by the same
            configuration, input and (clean) commit instead of training them again.
    """
    seeds = seeds_of(cfg)
    trainer_cfg = trainer_config(cfg.trainer)
    trainer_cfg.progress = trainer_cfg.progress and distributed.is_main()  # torchrun: rank 0's bar
    device, data, task = prepared if prepared is not None else prepare(cfg)
    model = make_model(cfg, data, task, device)
    log.info("%s on %s (%s) with %s parameters, device %s, seeds %s", cfg.model.name,
             cfg.dataset.name, "+".join(data.meta["input"]["modalities"]),
             f"{sum(p.numel() for p in model.parameters()):,}", device, seeds)

    record_base = {
        "command": command_line(),
        "config": redact(OmegaConf.to_container(cfg, resolve=True)),  # as write_json stores it
        "dataset": {k: data.meta[k] for k in ("name", "version", "class_names") if k in data.meta},
        "features": data.meta.get("features", {}),
        "input": data.meta.get("input", {}),
        "task": task.describe(),
        "device": str(device),
        "versions": package_versions(),
        "machine": machine(),
        "git": git_state(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "distributed": torchrun.describe(device),  # world_size, backend
    }
    out = Path(output_dir) if output_dir is not None and distributed.is_main() else None  # torchrun: rank 0 writes
    runs = []
    for i, seed in enumerate(seeds):
        path = out / "runs" / f"seed_{seed}.json" if out is not None else None
        kept = _reusable(path, record_base) if resume and path is not None else None
        kept = distributed.broadcast_object(kept)  # torchrun: rank 0's decision for all ranks
        if kept is not None:
            log.info("seed %d: kept from %s", seed, path)
            runs.append(kept)
            continue
        task.start_run(seed)
        seed_everything(seed)
        model.reset_parameters()
        result = fit(task, model, trainer_cfg, desc=f"{cfg.model.name} seed {seed} ({i + 1}/{len(seeds)})")
        sel = result.selected
        log.info("seed %d: %s (epoch %d of %d)", seed,
                 ", ".join(f"test/{m}={v['test']:.4f}" for m, v in sel.items()),
                 sel[task.primary]["epoch"], result.epochs)
        record = {**record_base, "seed": seed, **result.to_dict(), **task.run_record(model)}
        runs.append(record)
        if path is not None:
            write_json(path, record)

    summary = summarize(runs, task.metrics, task.primary)
    row = {"dataset": cfg.dataset.name, "model": cfg.model.name,
           "modalities": "+".join(data.meta["input"]["modalities"]), "fusion": fusion_label(cfg),
           "runs": len(runs),
           "metrics": list(task.metrics), "primary": task.primary,
           "higher_is_better": task.evaluator.spec.directions(), "summary": summary,
           "seeds": seeds, "split": record_base["task"].get("split", {}),
           "input_fingerprint": data.meta["input"]["fingerprint"], **task.summary_row(model), **(extra or {})}
    if out is not None:
        write_json(out / "summary.json", {**row, "record": record_base})
        (out / "results.md").write_text(markdown_table([row]) + "\n")
    return row
