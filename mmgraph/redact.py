"""Secrets kept out of everything mmgraph and Hydra write: records, logs, ``.hydra/`` copies.

What is masked (by ``***``):

- the password of a URL (``postgresql+psycopg2://user:***@host/db``, as SQLAlchemy's
  ``render_as_string(hide_password=True)`` shows it);
- Hugging Face tokens (``hf_`` and 20 or more letters and digits);
- the value of a key that names a secret (``password``, ``secret``, ``api_key``, ``token``,
  ``hf_token``, ...), in a mapping or in a ``key=value`` override;
- wherever it occurs, the value of an environment variable that names a secret (``HF_TOKEN``,
  ``PGPASSWORD``, ``*_TOKEN``, ``*_PASSWORD``, ``*_SECRET``, ``*_API_KEY``) and any value given to
  :func:`add_secret` (the sweep adds its storage password).

:func:`redact` applies this to a JSON-like object, :func:`install_log_redaction` to every log
record, and :class:`RedactHydraFiles` (a Hydra callback, see ``configs/config.yaml``) to the
files Hydra saves for a job (``.hydra/*.yaml``, ``multirun.yaml``).
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

MASK = "***"
# Shorter values are too likely to occur by chance to be replaced wherever they stand.
MIN_SECRET_LENGTH = 6

_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]{0,40}://[^\s:/@'\"]*:)(?P<password>[^\s'\"]+?)"
                           r"(?=@[^\s@'\"]*(?:$|[\s'\"]))")
_HF_TOKEN = re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{20,}")
# key=value as in overrides, several of them joined by commas in Hydra's override_dirname
_ASSIGNMENT = re.compile(r"(?P<key>(?<![\w.\-])[+~]{0,2}[\w.\-]+)=(?P<value>(?:[^\s'\",]|,(?![+~]{0,2}[\w.\-]+=))+)")
# Key names whose values are secrets. Not every "*_token": pad_token, eos_token name special tokens.
_SECRET_KEY = re.compile(r"(^|[_-])(password|passwd|secret|api_key|apikey)$|^(hf_|auth_|access_|api_)?token$",
                         re.IGNORECASE)
_SECRET_ENV = re.compile(r"(TOKEN|PASSWORD|PASSWD|SECRET|API_KEY)$", re.IGNORECASE)

_added: set[str] = set()


def add_secret(value: str | None) -> None:
    """Mask ``value`` wherever it occurs from now on in this process (a password read from a URL)."""
    if value and len(value) >= MIN_SECRET_LENGTH and value != MASK:
        _added.add(value)


def secret_key(name: str) -> bool:
    """Whether a config key (its last dotted part) names a secret: ``password``, ``hf_token``, ..."""
    return bool(_SECRET_KEY.search(str(name).rsplit(".", 1)[-1].lstrip("+~")))


def _known_secrets() -> list[str]:
    values = set(_added)
    values.update(v for k, v in os.environ.items() if _SECRET_ENV.search(k) and len(v) >= MIN_SECRET_LENGTH)
    return sorted(values, key=len, reverse=True)  # a secret inside a longer one: the longer first


def _text(text: str, known: list[str]) -> str:
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    text = _HF_TOKEN.sub("hf_" + MASK, text)
    if "=" in text:
        text = _ASSIGNMENT.sub(lambda m: f"{m['key']}={MASK}" if secret_key(m["key"]) else m[0], text)
    return text


def _walk(obj: Any, known: list[str]) -> Any:
    if isinstance(obj, str):
        return _text(obj, known)
    if isinstance(obj, dict):
        return {(_text(k, known) if isinstance(k, str) else k):
                (MASK if isinstance(v, str) and v and isinstance(k, str) and secret_key(k) else _walk(v, known))
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_walk(v, known) for v in obj]
    return obj


def redact(obj: Any) -> Any:
    """``obj`` (strings, dicts and lists, nested) with every secret masked; other values as they are."""
    return _walk(obj, _known_secrets())


def mask_url(url: str) -> str:
    """A database URL with its password shown as ``***`` (and any other secret masked)."""
    try:
        from sqlalchemy.engine import make_url

        url = make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001  (not a URL SQLAlchemy parses: the text rules still apply)
        pass
    return redact(url)


def add_url_secret(url: str) -> None:
    """Mask the password of ``url`` wherever it occurs from now on, as written in the URL and
    decoded (``p%40ss`` and ``p@ss``)."""
    found = _URL_PASSWORD.search(url)
    if found:
        add_secret(found["password"])
    try:
        from sqlalchemy.engine import make_url

        add_secret(make_url(url).password)
    except Exception:  # noqa: BLE001  (not a URL SQLAlchemy parses)
        pass


# ------------------------------------------------------------------------------- logs
def install_log_redaction() -> None:
    """Mask secrets in every log record created from now on in this process (message, arguments
    and traceback), whatever handler, file or console writes it. Calling it again does nothing."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        known = _known_secrets()
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001  (a bad format string: logging reports it itself)
            return record
        clean = _text(message, known)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = _text(logging.Formatter().formatException(record.exc_info), known)
        return record

    factory.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


# ------------------------------------------------------------------------------- Hydra's files
def redact_yaml_file(path: Path) -> bool:
    """Rewrite a YAML file Hydra saved with its secrets masked (interpolations kept as written);
    returns whether anything was masked."""
    from omegaconf import OmegaConf

    if not path.is_file():
        return False
    plain = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    clean = redact(plain)
    if clean == plain:
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(OmegaConf.to_yaml(OmegaConf.create(clean)), encoding="utf-8")
    tmp.replace(path)
    return True


class RedactHydraFiles(Callback):
    """Hydra callback: log records masked from the start of a run, and the files Hydra saved for
    a job (``<output_dir>/.hydra/{config,hydra,overrides}.yaml``, a multirun's ``multirun.yaml``)
    rewritten with secrets masked before the job starts.

    Hydra writes those files just before it calls ``on_job_start``; nothing reads them during the
    job (``--experimental-rerun`` would replay the masked values)."""

    def on_run_start(self, config, **kwargs: Any) -> None:
        install_log_redaction()

    def on_multirun_start(self, config, **kwargs: Any) -> None:
        install_log_redaction()

    def on_job_start(self, config, **kwargs: Any) -> None:
        install_log_redaction()
        from hydra.types import RunMode

        hydra = config.hydra
        if hydra.output_subdir is not None:
            folder = Path(str(hydra.runtime.output_dir)) / str(hydra.output_subdir)
            for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
                redact_yaml_file(folder / name)
        if hydra.mode == RunMode.MULTIRUN:
            redact_yaml_file(_multirun_yaml(config))

    def on_multirun_end(self, config, **kwargs: Any) -> None:
        redact_yaml_file(_multirun_yaml(config))


def _multirun_yaml(config) -> Path:
    """``multirun.yaml`` of the sweep folder (relative to where Hydra started, even with
    ``hydra.job.chdir=true``)."""
    folder = Path(str(config.hydra.sweep.dir))
    if not folder.is_absolute() and config.hydra.runtime.get("cwd"):
        folder = Path(str(config.hydra.runtime.cwd)) / folder
    return folder / "multirun.yaml"
