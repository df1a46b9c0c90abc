"""Command line: ``python -m mmgraph.bench [dataset=<name>] [model=<name>] [key=value ...]``.

Hydra composes ``configs/config.yaml`` with the chosen config groups. Mistakes the user can
fix (unknown names, malformed overrides, missing data) are reported as one line on stderr
with exit status 2 (configuration) or 1 (data / run), never as a traceback.
"""
from __future__ import annotations

import sys
from typing import NoReturn

from mmgraph.cli import compose, fail, overrides_of
from mmgraph.errors import ConfigError, MMGraphError

PROG = "mmgraph.bench"
_ROWS: list[dict] = []


def _fail(message: str, status: int) -> NoReturn:
    fail(PROG, message, status)


def main(argv: list[str] | None = None) -> None:
    try:
        _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while starting (imports, composing); a run says more itself
        print(f"{PROG}: interrupted", file=sys.stderr)
        sys.exit(130)


def _main(argv: list[str] | None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    _ROWS.clear()  # the rows of this call's runs (a sweep has several)
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
        try:
            compose(cdir, [o for o in overrides_of(sys.argv[1:]) if not o.startswith("hydra.")])
        except ConfigError as exc:
            _fail(str(exc), 2)
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
        except KeyboardInterrupt as exc:  # the feature step's Interrupted says what it saved
            from mmgraph.features import Interrupted

            print(f"{PROG}: {exc if isinstance(exc, Interrupted) else 'interrupted'}", file=sys.stderr)
            sys.exit(130)
        _ROWS.append(row)
        print("\n" + markdown_table([row]) + "\n", flush=True)
        return row["summary"][f"val/{row['primary']}"]["mean"]

    _entry()
    if len(_ROWS) > 1:
        print("\nAll runs of this sweep:\n\n" + markdown_table(_ROWS) + "\n", flush=True)


if __name__ == "__main__":
    main()
