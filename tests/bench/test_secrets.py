"""Passwords and tokens given to the runner or a sweep reach no file and no log line (issue 17)."""
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import mmgraph.bench  # noqa: F401  (registers the data-root resolver)
from mmgraph.bench import sweep
from mmgraph.errors import ConfigError
from mmgraph.paths import config_dir
from mmgraph.redact import install_log_redaction, mask_url, redact, redact_yaml_file
from tests.postgres import postgres_url, with_password  # noqa: F401  (fixture)

PASSWORD = "pw-SENTINEL-4f9c2e"
TOKEN = "hf_SENTINELoverride0123456789abcdef"  # shaped like a Hugging Face token
ENV_TOKEN = "env-SENTINEL-7d1b3a"  # what HF_TOKEN holds: not token-shaped, hidden because it is HF_TOKEN's
SECRETS = (PASSWORD, TOKEN, ENV_TOKEN, "SENTINEL")
SMALL = ["dataset=synthetic", "dataset.loader.num_nodes=200", "dataset.loader.num_edges=1000",
         "dataset.loader.text_dim=8", "dataset.loader.image_dim=8", "trainer=fast", "trainer.max_epochs=5",
         "trainer.progress=false", "model.module.hidden_channels=16"]
# A token in an override, and HF_TOKEN's value read into the config by OmegaConf.
TOKENS = [f"+hub.hf_token={TOKEN}", "+hub.read_from_env=${oc.env:HF_TOKEN}"]


def bench(args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_TOKEN": ENV_TOKEN,
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "mmgraph.bench", *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=600)


