"""Command line: ``python -m mmgraph.bench [dataset=<name>] [model=<name>] [key=value ...]``.

Hydra composes ``configs/config.yaml`` with the chosen config groups. Mistakes the user can
fix (unknown names, malformed overrides, missing data) are reported as one line on stderr
with exit status 2 (configuration) or 1 (data / run), never as a traceback.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from mmgraph.errors import ConfigError, MMGraphError

PROG = "mmgraph.bench"
_ROWS: list[dict] = []
# Hydra flags that take a value in the next argument.
_VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd",
                "--experimental-rerun", "--package", "-p", "--info", "-i"}


def _fail(message: str, status: int) -> None:
    from mmgraph.distributed import launch_rank

    if status != 2 or launch_rank() == 0:  # torchrun: every rank has the same configuration error
        print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(status)


def _overrides(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in _VALUE_FLAGS
        else:
            out.append(arg)
    return out


def _options(config_dir: Path, group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir / group).glob("*.yaml"))


def explain_config_error(exc: Exception, config_dir: Path, overrides: list[str]) -> str:
    """Turn a Hydra composition error into one line saying what is wrong and what is valid."""
    from hydra.errors import MissingConfigException, OverrideParseException

    text = str(exc).strip()
    if isinstance(exc, MissingConfigException) or "Could not find" in text:
        found = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
        if found:
            group, name = found.groups()
            valid = _options(config_dir, group)
            return f"unknown {group} {name!r}; valid {group} names: {', '.join(valid) or 'none'}"
    if isinstance(exc, OverrideParseException):
        bad = next((o for o in overrides if "=" not in o or o.startswith("=")), None)
        where = f" {bad!r}" if bad else ""
        return (f"malformed override{where}: overrides look like key=value, "
                f"e.g. dataset=cora model=gat trainer.lr=0.01")
    key = re.search(r"Key '([^']+)' is not in struct|Could not override '([^']+)'", text)
    if key:
        name = key.group(1) or key.group(2)
        parent, _, leaf = name.rpartition(".")
        valid = _keys_of(config_dir, parent, [o for o in overrides if not o.lstrip("+~").startswith(name)])
        if not parent:
            valid = sorted(set(valid) | {p.name for p in config_dir.iterdir() if p.is_dir()})
        where = f" of {parent}" if parent else ""
        return (f"unknown config key {name!r}; valid keys{where}: {', '.join(valid) or 'none'} "
                f"(prefix a new key with '+' to add it)")
    first = next((line for line in text.splitlines() if line.strip()), type(exc).__name__)
    return first.strip()


def _keys_of(config_dir: Path, parent: str, overrides: list[str]) -> list[str]:
    """Keys of the node ``parent`` in the config composed with the other overrides."""
    from hydra import compose, initialize_config_dir
    from omegaconf import DictConfig, OmegaConf

    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides)
        node = OmegaConf.select(cfg, parent) if parent else cfg
    except Exception:
        return []
    return sorted(k for k in node.keys() if k != "hydra") if isinstance(node, DictConfig) else []


def _validate(config_dir: Path, overrides: list[str]) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            compose(config_name="config", overrides=[o for o in overrides if not o.startswith("hydra.")])
    except Exception as exc:  # every Hydra error is a user error at this point
        GlobalHydra.instance().clear()
        _fail(explain_config_error(exc, config_dir, overrides), 2)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if any(a == "--replay" or a.startswith("--replay=") for a in args):  # re-run one seed from its record
        from mmgraph.bench.replay import main as replay_main

        sys.exit(replay_main(args, prog=PROG))
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig

    from mmgraph.bench.records import markdown_table
    from mmgraph.bench.runner import run
    from mmgraph.paths import config_dir

    from mmgraph._malloc import tune_malloc

    tune_malloc()
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    try:
        cdir = config_dir()
    except ConfigError as exc:
        _fail(str(exc), 2)
    multirun = any(a in ("-m", "--multirun") for a in sys.argv[1:])
    if not multirun:  # sweeps expand "a,b" lists, which a single compose would reject
        _validate(cdir, _overrides(sys.argv[1:]))
    from mmgraph.bench.torchrun import cli_argv

    sys.argv = cli_argv(cdir, sys.argv)  # torchrun: all ranks one output folder, ranks > 0 quiet

    @hydra.main(config_path=str(cdir), config_name="config", version_base="1.3")
    def _entry(cfg: DictConfig) -> float:
        try:
            if cfg.get("sweep") is not None:
                from mmgraph.bench.sweep import run_sweep, sweep_table

                row = run_sweep(cfg)
                if row is None:
                    return float("nan")
                print("\n" + sweep_table(row) + "\n", flush=True)
                return row["summary"][f"val/{row['primary']}"]["mean"]
            row = run(cfg, output_dir=HydraConfig.get().runtime.output_dir)
        except ConfigError as exc:
            _fail(str(exc), 2)
        except (MMGraphError, FloatingPointError) as exc:
            _fail(str(exc), 1)
        _ROWS.append(row)
        print("\n" + markdown_table([row]) + "\n", flush=True)
        return row["summary"][f"val/{row['primary']}"]["mean"]

    _entry()
    if len(_ROWS) > 1:
        print("\nAll runs of this sweep:\n\n" + markdown_table(_ROWS) + "\n", flush=True)


if __name__ == "__main__":
    main()
