"""Fixtures for the Switchyard end-to-end suite.

One session-scoped gateway process (the real ``switchyard`` binary, path from
``SWITCHYARD_BIN``, default ``target/debug/switchyard``) is started from a
config generated at runtime (``gateway.gateway_config``) that points at the
mock upstreams of ``upstreams.py``, on ports chosen at runtime.  Smaller
gateways are started on demand: one with ``max_body_size: 64KB``, one with
``auth.api_keys``, and throwaway ones in test_lifecycle.py.  When a test fails,
what the gateways wrote to stderr during that test is attached to the report.

Run: ``tests/run`` (builds, then ``.venv/bin/python -m pytest tests/e2e -q``);
``SWITCHYARD_BIN`` points at the binary under test.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import httpx
import openai
import pytest

from gateway import (
    ANTHROPIC_KEY,
    AUTH_CONFIG,
    OPENAI_ENV_KEY,
    OPENAI_KEY,
    OPENAI_POOL_KEYS,
    RUNNING,
    SMALL_BODY_CONFIG,
    Gateway,
    free_port,
    gateway_config,
)
from upstream_anthropic import AnthropicUpstream
from upstream_openai import OpenAIUpstream

# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def upstreams():
    oai = OpenAIUpstream({OPENAI_KEY, OPENAI_ENV_KEY, *OPENAI_POOL_KEYS}).start()
    ant = AnthropicUpstream({ANTHROPIC_KEY}).start()
    try:
        yield SimpleNamespace(openai=oai, anthropic=ant, openai_key=OPENAI_KEY, anthropic_key=ANTHROPIC_KEY)
    finally:
        oai.stop()
        ant.stop()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("switchyard-e2e")


@pytest.fixture(scope="session")
def gateway(upstreams, workdir):
    gw = Gateway(
        "main",
        gateway_config(upstreams.openai.url, upstreams.anthropic.url, f"http://127.0.0.1:{free_port()}"),
        workdir,
        env={"SWITCHYARD_E2E_ENV_KEY": OPENAI_ENV_KEY},
    )
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture(scope="session")
def small_gateway(workdir):
    gw = Gateway("small-body", SMALL_BODY_CONFIG, workdir)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture(scope="session")
def auth_gateway(workdir):
    gw = Gateway("auth", AUTH_CONFIG, workdir)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture(scope="session")
def client(gateway):
    c = openai.OpenAI(base_url=f"http://127.0.0.1:{gateway.port}/v1", api_key="anything", max_retries=0, timeout=20)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="session")
def http(gateway):
    with httpx.Client(base_url=gateway.url, timeout=20) as c:
        yield c


@pytest.fixture
def nonce() -> str:
    """A unique marker to find this test's requests at the upstream."""
    return "n" + uuid.uuid4().hex[:12]


# ---------------------------------------------------------------------------
# attach gateway logs to failing tests
# ---------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    item._gw_t0 = time.monotonic()
    item._gw_log_offsets = {id(g): g.log_size() for g in RUNNING if g.proc is not None and g.proc.poll() is None}
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    offsets = getattr(item, "_gw_log_offsets", {})
    t0 = getattr(item, "_gw_t0", 0.0)
    for g in RUNNING:
        if id(g) not in offsets and g.started_at < t0:
            continue  # stopped before this test began
        code = g.proc.poll() if g.proc is not None else None
        lines = g.log_text(offsets.get(id(g), 0)).splitlines()
        if not lines and code is None:
            continue
        if len(lines) > 200:
            lines = ["[... earlier lines cut ...]", *lines[-200:]]
        status = "running" if code is None else f"exited with code {code}"
        rep.sections.append(
            (f"switchyard stderr: gateway {g.name!r} ({status}) during this test", "\n".join(lines) or "(nothing)")
        )