def leaks(folder: Path) -> dict[str, list[str]]:
    """The files below ``folder`` that hold a secret, with the secrets each holds."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", errors="replace")
        found = [s for s in SECRETS if s in text]
        if found:
            out[str(path.relative_to(folder))] = found
    return out


def compose_cfg(*overrides):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


# ------------------------------------------------------------------------------- the rules
@pytest.mark.parametrize("text, shown", [
    ("sweep.storage=postgresql+psycopg2://postgres:s3cret@127.0.0.1:5432/db",
     "sweep.storage=postgresql+psycopg2://postgres:***@127.0.0.1:5432/db"),
    ("'mysql://u:p@ss@host/db' and sqlite:////tmp/study.db", "'mysql://u:***@host/db' and sqlite:////tmp/study.db"),
    ("postgresql://postgres@host/db", "postgresql://postgres@host/db"),
    (f"token {TOKEN}.", "token hf_***."),
    ("+model.hf_token=abc123 api_key=xyz789 max_new_tokens=64 pad_token=<pad>",
     "+model.hf_token=*** api_key=*** max_new_tokens=64 pad_token=<pad>"),
])
def test_text_rules(text, shown):
    assert redact(text) == shown


def test_nested_values_keys_and_environment(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", ENV_TOKEN)
    obj = {"config": {"password": "x", "token": True, "pad_token": "<pad>", "note": f"from {ENV_TOKEN}"},
           "runs": [(1.5, f"url postgresql://a:{PASSWORD}@h/db")], 3: None}
    assert redact(obj) == {"config": {"password": "***", "token": True, "pad_token": "<pad>", "note": "from ***"},
                           "runs": [[1.5, "url postgresql://a:***@h/db"]], 3: None}
    assert mask_url(f"postgresql+psycopg2://u:{PASSWORD}@h:5/db") == "postgresql+psycopg2://u:***@h:5/db"


def test_log_records_and_hydra_files(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HF_TOKEN", ENV_TOKEN)
    install_log_redaction()
    with caplog.at_level(logging.INFO, logger="mmgraph.test"):
        logging.getLogger("mmgraph.test").info("storage %s, token %s", f"pg://u:{PASSWORD}@h/d", ENV_TOKEN)
    assert caplog.messages == ["storage pg://u:***@h/d, token ***"]
    saved = tmp_path / "overrides.yaml"
    saved.write_text(f"- sweep.storage=pg://u:{PASSWORD}@h/d\n- +hub.read_from_env=${{oc.env:HF_TOKEN}}\n")
    assert redact_yaml_file(saved)
    assert saved.read_text() == "- sweep.storage=pg://u:***@h/d\n- +hub.read_from_env=${oc.env:HF_TOKEN}\n"


def test_storage_url_from_the_environment(tmp_path, monkeypatch):
    args = ["model=mlp", "sweep=gnn", *SMALL, f"sweep.dir={tmp_path}", "sweep.storage=${oc.env:MMGRAPH_SWEEP_STORAGE}"]
    monkeypatch.delenv("MMGRAPH_SWEEP_STORAGE", raising=False)
    with pytest.raises(ConfigError, match="sweep.storage: the environment variable MMGRAPH_SWEEP_STORAGE is not set"):
        sweep.settings_of(compose_cfg(*args))
    monkeypatch.setenv("MMGRAPH_SWEEP_STORAGE", f"postgresql+psycopg2://u:{PASSWORD}@h/db")
    settings = sweep.settings_of(compose_cfg(*args))
    assert settings.storage == f"postgresql+psycopg2://u:{PASSWORD}@h/db"  # what Optuna connects with
    assert settings.shown_storage == "postgresql+psycopg2://u:***@h/db" and PASSWORD not in repr(settings)
    assert redact(f"where {PASSWORD} stands alone") == "where *** stands alone"


# ------------------------------------------------------------------------------- real runs
def test_no_secret_in_any_file_of_a_sweep_and_a_multirun(postgres_url, tmp_path, monkeypatch):  # noqa: F811
    """A sweep on PostgreSQL with a password in its URL and a runner multirun, both with a token in an
    override and in HF_TOKEN: every file they write, their output and the report are free of them."""
    storage = with_password(postgres_url, PASSWORD)
    sweep_args = ["model=mlp", "sweep=gnn", *SMALL, "sweep.trials=2", "sweep.final_seeds=1", "sweep.poll=0.5",
                  f"sweep.dir={tmp_path / 'sweeps' / 'mlp'}", f"sweep.storage={storage}",
                  "sweep.study_name=secrets", *TOKENS]
    swept = bench([*sweep_args, f"hydra.run.dir={tmp_path / 'outputs' / 'sweep'}"], tmp_path)
    assert swept.returncode == 0, swept.stderr
    multi = bench(["-m", "model=mlp", *SMALL, "runs=1", *TOKENS, f"hydra.sweep.dir={tmp_path / 'multirun'}"],
                  tmp_path)
    assert multi.returncode == 0, multi.stderr
    from mmgraph.report import make_report

    make_report(tmp_path, out=tmp_path / "report", plots=False, log=lambda _: None)

    written = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    for expected in ("sweeps/mlp/study.json", "sweeps/mlp/final/summary.json", "sweeps/mlp/final/runs/seed_42.json",
                     "outputs/sweep/.hydra/config.yaml", "outputs/sweep/.hydra/hydra.yaml",
                     "outputs/sweep/.hydra/overrides.yaml", "multirun/multirun.yaml",
                     "multirun/synthetic-mlp-0/.hydra/overrides.yaml", "multirun/synthetic-mlp-0/runs/seed_42.json",
                     "report/table.md"):
        assert expected in written, sorted(written)
    assert any(p.endswith(".log") for p in written)
    assert leaks(tmp_path) == {}
    for out in (swept, multi):
        assert not [s for s in SECRETS if s in out.stdout + out.stderr]
    # what is stored says where the secrets were, masked
    assert "postgres:***@" in (tmp_path / "sweeps" / "mlp" / "study.json").read_text()
    assert "hf_token=***" in (tmp_path / "multirun" / "synthetic-mlp-0" / ".hydra" / "overrides.yaml").read_text()

    # The same configuration joins the study (its stored configuration has the secrets masked); a
    # different one is refused with the key that differs, and the password is not in the message.
    monkeypatch.setenv("HF_TOKEN", ENV_TOKEN)
    cfg = compose_cfg(*sweep_args)
    study = sweep.open_study(cfg, sweep.settings_of(cfg))
    assert len(study.trials) >= 2 and PASSWORD not in str(study.user_attrs)
    other = compose_cfg(*sweep_args, "trainer.patience=7")
    with pytest.raises(ConfigError, match=r"differs at: trainer.patience\)") as err:
        sweep.open_study(other, sweep.settings_of(other))
    assert PASSWORD not in str(err.value) and "postgres:***@" in str(err.value)
