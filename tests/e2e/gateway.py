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

RUNNING: list[Gateway] = []  # every gateway started in this session, for the failure reports


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

    def __init__(
        self,
        name: str,
        config_text: str,
        workdir: Path,
        env: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.workdir = workdir
        self.config_path = workdir / f"{name}.yaml"
        self.log_path = workdir / f"{name}.stderr.log"
        self.config_template = config_text
        self.env = env or {}
        self.extra_args = extra_args
        self.proc: subprocess.Popen | None = None
        self.started_at = float("inf")
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

    def start(self, timeout: float = 30.0) -> Gateway:
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
            self.started_at = time.monotonic()
            self.config_path.write_text(self.config_template.replace("__PORT__", str(self.port)))
            log_start = self.log_size()
            self._log = open(self.log_path, "ab")
            env = {"SWITCHYARD_LOG": "info", **os.environ, "RUST_BACKTRACE": "1", "NO_COLOR": "1", **self.env}
            self.proc = subprocess.Popen(
                [
                    str(binary),
                    "serve",
                    "--config",
                    str(self.config_path),
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    *self.extra_args,
                ],
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
            log = self.log_text(log_start)
            self.stop()
            if code is not None and "in use" in log.lower():
                continue
            what = f"exited with code {code} before it was ready" if code is not None else f"not ready within {timeout}s"
            pytest.fail(
                f"gateway {self.name!r} {what} (last probe of /health/ready: {last_error})"
                f"\n--- config ---\n{self.config_path.read_text()}"
                f"\n--- stderr ---\n{log[-8000:]}",
                pytrace=False,
            )
        pytest.fail(f"gateway {self.name!r} could not bind a port: {last_error}", pytrace=False)

    def stop(self, grace: float = 2.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds (test_lifecycle checks the clean exit)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None


# Models whose upstream fails on purpose, each on a provider of its own: a gateway may
# rightly cool down a key or open a breaker after failures, and that must not leak into
# other tests. model -> (upstream kind, upstream scenario, short timeouts?)
ISOLATED_MODELS = {
    "oai-limited": ("openai", "rate-limited", False),
    "claude-limited": ("anthropic", "rate-limited", False),
    "claude-limited-stream": ("anthropic", "rate-limited", False),
    "oai-server-error": ("openai", "server-error", False),
    "claude-server-error": ("anthropic", "server-error", False),
    "oai-bad-request": ("openai", "bad-request", False),
    "claude-bad-request": ("anthropic", "bad-request", False),
    "oai-drop": ("openai", "drop-mid-stream", False),
    "claude-drop": ("anthropic", "drop-mid-stream", False),
    "claude-overloaded": ("anthropic", "error-after-200", False),
    "oai-hang": ("openai", "hang", True),
    "claude-hang": ("anthropic", "hang", True),
    "oai-stall": ("openai", "stall-mid-stream", True),
    "claude-stall": ("anthropic", "stall-mid-stream", True),
    "oai-flaky-429": ("openai", "rate-limited-once", False),
    "claude-flaky-429": ("anthropic", "rate-limited-once", False),
    "oai-flaky-500": ("openai", "server-error-once", False),
    "claude-flaky-500": ("anthropic", "server-error-once", False),
}


def _isolated(oai_url: str, anthropic_url: str) -> tuple[str, str]:
    providers, models = [], []
    for model, (side, scenario, short) in ISOLATED_MODELS.items():
        timeouts = "{ connect: 1s, first_byte: 500ms, idle: 500ms }" if short else "{ connect: 2s, first_byte: 30s, idle: 10s }"
        if side == "openai":
            kind, url, key = "openai_compatible", f"{oai_url}/v1", OPENAI_KEY
        else:
            kind, url, key = "anthropic", anthropic_url, ANTHROPIC_KEY
        providers.append(
            f'  p-{model}:\n    kind: {kind}\n    base_url: "{url}"\n    api_key: "{key}"\n    timeouts: {timeouts}\n'
        )
        models.append(f"  {model}:\n    provider: p-{model}\n    upstream: {scenario}\n")
    return "".join(providers), "".join(models)


def gateway_config(oai_url: str, anthropic_url: str, dead_url: str = "http://127.0.0.1:9") -> str:
    """The main test config. ``dead_url`` is an address where nothing listens."""
    isolated_providers, isolated_models = _isolated(oai_url, anthropic_url)
    return f"""\
server:
  listen: "127.0.0.1:__PORT__"
records:
  log: true        # one structured line per request on stderr: shown for failing tests
resilience:
  # Retry-After up to 2s is waited for and retried; longer (the 7s of the rate-limited
  # scenario) goes straight back to the client instead of holding the request.
  retry: {{ max_retry_wait: 2s }}
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
{isolated_providers}models:
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
  claude-sonnet:
    provider: claude
    upstream: claude-sonnet-4-5
  claude-slow:
    provider: claude
    upstream: slow-stream
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
{isolated_models}routes:
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
database:
  url: none
providers:
  demo:
    kind: mock
    mock: {{ text: "{MOCK_TEXT}" }}
models:
  demo-model:
    provider: demo
"""

SLOW_MOCK_CONFIG = """\
server:
  listen: "127.0.0.1:__PORT__"
database:
  url: none
providers:
  slow:
    kind: mock
    mock: { text: "one two three four five six", chunk_words: 1, chunk_interval: 150ms }
models:
  slow-mock:
    provider: slow
"""

SMALL_BODY_CONFIG = f"""\
server:
  listen: "127.0.0.1:__PORT__"
  max_body_size: 64KB
database:
  url: none
providers:
  demo:
    kind: mock
    mock: {{ text: "{MOCK_TEXT}" }}
models:
  demo-model:
    provider: demo
"""
