"""Onboarding: `switchyard init`, every config error at once in the config's own words,
`config-schema`, `--help` and shell completions."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from gateway import ROOT, Gateway, gateway_bin


def run(*args: str, cwd: Path | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    binary = gateway_bin()
    if not binary.exists():
        pytest.fail(f"switchyard binary not found at {binary}", pytrace=False)
    try:
        return subprocess.run(
            [str(binary), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"`switchyard {' '.join(args)}` still running after {timeout}s: {e.stderr!r}", pytrace=False)


ALL_STARTER_PROVIDERS = ("openai", "anthropic", "azure", "gemini", "bedrock", "ollama", "vllm")


def init_config(tmp_path: Path, *providers: str) -> Path:
    out = tmp_path / "switchyard.yaml"
    args = [a for p in providers for a in ("--provider", p)]
    p = run("init", *args, "-o", str(out))
    assert p.returncode == 0, p.stdout + p.stderr
    return out


def test_init_passes_check_config_and_serves_at_once(tmp_path: Path):
    cfg = init_config(tmp_path, *ALL_STARTER_PROVIDERS)
    text = cfg.read_text()
    for var in ("${OPENAI_API_KEY}", "${ANTHROPIC_API_KEY}", "${AZURE_OPENAI_API_KEY}", "${GEMINI_API_KEY}"):
        assert var in text, f"{var} missing from the starter:\n{text}"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    p = subprocess.run(
        [str(gateway_bin()), "check-config", str(cfg)], capture_output=True, text=True, env=env, timeout=30
    )
    assert p.returncode == 0, p.stdout + p.stderr

    gw = Gateway("init-starter", text, tmp_path).start()
    try:
        r = httpx.post(
            gw.url + "/v1/chat/completions",
            json={"model": "default", "messages": [{"role": "user", "content": "Hello"}]},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"]
    finally:
        gw.stop()


def test_init_refuses_to_overwrite_without_force(tmp_path: Path):
    cfg = tmp_path / "switchyard.yaml"
    cfg.write_text("# mine\n")
    p = run("init", "-o", str(cfg))
    assert p.returncode != 0
    assert "--force" in p.stderr
    assert cfg.read_text() == "# mine\n"
    p = run("init", "-o", str(cfg), "--force")
    assert p.returncode == 0, p.stderr
    assert "kind: mock" in cfg.read_text()


def test_init_writes_switchyard_yaml_in_the_current_directory(tmp_path: Path):
    p = run("init", "--provider", "ollama", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "# ollama:" in (tmp_path / "switchyard.yaml").read_text()


THREE_MISTAKES = """\
server:
  max_in_flight: 0
providers:
  demo:
    kind: mock
models:
  a:
    provider: nope
routes:
  smart:
    targets: [a, gpt-5o]
