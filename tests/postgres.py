"""A throwaway PostgreSQL server on the loopback, started and stopped by the tests themselves.

The server binaries are the system's (Debian's ``postgresql`` package: ``pg_ctl`` and
``initdb`` on the PATH or under ``/usr/lib/postgresql/<version>/bin``). PostgreSQL will not
run as root, so where the tests do (a CI container) the server runs as the ``postgres``
system user the package creates. Password authentication, as a plant's server has it;
fsync off for the tests, since the data dies with the session (on for benchmarks).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

USER = "inspector"


def server_binaries() -> Path | None:
    """The folder holding ``pg_ctl`` and ``initdb``, or None."""
    found = shutil.which("pg_ctl")
    if found and (Path(found).resolve().parent / "initdb").exists():
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """One server in a temporary folder; ``url(name)`` for a database on it."""

    def __init__(self, binaries: Path, *, durable: bool = False) -> None:
        self.binaries = binaries
        self.durable = durable  # fsync as a plant's server has it (benchmarks); off for tests
        self.root = Path(tempfile.mkdtemp(prefix="inspector-pg-"))
        self.password = secrets.token_hex(12)
        self.port = _free_port()
        self._as = []
        if os.geteuid() == 0:  # initdb refuses root
            shutil.chown(self.root, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr or done.stdout}")

    def start(self) -> PostgresServer:
        password_file = self.root / "password"
        password_file.write_text(self.password)
        if self._as:
            shutil.chown(password_file, "postgres", "postgres")
        data = self.root / "data"
        self._run(
            str(self.binaries / "initdb"),
            "-D", str(data), "-U", USER, "--auth=scram-sha-256", f"--pwfile={password_file}",
            "-E", "UTF8", "--no-locale",
        )  # fmt: skip
        self.resume()
        return self

    def stop(self) -> None:
        try:
            self._run(str(self.binaries / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def halt(self) -> None:
        """Stop the server as a crash or a maintenance would (same data and port kept)."""
        self._run(str(self.binaries / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the (halted) server: on the loopback only, at its port."""
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
            "-c max_connections=60"
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        log = str(self.root / "log")
        self._run(str(self.binaries / "pg_ctl"), "-D", str(self.root / "data"), "-o", options, "-l", log, "-w", "start")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; returns its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[-1]
        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
