"""`switchyard import`: the sample LiteLLM and Portkey configs of examples/import/ are imported
with the real binary, checked with `check-config`, and served: their providers are re-pointed at
the mock upstreams (and a deployment's upstream model at a failing scenario where a test needs
one), and the gateway must route as the source gateway would — the weighted split, the fallback
on a 500, the context-window fallback — while stderr names what did not carry over."""

from __future__ import annotations

import collections
import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from gateway import ANTHROPIC_KEY, OPENAI_KEY, ROOT, Gateway, gateway_bin

SAMPLES = ROOT / "examples" / "import"

# Every variable the samples read, so that check-config can resolve them.
SAMPLE_ENV = {
    "AZURE_EASTUS_API_KEY": "azure-east",
    "AZURE_WESTEUROPE_API_KEY": "azure-west",
    "OPENAI_API_KEY": "sk-openai",
    "ANTHROPIC_API_KEY": "sk-ant",
    "GEMINI_API_KEY": "gemini",
    "MISTRAL_API_KEY": "mistral",
    "REDIS_HOST": "127.0.0.1",
    "REDIS_PORT": "6379",
    "REDIS_PASSWORD": "secret",
    "LITELLM_MASTER_KEY": "sk-master-1234",
    "DATABASE_URL": "postgres://litellm:pw@127.0.0.1:5432/litellm",
}


def switchyard(*args: str) -> subprocess.CompletedProcess:
    binary = gateway_bin()
    if not binary.exists():
        pytest.fail(f"switchyard binary not found at {binary}", pytrace=False)
    return subprocess.run(
        [str(binary), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **SAMPLE_ENV},
        stdin=subprocess.DEVNULL,
    )


def import_sample(kind: str, name: str, out: Path) -> tuple[str, str]:
    """Imports a sample to ``out``; returns the YAML and stderr."""
    p = switchyard("import", kind, str(SAMPLES / name), "-o", str(out))
    assert p.returncode == 0, p.stderr
    return out.read_text(), p.stderr


def block(yaml: str, section: str) -> str:
    m = re.search(rf"^{section}:\n(?:(?:  .*|\s*#.*)?\n)*", yaml, re.M)
    assert m, f"no {section}: section in\n{yaml}"
    return m.group(0)


def on_mocks(yaml: str, upstreams, upstream_of: dict[str, str] | None = None) -> str:
    """The imported config served from the mock upstreams: every provider re-pointed (Anthropic
    kinds at the Anthropic mock, every other kind at the OpenAI mock), Redis dropped, and the
    upstream model of the models in ``upstream_of`` replaced (to pick a mock scenario)."""
    providers = block(yaml, "providers")
    names = re.findall(r"^  (\S+):\n    kind: (\S+)", providers, re.M)
    assert names, providers
    mocked = ["providers:"]
    for name, kind in names:
        if kind == "anthropic":
            mocked.append(f'  {name}: {{ kind: anthropic, base_url: "{upstreams.anthropic.url}", api_key: "{ANTHROPIC_KEY}" }}')
        else:
            mocked.append(f'  {name}: {{ kind: openai_compatible, base_url: "{upstreams.openai.url}/v1", api_key: "{OPENAI_KEY}" }}')
    yaml = yaml.replace(providers, "\n".join(mocked) + "\n\n")
    if re.search(r"^redis:", yaml, re.M):
        yaml = yaml.replace(block(yaml, "redis"), "")
    for model, upstream in (upstream_of or {}).items():
        pattern = rf"^(  {re.escape(model)}:\n    provider: \S+\n)(    upstream: .*\n)?"
        yaml, n = re.subn(pattern, rf"\g<1>    upstream: {upstream}\n", yaml, flags=re.M)
        assert n == 1, f"model {model} not found in\n{yaml}"
    return "server:\n  listen: \"127.0.0.1:__PORT__\"\n" + yaml


@pytest.fixture
def serve(upstreams, workdir):
    started: list[Gateway] = []

    def start(name: str, yaml: str) -> httpx.Client:
        gw = Gateway(name, yaml, workdir)
        gw.start()
        started.append(gw)
        return httpx.Client(base_url=gw.url, timeout=20)

    yield start
    for gw in started:
        gw.stop()


def chat(http: httpx.Client, model: str, text: str = "hello") -> httpx.Response:
    return http.post("/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": text}]})


def split(http: httpx.Client, model: str, n: int = 200) -> collections.Counter:
    served = collections.Counter()
    for i in range(n):
        r = chat(http, model, f"request {i}")
        assert r.status_code == 200, r.text
        served[r.headers["x-switchyard-model"]] += 1
    return served


