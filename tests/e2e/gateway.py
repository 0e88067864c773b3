"""The switchyard gateway process under test, and the configs the suite runs it with."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]

OPENAI_KEY = "sk-e2e-oai-4f1c9a7d2b"
OPENAI_ENV_KEY = "sk-e2e-from-env-8e2d61"
OPENAI_POOL_KEYS = ("sk-e2e-pool-1", "sk-e2e-pool-2", "sk-e2e-pool-3")
CLIENT_KEY = "sk-client-e2e-good"
ANTHROPIC_KEY = "sk-ant-e2e-secret-93b0c5"
MOCK_TEXT = "Hello from the mock provider."

RUNNING: list["Gateway"] = []


def gateway_bin() -> Path:
    p = Path(os.environ.get("SWITCHYARD_BIN") or ROOT / "target" / "debug" / "switchyard")
    if not p.is_absolute():
        p = (ROOT / p).resolve()
    return p


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """A running ``switchyard serve`` process."""

    def __init__(self, name: str, config_text: str, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.workdir = workdir
        self.config_path = workdir / f"{name}.yaml"
        self.log_path = workdir / f"{name}.stderr.log"
        self.config_template = config_text
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self, start: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def start(self, timeout: float = 30.0) -> "Gateway":
        binary = gateway_bin()
        if not binary.exists():
            pytest.fail(
                f"switchyard binary not found at {binary}: build it with `cargo build -p switchyard-server` "
                "or point SWITCHYARD_BIN at it",
                pytrace=False,
            )
        last_error = ""
        for _attempt in range(3):  # the free port may be taken between probe and bind
            self.port = free_port()
            self.config_path.write_text(self.config_template.replace("__PORT__", str(self.port)))
            self._log = open(self.log_path, "ab")
            env = {"SWITCHYARD_LOG": "info", **os.environ, "RUST_BACKTRACE": "1", "NO_COLOR": "1", **self.env}
            self.proc = subprocess.Popen(
                [str(binary), "serve", "--config", str(self.config_path), "--listen", f"127.0.0.1:{self.port}"],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
                env=env,
                cwd=self.workdir,
            )
            if self not in RUNNING:
                RUNNING.append(self)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    r = httpx.get(self.url + "/health/ready", timeout=1.0)
                    if r.status_code == 200:
                        return self
                    last_error = f"/health/ready answered {r.status_code}: {r.text[:300]}"
                except httpx.HTTPError as e:
                    last_error = repr(e)
                time.sleep(0.05)
            code = self.proc.poll()
            log = self.log_text()
            self.stop()
            if code is not None and "in use" in log.lower():
                continue
            pytest.fail(
                f"gateway {self.name!r} did not become ready within {timeout}s "
                f"(exit code {code}; last probe: {last_error})\n--- config ---\n{self.config_path.read_text()}"
                f"\n--- stderr ---\n{log[-8000:]}",
                pytrace=False,
            )
        pytest.fail(f"gateway {self.name!r} could not bind a port: {last_error}", pytrace=False)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None


def gateway_config(oai_url: str, anthropic_url: str, dead_url: str = "http://127.0.0.1:9") -> str:
    """The main test config. ``dead_url`` is an address where nothing listens."""
    return f"""\
server:
  listen: "127.0.0.1:__PORT__"
records:
  log: true        # one structured line per request on stderr: shown for failing tests