"""


def test_check_config_reports_every_mistake_with_its_key_path(tmp_path: Path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(THREE_MISTAKES)
    p = run("check-config", str(cfg))
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "3 problems" in out, out
    for path, needle in (
        ("server.max_in_flight", "at least 1"),
        ("models.a.provider", '"nope"'),
        ("routes.smart.targets[1]", '"gpt-5o"'),
    ):
        line = next((ln for ln in out.splitlines() if path in ln), None)
        assert line is not None and needle in line, f"{path} not reported with {needle!r}:\n{out}"


# Each is wrong in its own way: a semantic check, a type the loader refuses, a misspelt key or
# value. What the user reads must be in the config's own words, never the gateway's types.
BROKEN_CONFIGS = {
    "keyless-openai": "providers: { p: { kind: openai } }\n",
    "compatible-without-url": "providers: { p: { kind: openai_compatible } }\n",
    "unknown-kind": "providers: { p: { kind: opena } }\n",
    "provider-not-a-map": "providers: { p: 5 }\n",
    "model-not-a-map": "providers: { p: { kind: mock } }\nmodels: { m: [1] }\n",
    "azure-without-version": 'providers: { p: { kind: azure, base_url: "https://x.openai.azure.com", api_key: k } }\n',
    "vertex-without-section": "providers: { p: { kind: vertex, api_key: k } }\n",
    "aws-on-openai": "providers: { p: { kind: openai, api_key: k, aws: { region: x } } }\n",
    "bad-duration": "providers: { p: { kind: mock, timeouts: { idle: soon } } }\n",
    "negative-duration": "providers: { p: { kind: mock, timeouts: { idle: -3 } } }\n",
    "bad-size": "server: { max_body_size: lots }\n",
    "text-for-number": "server: { max_connections: many }\n",
    "negative-number": "server: { max_connections: -1 }\n",
    "bad-listen": "server: { listen: nowhere }\n",
    "misspelt-key": "server: { listn: x }\n",
    "bad-strategy": "providers: { p: { kind: mock } }\nmodels: { m: { provider: p } }\nroutes: { r: { strategy: fastest, targets: [m] } }\n",
    "bad-target": "providers: { p: { kind: mock } }\nmodels: { m: { provider: p } }\nroutes: { r: { targets: [{ modle: m }] } }\n",
    "target-not-a-list": "providers: { p: { kind: mock } }\nmodels: { m: { provider: p } }\nroutes: { r: { targets: m } }\n",
    "no-targets": "providers: { p: { kind: mock } }\nmodels: { m: { provider: p } }\nroutes: { r: { targets: [] } }\n",
    "bad-capability": "providers: { p: { kind: mock } }\nmodels: { m: { provider: p, capabilities: [teleport] } }\n",
    "unknown-guardrail": "guardrails: { apply: [nope] }\n",
    "bad-guardrail-type": "guardrails: { define: { g: { type: magic } } }\n",
    "redact-format": "guardrails: { define: { g: { type: format, action: redact } } }\n",
    "downgrade-without-target": "governance: { over_limit: { policy: downgrade } }\n",
    "bad-policy": "governance: { over_limit: { policy: panic } }\n",
    "bad-redis": 'redis: { url: "http://x" }\n',
    "bad-breaker": "resilience: { breaker: { error_rate: 2, consecutive_failures: 0 } }\n",
    "bad-retry": "resilience: { retry: { max_attempts: 0, backoff: 10s, max_backoff: 1s } }\n",
    "bad-mock": "providers: { p: { kind: mock, mock: { failure_rate: 3, failure_status: 200, chunk_words: 0 } } }\n",
    "bad-otlp": "telemetry: { otlp: { endpoint: grpc://x } }\n",
    "bad-records": "records: { store: maybe }\n",
    "unset-env": 'providers: { p: { kind: openai, api_key: "${SWITCHYARD_E2E_SURELY_UNSET}" } }\n',
    "yaml-syntax": "providers: { p: { kind: mock }\n",
    "top-level-list": "- a\n- b\n",
    "bedrock-without-region": "providers: { p: { kind: bedrock } }\nmodels: { m: { provider: p } }\n",
}

# CamelCase identifiers (`ProviderKind`, `Openai` stands alone below), Rust paths and the
# Option/Result constructors; brand names spelt in CamelCase are allowed.
INTERNAL = re.compile(r"\b[A-Z][a-z0-9]+[A-Z]\w*|\bOpenai\b|::|\b(?:Some|None|Ok|Err)\b|\b[uif](?:8|16|32|64|size)\b")
BRANDS = {"OpenAI", "OpenRouter", "DeepSeek", "PostgreSQL", "SQLite", "ConfigMap", "SigV4"}


@pytest.mark.parametrize("name", sorted(BROKEN_CONFIGS))
def test_config_errors_speak_the_configs_language(tmp_path: Path, name: str):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text(BROKEN_CONFIGS[name])
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    p = subprocess.run(
        [str(gateway_bin()), "check-config", str(cfg)], capture_output=True, text=True, env=env, timeout=30
    )
    out = (p.stdout + p.stderr).replace(str(cfg), "FILE")
    assert p.returncode != 0, f"{name} accepted:\n{out}"
    leaks = [m for m in INTERNAL.findall(out) if m not in BRANDS]
    assert not leaks, f"{name}: internal names {leaks} in:\n{out}"


@pytest.fixture(scope="module")
def config_schema() -> dict:
    import json

    p = run("config-schema")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def yaml_1_2(text: str):
    """YAML as the gateway reads it (1.2): `on:` is a key, not the boolean PyYAML's 1.1 makes it."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    return yaml.load(text, Loader=Loader)


