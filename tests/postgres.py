"""A real PostgreSQL server for tests, started from Debian's binaries on a loopback port.

``.ci/run`` installs Debian's ``postgresql`` package; elsewhere the tests that need a server are
skipped when its binaries are missing (never in CI, where a missing server is a failure).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def postgres_bindir() -> Path | None:
    """The folder with ``initdb`` and ``postgres`` (newest Debian version first)."""
    candidates = []
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).resolve().parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """initdb into a fresh folder, run ``postgres`` on 127.0.0.1:<free port>, trust auth."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        # PostgreSQL refuses to run as root: run it as the postgres user, in a folder it owns
        # outside pytest's root-only temporary tree.
        self.user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.root = Path(tempfile.mkdtemp(prefix="mmgraph-pg-"))
        if self.user:
            shutil.chown(self.root, "postgres")
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> str:
        data = self.root / "data"
        subprocess.run([*self.user, str(self.bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                        "--no-sync"], check=True, capture_output=True, timeout=120)
        log = open(self.root / "server.log", "w")
        self.proc = subprocess.Popen([*self.user, str(self.bindir / "postgres"), "-D", str(data), "-p",
                                      str(self.port), "-k", str(self.root), "-c", "listen_addresses=127.0.0.1",
                                      "-c", "fsync=off"], stdout=log, stderr=subprocess.STDOUT)
        import psycopg2

        deadline = time.time() + 60
        while True:
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
                break
            except psycopg2.OperationalError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("PostgreSQL did not start: " + (self.root / "server.log").read_text()[-500:])
                time.sleep(0.3)
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE mmgraph_test")
        conn.close()
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/mmgraph_test"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # pg_ctl signals the server itself (runuser would not pass a signal on)
            subprocess.run([*self.user, str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "stop",
                            "-m", "immediate", "-w"], capture_output=True, timeout=60)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` in it (the test server trusts every password)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(password=password).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url():
    bindir = postgres_bindir()
    if bindir is None:
        message = "PostgreSQL binaries (Debian package postgresql) not found"
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run installs them")
        pytest.skip(message)
    server = PostgresServer(bindir)
    try:
        yield server.start()
    finally:
        server.stop()
