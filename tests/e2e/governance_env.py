"""Real PostgreSQL and Redis for the governance tests: a fresh database per test on the
machine's PostgreSQL (dropped after), a key prefix of its own on the machine's Redis (deleted
after), and a private redis-server on a free port for the tests that stop Redis mid-run."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx

from gateway import Gateway, free_port

PG = ["psql", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qtA"]
ADMIN_KEY = "sk-admin-e2e-governance"


def psql(database: str, sql: str) -> str:
    out = subprocess.run([*PG, "-d", database, "-c", sql], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError(f"psql failed: {out.stderr}")
    return out.stdout


class PgDatabase:
    """A fresh PostgreSQL database, dropped on close."""

    def __init__(self) -> None:
        self.name = "sy_e2e_" + uuid.uuid4().hex[:12]
        psql("test", f"CREATE DATABASE {self.name}")
        self.url = f"postgres://postgres@127.0.0.1:5432/{self.name}"

    def query(self, sql: str) -> list[list[str]]:
        return [line.split("|") for line in psql(self.name, sql).splitlines() if line]

    def close(self) -> None:
        psql("test", f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def redis_cli(port: int, *args: str) -> str:
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True, text=True, timeout=10)
    return out.stdout


def delete_prefix(port: int, prefix: str) -> None:
    keys = redis_cli(port, "--scan", "--pattern", f"{prefix}:*").split()
    for i in range(0, len(keys), 200):
        redis_cli(port, "DEL", *keys[i : i + 200])


class PrivateRedis:
    """A redis-server of this test's own, on a free port, that the test may stop and restart."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    if redis_cli(self.port, "PING").strip() == "PONG":
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"private redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"


def governed_config(database_url: str, extra: str = "", redis_url: str | None = None, prefix: str = "switchyard") -> str:
    """A gateway with an admin key, a database, optionally Redis, and `extra` YAML appended
    (providers, models, routes, governance)."""
    redis = f'redis:\n  url: "{redis_url}"\n  prefix: "{prefix}"\n  timeout: 300ms\n' if redis_url else ""
    return (
        f'server:\n  listen: "127.0.0.1:__PORT__"\n'
        f'auth:\n  admin_keys: ["{ADMIN_KEY}"]\n'
        f'database:\n  url: "{database_url}"\n'
        f"{redis}"
        f"{extra}"
    )


class Admin:
    """The admin API of one gateway."""

    def __init__(self, gw: Gateway, key: str = ADMIN_KEY) -> None:
        self.http = httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {key}"}, timeout=10)

    def create_key(self, **fields) -> dict:
        r = self.http.post("/admin/keys", json=fields)
        assert r.status_code == 201, r.text
        return r.json()

    def post(self, path: str, body: dict | None = None) -> httpx.Response:
        return self.http.post(path, json=body if body is not None else {})

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)


def chat(gw: Gateway, key: str, model: str = "demo-model", timeout: float = 10, **extra) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hello there"}], **extra}
    return httpx.post(gw.url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=timeout)


def wait_for_fresh_minute(margin: float = 20.0) -> None:
    """Per-minute limits count in clock minutes: start a burst with `margin` seconds of the
    minute left, so that it does not straddle two windows."""
    left = 60 - (time.time() % 60)
    if left < margin:
        time.sleep(left + 0.2)