def schema_errors(schema: dict, text: str) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft7Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(yaml_1_2(text) or {})]


CONFIG_FILES = sorted((ROOT / "examples").glob("*.yaml")) + [ROOT / "switchyard.yaml"]


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_schema_accepts_the_repos_configs(config_schema: dict, path: Path):
    errors = schema_errors(config_schema, path.read_text())
    assert not errors, f"{path.name}: " + "\n".join(errors)


def test_schema_accepts_init_output(config_schema: dict, tmp_path: Path):
    cfg = init_config(tmp_path, *ALL_STARTER_PROVIDERS)
    errors = schema_errors(config_schema, cfg.read_text())
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    "text,where",
    [
        pytest.param("server: { listn: '127.0.0.1:4000' }\n", "listn", id="misspelt-server-key"),
        pytest.param("providers: { p: { kind: mock, api_kye: x } }\n", "api_kye", id="misspelt-provider-key"),
        pytest.param("providers: { p: { kind: opena } }\n", "opena", id="unknown-kind"),
        pytest.param("routs: {}\n", "routs", id="misspelt-section"),
        pytest.param("guardrails: { define: { g: { type: pii, acton: block } } }\n", "acton", id="misspelt-guardrail-key"),
    ],
)
def test_schema_rejects_misspellings(config_schema: dict, text: str, where: str):
    errors = schema_errors(config_schema, text)
    assert errors, f"schema accepted:\n{text}"
    assert where in "\n".join(errors), errors


def test_schema_accepts_what_the_loader_accepts(config_schema: dict):
    text = """\
server: { max_body_size: 64KB, request_deadline: 2m, drain_timeout: 5, max_header_size: 16384 }
providers:
  oai: { kind: openai, api_key: "${OPENAI_API_KEY}", timeouts: { idle: 500ms } }
  br: { kind: bedrock, aws: { region: us-east-1 } }
models: { m: { provider: oai, price: { input: 1, output: 2 } } }
routes:
  r:
    strategy: weighted
    targets: [{ model: m, weight: 2 }, m]
    retry: { ttft_timeout: 2s }
guardrails:
  apply: [pii]
  define:
    pii: { type: pii, action: redact, on: input, restore: true }
    hook: { type: webhook, url: "http://x", timeout: 1s, fail: closed }
"""
    errors = schema_errors(config_schema, text)
    assert not errors, "\n".join(errors)


def test_help_says_what_switchyard_is_for_its_user():
    p = run("--help")
    assert p.returncode == 0, p.stderr
    first = p.stdout.strip().splitlines()[0]
    assert "gateway" in first and "OpenAI" in first and "Anthropic" in first, first
    for internal in ("ingress", "egress", "switchyard-server", "switchyard-core", "switchyard_core", "crate", "binary"):
        assert internal not in p.stdout.lower(), f"{internal!r} in --help:\n{p.stdout}"
    for command in ("serve", "check-config", "init", "config-schema", "completions"):
        assert command in p.stdout


@pytest.mark.parametrize("command", ["serve", "check-config", "init", "config-schema", "completions", "keys", "report"])
def test_each_subcommand_help_has_an_example(command: str):
    p = run(command, "--help")
    assert p.returncode == 0, p.stderr
    assert f"switchyard {command}" in p.stdout, f"no example in `switchyard {command} --help`:\n{p.stdout}"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completions_cover_the_subcommands(shell: str):
    p = run("completions", shell)
    assert p.returncode == 0, p.stderr
    for command in ("serve", "check-config", "init"):
        assert command in p.stdout, f"{shell} completions miss {command}"