@pytest.mark.parametrize(
    "kind,name",
    [
        ("litellm", "litellm-load-balancing.yaml"),
        ("litellm", "litellm-fallbacks.yaml"),
        ("litellm", "litellm-keys-and-database.yaml"),
        ("portkey", "portkey-fallback.json"),
        ("portkey", "portkey-loadbalance.json"),
    ],
)
def test_every_sample_imports_to_a_config_check_config_accepts(kind, name, tmp_path):
    yaml, _ = import_sample(kind, name, tmp_path / "imported.yaml")
    assert yaml.startswith("# Imported from the ") and name in yaml.splitlines()[0]
    p = switchyard("check-config", str(tmp_path / "imported.yaml"))
    assert p.returncode == 0, f"{p.stderr}\n{yaml}"
    assert ": valid" in p.stdout


def test_litellm_weighted_split_and_what_is_left_behind(upstreams, serve, tmp_path):
    yaml, stderr = import_sample("litellm", "litellm-load-balancing.yaml", tmp_path / "lb.yaml")
    for key in ("litellm_settings.cache", "litellm_settings.cache_params", "router_settings.enable_pre_call_checks"):
        assert f"not carried over: {key} — " in stderr, stderr
    http = serve("import-litellm-lb", on_mocks(yaml, upstreams))
    served = split(http, "gpt-4o")
    # weights 6 / 3 / 1 over 200 requests: 120 / 60 / 20 expected, bounds at about 4 sigma.
    assert 90 <= served["gpt-4o-azure"] <= 150, served
    assert 35 <= served["gpt-4o-azure-2"] <= 85, served
    assert 5 <= served["gpt-4o-openai"] <= 40, served


def test_litellm_fallback_on_500_goes_to_the_other_provider(upstreams, serve, tmp_path):
    yaml, stderr = import_sample("litellm", "litellm-fallbacks.yaml", tmp_path / "fb.yaml")
    assert "not carried over: router_settings.retry_policy — " in stderr, stderr
    http = serve("import-litellm-500", on_mocks(yaml, upstreams, {"gpt-4o-openai": "server-error"}))
    r = chat(http, "gpt-4o")
    assert r.status_code == 200, r.text
    assert r.headers["x-switchyard-model"] == "claude-sonnet"
    # num_retries: 1 → the failing deployment is retried once, then the fallback serves.
    assert r.headers["x-switchyard-attempts"] == "3"


def test_litellm_context_window_fallback(upstreams, serve, tmp_path):
    yaml, _ = import_sample("litellm", "litellm-fallbacks.yaml", tmp_path / "cw.yaml")
    http = serve("import-litellm-ctx", on_mocks(yaml, upstreams, {"gpt-3.5-turbo-openai": "context-length"}))
    r = chat(http, "gpt-3.5-turbo")
    assert r.status_code == 200, r.text
    assert r.headers["x-switchyard-model"] == "gpt-4o-openai"
    assert r.headers["x-switchyard-attempts"] == "2"


def test_portkey_fallback_on_500_after_its_retries(upstreams, serve, tmp_path):
    yaml, stderr = import_sample("portkey", "portkey-fallback.json", tmp_path / "pf.yaml")
    for key in ("cache", "targets[1].virtual_key", "targets[1].override_params.max_tokens"):
        assert f"not carried over: {key} — " in stderr, stderr
    http = serve("import-portkey-fallback", on_mocks(yaml, upstreams, {"gpt-4o": "server-error"}))
    r = chat(http, "portkey-fallback")
    assert r.status_code == 200, r.text
    assert r.headers["x-switchyard-model"] == "claude-sonnet-4-5"
    # retry.attempts: 2 → three calls to the failing target, then the fallback.
    assert r.headers["x-switchyard-attempts"] == "4"


def test_portkey_weighted_loadbalance(upstreams, serve, tmp_path):
    yaml, stderr = import_sample("portkey", "portkey-loadbalance.json", tmp_path / "pl.yaml")
    assert "not carried over: strategy.mode — " in stderr, stderr
    http = serve("import-portkey-lb", on_mocks(yaml, upstreams))
    served = split(http, "portkey-loadbalance")
    # weights 0.7 / 0.2 / 0.1 (the last a nested fallback group): 140 / 40 / 20 expected.
    assert 110 <= served["gpt-4o-mini"] <= 170, served
    assert 18 <= served["gpt-4o-mini-2"] <= 65, served
    assert 5 <= served["meta-llama/Llama-3.1-8B-Instruct"] <= 40, served
    assert served["llama-3.1-8b-instant"] == 0, served
