"""The switchyard command line: --help and check-config."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gateway import ANTHROPIC_KEY, OPENAI_KEY, free_port, gateway_bin, gateway_config


def run(*args: str, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    binary = gateway_bin()
    if not binary.exists():
        pytest.fail(f"switchyard binary not found at {binary}", pytrace=False)
    try:
        return subprocess.run(
            [str(binary), *args], capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"`switchyard {' '.join(args)}` still running after {timeout}s: {e.stderr!r}", pytrace=False)


def test_help():
    p = run("--help")
    assert p.returncode == 0, p.stderr
    assert "serve" in p.stdout and "check-config" in p.stdout


def test_check_config_valid_masks_secrets(tmp_path: Path):
    cfg = tmp_path / "ok.yaml"
    cfg.write_text(gateway_config("http://127.0.0.1:9", "http://127.0.0.1:9").replace("__PORT__", "4000"))
    p = run("check-config", str(cfg), env={**os.environ, "SWITCHYARD_E2E_ENV_KEY": "sk-env-value-should-be-masked"})
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    for route in ("smart", "fast"):
        assert route in out, f"route {route!r} not printed:\n{out}"
    assert "claude-sonnet" in out
    for secret in (OPENAI_KEY, ANTHROPIC_KEY, "sk-env-value-should-be-masked"):
        assert secret not in out, f"secret {secret!r} printed in clear:\n{out}"


BASE = """\
providers:
  demo:
    kind: mock
models:
  a:
    provider: demo
  b:
    provider: demo
"""


@pytest.mark.parametrize(
    "extra,path,needle",
    [
        pytest.param(
            "routes:\n  smart:\n    targets: [a, gpt-5o]\n", "routes.smart.targets[1]", "gpt-5o", id="unknown-route-target"
        ),
        pytest.param("  c:\n    provider: nope\n", "models.c.provider", "nope", id="unknown-provider"),
        pytest.param("  c:\n    provder: demo\n", "models.c.provder", "provder", id="misspelt-key"),
        pytest.param(
            '  c:\n    provider: demo\n    upstream: "${SWITCHYARD_E2E_SURELY_UNSET}"\n',
            "models.c.upstream",
            "SWITCHYARD_E2E_SURELY_UNSET",
            id="unset-env-var",
        ),
    ],
)
def test_check_config_invalid_names_the_path(tmp_path: Path, extra: str, path: str, needle: str):
    cfg = tmp_path / "bad.yaml"
    text = BASE + extra
    cfg.write_text(text)
    p = run("check-config", str(cfg))
    out = p.stdout + p.stderr
    assert p.returncode != 0, f"invalid config accepted:\n{text}\n{out}"
    assert path in out, f"error does not name {path!r}:\n{out}"
    assert needle in out, f"error does not mention {needle!r}:\n{out}"


@pytest.mark.parametrize(
    "provider,path,needle",
    [
        pytest.param(
            "  p:\n    kind: openai\n    api_key: sk-x\n    aws: { region: us-east-1 }\n",
            "providers.p.aws",
            "bedrock",
            id="aws-on-openai",
        ),
        pytest.param("  p:\n    kind: vertex\n    api_key: ya29.x\n", "providers.p.vertex", "project", id="vertex-without-project"),
        pytest.param("  p:\n    kind: bedrock\n", "providers.p.aws.region", "AWS_REGION", id="bedrock-without-region"),
        pytest.param(
            "  p:\n    kind: bedrock\n    aws: { region: eu-west-1 }\n", "providers.p", "credentials", id="bedrock-without-credentials"
        ),
    ],
)
def test_check_config_checks_each_providers_own_settings(tmp_path: Path, provider: str, path: str, needle: str):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(BASE.replace("providers:\n", "providers:\n" + provider) + "  c:\n    provider: p\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    p = run("check-config", str(cfg), env=env)
    out = p.stdout + p.stderr
    assert p.returncode != 0, f"invalid config accepted:\n{out}"
    assert path in out and needle in out, out


def test_check_config_env_default(tmp_path: Path):
    cfg = tmp_path / "ok.yaml"
    cfg.write_text(BASE + '  c:\n    provider: demo\n    upstream: "${SWITCHYARD_E2E_SURELY_UNSET:-fallback-model-name}"\n')
    env = {k: v for k, v in os.environ.items() if k != "SWITCHYARD_E2E_SURELY_UNSET"}
    p = run("check-config", str(cfg), env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "fallback-model-name" in p.stdout + p.stderr


def test_check_config_missing_file_fails(tmp_path: Path):
    p = run("check-config", str(tmp_path / "does-not-exist.yaml"))
    assert p.returncode != 0
    assert "does-not-exist.yaml" in p.stdout + p.stderr


def test_serve_refuses_invalid_config(tmp_path: Path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(BASE + "routes:\n  smart:\n    targets: [a, gpt-5o]\n")
    p = run("serve", "--config", str(cfg), "--listen", f"127.0.0.1:{free_port()}", timeout=10)
    assert p.returncode != 0
    assert "routes.smart.targets[1]" in p.stdout + p.stderr