providers:
  oai:
    kind: openai_compatible
    base_url: "{oai_url}/v1"
    api_key: "{OPENAI_KEY}"
    timeouts: {{ connect: 2s, first_byte: 30s, idle: 10s }}
  oai_env:
    kind: openai_compatible
    base_url: "{oai_url}/v1"
    api_key: "${{SWITCHYARD_E2E_ENV_KEY}}"
  oai_pool:
    kind: openai_compatible
    base_url: "{oai_url}/v1"
    api_key: "{OPENAI_POOL_KEYS[0]}"
    api_keys: ["{OPENAI_POOL_KEYS[1]}", "{OPENAI_POOL_KEYS[2]}"]
    headers: {{ x-e2e-extra: "hello-upstream" }}
  claude:
    kind: anthropic
    base_url: "{anthropic_url}"
    api_key: "{ANTHROPIC_KEY}"
    headers: {{ anthropic-beta: "prompt-caching-2024-07-31" }}
    timeouts: {{ connect: 2s, first_byte: 30s, idle: 10s }}
  oai_short:
    kind: openai_compatible
    base_url: "{oai_url}/v1"
    api_key: "{OPENAI_KEY}"
    timeouts: {{ connect: 1s, first_byte: 500ms, idle: 500ms }}
  claude_short:
    kind: anthropic
    base_url: "{anthropic_url}"
    api_key: "{ANTHROPIC_KEY}"
    timeouts: {{ connect: 1s, first_byte: 500ms, idle: 500ms }}
  dead:
    kind: openai_compatible
    base_url: "{dead_url}/v1"
    api_key: "sk-dead"
    timeouts: {{ connect: 1s, first_byte: 5s, idle: 5s }}
  demo:
    kind: mock
    mock: {{ text: "{MOCK_TEXT}", echo: false, latency: 0ms, chunk_words: 1, chunk_interval: 0ms, failure_rate: 0.0 }}
  demo_echo:
    kind: mock
    mock: {{ echo: true, chunk_words: 2 }}
  demo_429:
    kind: mock
    mock: {{ failure_rate: 1.0, failure_status: 429 }}
models:
  gpt-4o-mini:
    provider: oai
    upstream: gpt-4o-mini
    context_window: 128000
    price: {{ input: 0.15, output: 0.6, cached_input: 0.075 }}
  gpt-4o-mini-env:
    provider: oai_env
    upstream: gpt-4o-mini
  oai-slow:
    provider: oai
    upstream: slow-stream
  oai-drop:
    provider: oai
    upstream: drop-mid-stream
  oai-limited:
    provider: oai
    upstream: rate-limited
  claude-sonnet:
    provider: claude
    upstream: claude-sonnet-4-5
  claude-slow:
    provider: claude
    upstream: slow-stream
  claude-drop:
    provider: claude
    upstream: drop-mid-stream
  claude-overloaded:
    provider: claude
    upstream: error-after-200
  claude-limited:
    provider: claude
    upstream: rate-limited
  oai-server-error:
    provider: oai
    upstream: server-error
  claude-server-error:
    provider: claude
    upstream: server-error
  oai-bad-request:
    provider: oai
    upstream: bad-request
  claude-bad-request:
    provider: claude
    upstream: bad-request
  oai-hang:
    provider: oai_short
    upstream: hang
  claude-hang:
    provider: claude_short
    upstream: hang
  oai-stall:
    provider: oai_short
    upstream: stall-mid-stream
  claude-stall:
    provider: claude_short
    upstream: stall-mid-stream
  dead-model:
    provider: dead
    upstream: gpt-4o-mini
  gpt-pool:
    provider: oai_pool
    upstream: gpt-4o-mini
  claude-big:
    provider: claude
    upstream: claude-sonnet-4-5
    default_max_tokens: 8192
  text-only:
    provider: oai
    upstream: gpt-4o-mini
    capabilities: [chat]
  embed-only:
    provider: oai
    upstream: text-embedding-3-small
    capabilities: [embeddings]
  echo-model:
    provider: demo_echo
  always-429:
    provider: demo_429
  demo-model:
    provider: demo
  text-embedding-3-small:
    provider: oai
routes:
  smart:
    targets: [claude-sonnet, gpt-4o-mini]
  fast:
    targets: [demo-model]
  vision:
    targets: [text-only, claude-sonnet]
"""


AUTH_CONFIG = f"""\
server:
  listen: "127.0.0.1:__PORT__"
auth:
  api_keys: ["{CLIENT_KEY}"]
records:
  database_url: none
providers:
  demo:
    kind: mock
    mock: {{ text: "{MOCK_TEXT}" }}
models:
  demo-model:
    provider: demo
"""

SMALL_BODY_CONFIG = f"""\
server:
  listen: "127.0.0.1:__PORT__"
  max_body_size: 64KB
records:
  database_url: none
providers:
  demo:
    kind: mock
    mock: {{ text: "{MOCK_TEXT}" }}
models:
  demo-model:
    provider: demo
"""
