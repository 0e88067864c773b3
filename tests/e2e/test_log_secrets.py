"""No secret reaches the gateway's log, even at debug level.

The gateway runs with ``SWITCHYARD_LOG=debug`` and request records logged, and
goes through the paths where a credential or a secret is in hand: clients
presenting wrong keys (a static-looking key and a virtual-key-shaped one, as a
bearer token and as ``x-api-key``), an upstream that rejects the provider key
with a 401 whose body echoes that key in full (as some providers do), and a
prompt carrying a token that a redacting ``secrets`` guardrail removes. Then
its whole stdout/stderr is searched for each of those values.
"""

from __future__ import annotations

import json
import secrets
import string
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from gateway import Gateway

ALPHANUMERIC = string.ascii_letters + string.digits


def random_text(n: int) -> str:
    return "".join(secrets.choice(ALPHANUMERIC) for _ in range(n))


# Fresh values each run, so a hit in the log can only come from this test.
PROVIDER_KEY = "sk-provider-" + random_text(32)
ECHO_PROVIDER_KEY = "sk-provider-" + random_text(32)
CLIENT_KEY = "sk-client-" + random_text(32)
WRONG_CLIENT_KEY = "sk-client-" + random_text(32)
WRONG_VIRTUAL_KEY = "sk-sy-" + random_text(43)
PROMPT_SECRET = "ghp_" + random_text(36)


class _EchoingHandler(BaseHTTPRequestHandler):
    """``reject-key``: 401 echoing the whole Authorization header, the way a provider's
    "Incorrect API key provided: …" can. Anything else: a completion quoting the prompt."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        self.server.received.append(raw)  # type: ignore[attr-defined]
        body = json.loads(raw or b"{}")
        auth = self.headers.get("Authorization", "")
        if body.get("model") == "reject-key":
            self._json(
                401,
                {
                    "error": {
                        "message": f"Incorrect API key provided: {auth}. You can find your API key in your account.",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                        "received_header": auth,
                    }
                },
            )
            return
        prompt = body["messages"][-1]["content"]
        self._json(
            200,
            {
                "id": "chatcmpl-echo",
                "object": "chat.completion",
                "created": 1700000000,
                "model": body.get("model"),
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": f"You said: {prompt}"}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
            },
        )

    def _json(self, status: int, obj: object) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def echoing_upstream():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingHandler)
    httpd.daemon_threads = True
    httpd.received = []  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def secrets_config(url: str) -> str:
    return f"""\
server:
  listen: "127.0.0.1:__PORT__"
auth:
  api_keys: ["{CLIENT_KEY}"]
database:
  url: "sqlite://log-secrets.db"
records:
  log: true
resilience:
  retry: {{ max_attempts: 1, retries_per_target: 0 }}
guardrails:
  apply: [secrets]
  define:
    secrets: {{ type: secrets, action: redact }}
providers:
  # Two providers on one upstream: a rejected key cools down, and must not stop the echo.
  rejecting:
    kind: openai_compatible
    base_url: "{url}/v1"
    api_key: "{PROVIDER_KEY}"
    timeouts: {{ connect: 2s, first_byte: 10s, idle: 10s }}
  echoing:
    kind: openai_compatible
    base_url: "{url}/v1"
    api_key: "{ECHO_PROVIDER_KEY}"
    timeouts: {{ connect: 2s, first_byte: 10s, idle: 10s }}
models:
  reject-key:
    provider: rejecting
    upstream: reject-key
  echo:
    provider: echoing
    upstream: echo
routes:
  recorded:
    targets: [echo]
    record_bodies: true
"""


@pytest.fixture(scope="module")
def debug_gateway(echoing_upstream, tmp_path_factory):
    workdir: Path = tmp_path_factory.mktemp("log-secrets")
    url = f"http://127.0.0.1:{echoing_upstream.server_address[1]}"
    gw = Gateway("log-secrets", secrets_config(url), workdir, env={"SWITCHYARD_LOG": "debug"}).start()
    try:
        yield gw
    finally:
        gw.stop()


def chat(gw: Gateway, headers: dict[str, str], model: str, prompt: str = "hello") -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    return httpx.post(gw.url + "/v1/chat/completions", json=body, headers=headers, timeout=20)


def test_debug_log_holds_no_key_and_no_redacted_secret(debug_gateway, echoing_upstream):
    gw = debug_gateway
    good = {"Authorization": f"Bearer {CLIENT_KEY}"}

    for headers in (
        {"Authorization": f"Bearer {WRONG_CLIENT_KEY}"},
        {"x-api-key": WRONG_CLIENT_KEY},
        {"Authorization": f"Bearer {WRONG_VIRTUAL_KEY}"},
        {"x-api-key": WRONG_VIRTUAL_KEY},
    ):
        assert chat(gw, headers, "echo").status_code == 401
    rejected = chat(gw, good, "reject-key")
    assert rejected.status_code == 502, rejected.text
    assert rejected.json()["error"]["code"] == "upstream_auth_failed"
    answered = {model: chat(gw, good, model, f"deploy with token {PROMPT_SECRET} please") for model in ("echo", "recorded")}
    gw.stop()  # flushes buffered records into the log

    # The scenarios really happened: the upstream was sent the provider key and echoed it,
    # and the guardrail took the token out of the prompt before it left the gateway.
    received = b"\n".join(echoing_upstream.received).decode()
    assert PROVIDER_KEY not in received and ECHO_PROVIDER_KEY not in received  # headers only
    for model, answer in answered.items():
        assert answer.status_code == 200, f"{model}: {answer.text}"
    assert "deploy with token" in received and PROMPT_SECRET not in received
    assert "reject-key" in received

    log = gw.log_text()
    assert "reject-key" in log, "the log is expected to mention the rejected call at debug level"
    assert "Incorrect API key provided: [REDACTED]" in log, "the upstream's explanation stays, key masked"
    leaks = {
        "provider key": PROVIDER_KEY,
        "provider key (tail)": PROVIDER_KEY[-16:],
        "echo provider key": ECHO_PROVIDER_KEY,
        "wrong client key": WRONG_CLIENT_KEY,
        "wrong client key (tail)": WRONG_CLIENT_KEY[-16:],
        "wrong virtual key": WRONG_VIRTUAL_KEY,
        "wrong virtual key (tail)": WRONG_VIRTUAL_KEY[-16:],
        "good client key": CLIENT_KEY,
        "redacted prompt secret": PROMPT_SECRET,
        "redacted prompt secret (tail)": PROMPT_SECRET[-16:],
    }
    found = {what: value for what, value in leaks.items() if value in log}
    lines = [line for line in log.splitlines() if any(v in line for v in found.values())]
    assert not found, f"secrets in the gateway log: {sorted(found)}\n" + "\n".join(lines[:20])
