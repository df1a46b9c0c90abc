"""README's library example runs as written."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_library_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    code = blocks[0].replace("max_epochs=200", "max_epochs=20")
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    selected = namespace["result"].selected["accuracy"]
    assert 1 <= selected["epoch"] <= 20 and 0.0 <= selected["test"] <= 1.0
    assert "'epoch'" in capsys.readouterr().out


def test_both_setup_commands_are_on_the_first_screen():
    head = "\n".join(README.read_text().splitlines()[:20])
    assert "make bench" in head and "make test" in head


def _first_of_sweep(value: str) -> str:
    """The first value of a ``--multirun`` list (``a,b`` or ``[x],[y]``)."""
    depth = 0
    for i, ch in enumerate(value):
        depth += ch in "[("
        depth -= ch in "])"
        if ch == "," and depth == 0:
            return value[:i]
    return value


def test_every_runner_command_in_readme_composes():
    """Each ``python -m mmgraph.bench ...`` command of README names real config groups and keys
    (a renamed key would otherwise leave the README wrong without any test noticing)."""
    import shlex

    from mmgraph.cli import compose, overrides_of
    from mmgraph.paths import config_dir

    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    commands = [line.split("-m mmgraph.bench", 1)[1] for block in blocks for line in block.splitlines()
                if "-m mmgraph.bench" in line and "--replay" not in line]
    assert len(commands) > 20
    for cmd in commands:
        args = shlex.split(cmd, comments=True)
        multirun = any(a in ("-m", "--multirun") for a in args)
        overrides = [(k + "=" + _first_of_sweep(v)) if multirun else f"{k}={v}"
                     for k, _, v in (o.partition("=") for o in overrides_of(args))]
        compose(config_dir(), overrides)  # a ConfigError names the wrong key


def test_adding_a_model_example_runs(tmp_path):
    """The README's "Adding a model" module and config, as written, train through the runner
    from a configs folder of one's own."""
    import os
    import shutil
    import subprocess
    import sys

    from mmgraph.paths import config_dir

    section = README.read_text().split("## Adding a model", 1)[1].split("\n## ", 1)[0]
    module = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    config = re.search(r"```yaml\n(.*?)```", section, flags=re.S).group(1)
    (tmp_path / "my_models.py").write_text(module)
    configs = tmp_path / "configs"
    shutil.copytree(config_dir(), configs)
    (configs / "model" / "sgconv.yaml").write_text(config)
    env = {**os.environ, "MMGRAPH_CONFIG_DIR": str(configs), "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "mmgraph.bench", "model=sgconv", "model.module.K=3",
                          "dataset=synthetic", "dataset.loader.num_nodes=300", "dataset.loader.num_edges=1500",
                          "runs=1", "trainer.max_epochs=3", "trainer.progress=false",
                          f"hydra.run.dir={tmp_path / 'out'}"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| synthetic | sgconv | text+image | 1 |" in out.stdout
    record = (tmp_path / "out" / "runs" / "seed_42.json").read_text()
    assert '"K": 3' in record and "my_models.SimplifiedGCN" in record


def _sweep_values(value: str) -> list[str]:
    """Every value of a ``--multirun`` list (``a,b`` or ``[x],[y]``)."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(value):
        depth += ch in "[("
        depth -= ch in "])"
        if ch == "," and depth == 0:
            out.append(value[start:i])
            start = i + 1
    return out + [value[start:]]


def test_every_make_bench_job_composes():
    """Each job of ``make bench`` (every combination of its --multirun lists) names real config
    groups and keys, and the benchmark ends with the report of its folder."""
    import itertools
    import shlex

    from mmgraph.cli import compose
    from mmgraph.paths import config_dir

    makefile = (README.parent / "Makefile").read_text()
    lines = [line.split("$(BENCH_RUN)", 1)[1] for line in makefile.splitlines()
             if line.startswith("\t$(BENCH_RUN)")]
    assert len(lines) >= 5 and "-m mmgraph.report $(BENCH_DIR)" in makefile
    jobs = 0
    for line in lines:
        pairs = [o.partition("=") for o in shlex.split(line) if not o.startswith("hydra.")]
        for combo in itertools.product(*[_sweep_values(v) for _, _, v in pairs]):
            cfg = compose(config_dir(), ["runs=3"] + [f"{k}={v}" for (k, _, _), v in zip(pairs, combo)])
            assert cfg.runs == 3
            jobs += 1
    assert jobs >= 10
