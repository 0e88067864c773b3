"""Hot reload (docs/configuration.md): edits to the config file apply without a restart.

Each test runs its own gateway on mock providers and edits that gateway's config file.
"""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from gateway import Gateway
from helpers import parse_json


def config(models: dict[str, str], chunk_interval: str = "0ms") -> str:
    providers = "".join(
        f'  p-{name}:\n    kind: mock\n    mock: {{ text: "{text}", chunk_words: 1, chunk_interval: {chunk_interval} }}\n'
        for name, text in models.items()
    )
    model_lines = "".join(f"  {name}:\n    provider: p-{name}\n" for name in models)
    return (
        f'server:\n  listen: "127.0.0.1:__PORT__"\ndatabase:\n  url: none\nproviders:\n{providers}models:\n{model_lines}'
    )


def write_like_an_editor(gw: Gateway, text: str) -> None:
    """Write a new file and rename it over the old one, as editors and ConfigMap updates do."""
    tmp = gw.config_path.with_suffix(".tmp")
    tmp.write_text(text.replace("__PORT__", str(gw.port)))
    os.replace(tmp, gw.config_path)


def model_ids(gw: Gateway) -> set[str]:
    return {m["id"] for m in httpx.get(gw.url + "/v1/models", timeout=5).json()["data"]}


def answer(gw: Gateway, model: str) -> str:
    r = httpx.post(
        gw.url + "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "hi"}]}, timeout=10
    )
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["message"]["content"]


def poll(condition, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def make_gateway(workdir):
    started = []

    def make(text: str, *args: str) -> Gateway:
        gw = Gateway(f"reload-{time.monotonic_ns()}", text, workdir, extra_args=args)
        started.append(gw)
        return gw.start()

    yield make
    for gw in started:
        gw.stop()


def test_file_edit_is_picked_up(make_gateway):
    gw = make_gateway(config({"alpha": "from alpha"}))
    assert answer(gw, "alpha") == "from alpha"

    write_like_an_editor(gw, config({"alpha": "alpha changed", "beta": "from beta"}))
    poll(lambda: "beta" in model_ids(gw), "the new model to appear in /v1/models")
    assert answer(gw, "beta") == "from beta"
    assert answer(gw, "alpha") == "alpha changed"


def test_broken_edit_is_rejected_and_old_config_keeps_serving(make_gateway):
    gw = make_gateway(config({"alpha": "from alpha"}))
    before = gw.log_size()
    write_like_an_editor(gw, config({"alpha": "x"}) + "routes:\n  r:\n    targets: [alpha, nope]\n")
    poll(lambda: "routes.r.targets[1]" in gw.log_text(before), "a log line naming the bad key")
    assert answer(gw, "alpha") == "from alpha"
    assert model_ids(gw) == {"alpha"}


def test_sighup_reloads(make_gateway):
    gw = make_gateway(config({"alpha": "from alpha"}), "--no-watch")
    gw.config_path.write_text(config({"alpha": "from alpha", "gamma": "from gamma"}).replace("__PORT__", str(gw.port)))
    gw.proc.send_signal(signal.SIGHUP)
    poll(lambda: "gamma" in model_ids(gw), "SIGHUP to load the new model")
    assert answer(gw, "gamma") == "from gamma"


def test_stream_in_flight_finishes_on_the_config_it_started_with(make_gateway):
    words = "one two three four five six seven eight nine ten"
    gw = make_gateway(config({"alpha": words}, chunk_interval="200ms"))  # about 2 s of streaming
    body = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    events = []
    with httpx.Client(timeout=10) as c, c.stream("POST", gw.url + "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        events.append(next(line for line in lines if line.startswith("data:"))[5:].strip())
        write_like_an_editor(gw, config({"beta": "only beta now"}))
        poll(lambda: model_ids(gw) == {"beta"}, "the reload to apply")
        t_reloaded = time.monotonic()
        t_last = None
        for line in lines:
            if line.startswith("data:"):
                events.append(line[5:].strip())
                t_last = time.monotonic()
    assert t_last is not None and t_last > t_reloaded, "the stream was over before the reload applied: test proves nothing"
    assert events[-1] == "[DONE]"
    content = "".join((c["choices"][0]["delta"].get("content") or "") for c in map(parse_json, events[:-1]) if c.get("choices"))
    assert content == words
