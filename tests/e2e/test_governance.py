"""Governance end to end: virtual keys, limits and budgets on the real binary, against the
machine's real PostgreSQL and Redis (and SQLite, the embedded default), with the admin API and
the official openai SDK as the clients."""

from __future__ import annotations

import datetime
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from gateway import Gateway
from governance_env import (
    ADMIN_KEY,
    Admin,
    PgDatabase,
    chat,
    delete_prefix,
    governed_config,
    wait_for_fresh_minute,
)

MOCK = """\
providers:
  demo:
    kind: mock
    mock: { text: "governed answer" }
  slow:
    kind: mock
    mock: { text: "slow answer", latency: 800ms }
models:
  demo-model:
    provider: demo
    price: { input: 100.0, output: 200.0 }
  other-model:
    provider: demo
  slow-model:
    provider: slow
routes:
  queued:
    targets: [slow-model]
    over_limit: { policy: queue, queue_timeout: 5s }
  queued-short:
    targets: [slow-model]
    over_limit: { policy: queue, queue_timeout: 200ms }
"""


@pytest.fixture
def pg():
    db = PgDatabase()
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def prefix():
    p = "sye2e-" + uuid.uuid4().hex[:10]
    try:
        yield p
    finally:
        delete_prefix(6379, p)


def start(name: str, workdir, config: str) -> Gateway:
    return Gateway(f"{name}-{uuid.uuid4().hex[:6]}", config, workdir).start()


def test_rpm_limit_is_exact_across_two_replicas(workdir, pg, prefix):
    config = governed_config(pg.url, MOCK, redis_url="redis://127.0.0.1:6379", prefix=prefix)
    a, b = start("replica-a", workdir, config), start("replica-b", workdir, config)
    try:
        key = Admin(a).create_key(name="batch", limits={"rpm": 10})["key"]
        wait_for_fresh_minute()
        with ThreadPoolExecutor(max_workers=30) as pool:
            results = list(pool.map(lambda i: chat(a if i % 2 else b, key), range(30)))
        ok = [r for r in results if r.status_code == 200]
        limited = [r for r in results if r.status_code == 429]
        assert len(ok) == 10 and len(limited) == 20, [r.status_code for r in results]
        assert {r.request.url.port for r in ok} == {a.port, b.port}, "both replicas served"
        for r in limited:
            assert int(r.headers["retry-after"]) >= 1
            assert r.headers["x-ratelimit-limit-requests"] == "10"
            assert r.headers["x-ratelimit-remaining-requests"] == "0"
            assert r.json()["error"]["code"] == "rate_limit_exceeded"
            assert "10 requests per minute" in r.json()["error"]["message"]
        remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in ok)
        assert remaining == list(range(10)), "every success says how many requests are left"
    finally:
        a.stop()
        b.stop()


def test_revocation_reaches_the_other_replica_within_two_seconds(workdir, pg, prefix):
    config = governed_config(pg.url, MOCK, redis_url="redis://127.0.0.1:6379", prefix=prefix)
    a, b = start("revoke-a", workdir, config), start("revoke-b", workdir, config)
    try:
        admin = Admin(a)
        created = admin.create_key(name="to-revoke")
        assert chat(b, created["key"]).status_code == 200  # b has it cached now
        assert chat(b, created["key"]).status_code == 200
        revoked_at = time.monotonic()
        assert admin.post(f"/admin/keys/{created['id']}/revoke").status_code == 200
        status = 200
        while time.monotonic() - revoked_at < 2.0:
            status = chat(b, created["key"]).status_code
            if status == 401:
                break
            time.sleep(0.05)
        assert status == 401, "replica b still accepts the key 2 s after it was revoked on replica a"
    finally:
        a.stop()
        b.stop()


def test_budget_holds_under_concurrency_and_names_itself(workdir, pg):
    gw = start("budget", workdir, governed_config(pg.url, MOCK))
    try:
        budget = 0.01
        created = Admin(gw).create_key(name="tight", limits={"budgets": [{"usd": budget, "period": "month"}]})
        max_tokens = 5
        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(lambda _: chat(gw, created["key"], max_tokens=max_tokens), range(20)))
        ok = [r for r in results if r.status_code == 200]
        refused = [r for r in results if r.status_code == 429]
        assert ok and refused and len(ok) + len(refused) == 20, [r.status_code for r in results]
        error = refused[0].json()["error"]
        assert error["code"] == "budget_exceeded"
        now = datetime.datetime.now(datetime.timezone.utc)
        next_month = (now.replace(day=1) + datetime.timedelta(days=32)).replace(day=1)
        assert f'key "{created["id"]}"' in error["message"] and "$0.01 monthly budget" in error["message"]
        assert f"resets at {next_month:%Y-%m-%d}T00:00:00Z" in error["message"]
        assert int(refused[0].headers["retry-after"]) > 0
        # The bound: each admitted request reserved its output (max_tokens at the output price)
        # and an estimate of its prompt; it can only have cost more than it reserved by the
        # prompt tokens the estimate missed, at most all of them.
        prompt_tokens = max(r.json()["usage"]["prompt_tokens"] for r in ok)
        bound = budget + len(ok) * prompt_tokens * 100.0 / 1e6
        spent = recorded_spend(pg, created["id"], len(results))
        assert spent <= bound + 1e-12, (spent, bound, len(ok))
        assert spent > budget / 2, "the budget was used, not refused from the start"
        usage = Admin(gw).get(f"/admin/keys/{created['id']}/usage").json()["usage"]["budgets"][0]
        assert usage["spent_usd"] == pytest.approx(spent, abs=1e-9)
        assert usage["remaining_usd"] == pytest.approx(max(0.0, budget - spent), abs=1e-9)
    finally:
        gw.stop()


def recorded_spend(pg: PgDatabase, key_id: str, expected: int) -> float:
    deadline = time.monotonic() + 10
    while True:
        rows = pg.query(f"SELECT count(*), coalesce(sum(cost_usd), 0) FROM requests WHERE key_id = '{key_id}'")
        count, total = int(rows[0][0]), float(rows[0][1])
        if count >= expected or time.monotonic() > deadline:
            assert count == expected, f"{count} records of {expected}"
            return total
        time.sleep(0.1)


def test_downgrade_serves_from_the_cheaper_target(workdir, upstreams, nonce):
    extra = f"""\
providers:
  up:
    kind: openai_compatible
    base_url: "{upstreams.openai.url}/v1"
    api_key: "{upstreams.openai_key}"
models:
  premium-up:
    provider: up
    upstream: premium-upstream-model
    price: {{ input: 5.0, output: 15.0 }}
  cheap-up:
    provider: up
    upstream: cheap-upstream-model
    price: {{ input: 0.1, output: 0.4 }}
routes:
  smart:
    targets: [premium-up]
    over_limit: {{ policy: downgrade, downgrade_to: cheap-up }}
"""
    gw = start("downgrade", workdir, governed_config(f"sqlite://{workdir}/downgrade-{nonce}.db", extra))
    try:
        key = Admin(gw).create_key(limits={"rpm": 2})["key"]
        wait_for_fresh_minute(10)
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)
        served = []
        for i in range(5):
            raw = client.chat.completions.with_raw_response.create(
                model="smart", messages=[{"role": "user", "content": f"{nonce} {i}"}]
            )
            served.append((raw.headers.get("x-switchyard-model"), raw.headers.get("x-switchyard-downgraded-from")))
        assert served == [("premium-up", None)] * 2 + [("cheap-up", "smart")] * 3
        assert len(upstreams.openai.matching('"model":"cheap-upstream-model"')) >= 3
        cheap = [r for r in upstreams.openai.matching(nonce) if r.body["model"] == "cheap-upstream-model"]
        premium = [r for r in upstreams.openai.matching(nonce) if r.body["model"] == "premium-upstream-model"]
        assert (len(premium), len(cheap)) == (2, 3)
    finally:
        gw.stop()


def test_queue_waits_for_capacity_within_its_deadline(workdir, nonce):
    gw = start("queue", workdir, governed_config(f"sqlite://{workdir}/queue-{nonce}.db", MOCK))
    try:
        key = Admin(gw).create_key(limits={"max_parallel": 1})["key"]
        with ThreadPoolExecutor(max_workers=2) as pool:
            both = list(pool.map(lambda _: chat(gw, key, model="queued"), range(2)))
        assert [r.status_code for r in both] == [200, 200], [r.text for r in both]
        with ThreadPoolExecutor(max_workers=2) as pool:
            short = list(pool.map(lambda _: chat(gw, key, model="queued-short"), range(2)))
        assert sorted(r.status_code for r in short) == [200, 429], [r.text for r in short]
        refused = next(r for r in short if r.status_code == 429)
        assert "1 in flight" in refused.json()["error"]["message"]
        health = httpx.get(gw.url + "/health/ready").json()["governance"]
        assert health["queued"] >= 1
    finally:
        gw.stop()


def test_model_access_expiry_revocation_and_admin_auth(workdir, nonce):
    gw = start("access", workdir, governed_config(f"sqlite://{workdir}/access-{nonce}.db", MOCK))
    try:
        admin = Admin(gw)
        limited = admin.create_key(models=["demo-model"])
        r = chat(gw, limited["key"], model="other-model")
        assert r.status_code == 403 and '"other-model"' in r.json()["error"]["message"]
        assert chat(gw, limited["key"]).status_code == 200

        now_ms = int(time.time() * 1000)
        expired = admin.create_key(expires_at_ms=now_ms - 1000)
        r = chat(gw, expired["key"])
        assert r.status_code == 401 and r.json()["error"]["code"] == "key_expired"
        short = admin.create_key(expires_in="1h")
        assert chat(gw, short["key"]).status_code == 200

        # The admin API refuses a virtual key, accepts the admin key.
        r = Admin(gw, key=limited["key"]).get("/admin/keys")
        assert r.status_code == 401, r.text
        assert admin.get("/admin/keys").status_code == 200
        assert chat(gw, "sk-sy-not-a-real-key").status_code == 401
        assert chat(gw, ADMIN_KEY).status_code == 401, "an admin key is not an API key"

        assert admin.post(f"/admin/keys/{limited['id']}/revoke").status_code == 200
        assert chat(gw, limited["key"]).status_code == 401

        audit = admin.get("/admin/audit").json()["data"]
        actions = [e["action"] for e in audit]
        assert actions[:1] == ["key.revoke"] and actions.count("key.create") == 3
        assert all(e["actor"] == "admin-0" for e in audit)
        assert limited["key"] not in str(audit) and short["key"] not in str(audit)
    finally:
        gw.stop()


def test_rotation_keeps_the_old_key_for_its_grace_period(workdir, nonce):
    gw = start("rotate", workdir, governed_config(f"sqlite://{workdir}/rotate-{nonce}.db", MOCK))
    try:
        admin = Admin(gw)
        old = admin.create_key(name="svc", limits={"rpm": 100})
        r = admin.post(f"/admin/keys/{old['id']}/rotate", {"grace": "1h"})
        assert r.status_code == 201, r.text
        new = r.json()
        assert new["key"] != old["key"] and new["limits"] == {"rpm": 100} and new["name"] == "svc"
        grace_end = new["replaces"]["expires_at_ms"] / 1000
        assert abs(grace_end - (time.time() + 3600)) < 120, "the old key lives one more hour"
        assert chat(gw, old["key"]).status_code == 200
        assert chat(gw, new["key"]).status_code == 200
        assert admin.get(f"/admin/keys/{old['id']}").json()["replaced_by"] == new["id"]
        # With no grace, the key that is rotated away stops at once.
        newest = admin.post(f"/admin/keys/{new['id']}/rotate", {"grace": "0s"}).json()
        assert chat(gw, new["key"]).status_code == 401
        assert chat(gw, newest["key"]).status_code == 200
    finally:
        gw.stop()


def test_keys_are_never_stored_in_clear_text(workdir, pg, nonce):
    sqlite_path = workdir / f"cleartext-{nonce}.db"
    for url in (f"sqlite://{sqlite_path}", pg.url):
        gw = start("cleartext", workdir, governed_config(url, MOCK))
        try:
            admin = Admin(gw)
            keys = [admin.create_key(name=f"k{i}")["key"] for i in range(3)]
            rotated = admin.post(f"/admin/keys/{admin.create_key()['id']}/rotate").json()["key"]
            keys.append(rotated)
            for k in keys:
                assert chat(gw, k).status_code == 200
        finally:
            gw.stop()
        dump = table_dump_sqlite(sqlite_path) if url.startswith("sqlite") else table_dump_pg(pg)
        assert "virtual_keys" in dump and "audit_log" in dump
        for k in keys:
            assert k not in dump and k[6:] not in dump and k[10:30] not in dump, f"a key is stored in clear text in {url}"
            assert k[:10] in dump, "the display prefix is kept"


def table_dump_sqlite(path) -> str:
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(f"{t}: {db.execute(f'SELECT * FROM {t}').fetchall()}" for t in tables)


def table_dump_pg(pg: PgDatabase) -> str:
    tables = [r[0] for r in pg.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    return "\n".join(f"{t}: {pg.query(f'SELECT t::text FROM {t} t')}" for t in tables)


def test_users_and_teams_hold_every_key_to_their_limits(workdir, nonce):
    gw = start("members", workdir, governed_config(f"sqlite://{workdir}/members-{nonce}.db", MOCK))
    try:
        admin = Admin(gw)
        assert admin.post("/admin/teams", {"id": "research", "limits": {"rpm": 3}}).status_code == 201
        assert admin.post("/admin/teams", {"id": "research"}).status_code == 409
        assert admin.post("/admin/users", {"id": "ada", "team_id": "research"}).status_code == 201
        assert admin.post("/admin/users", {"id": "bob", "team_id": "nope"}).status_code == 400
        k1 = admin.create_key(user_id="ada")["key"]
        k2 = admin.create_key(team_id="research")["key"]
        wait_for_fresh_minute(10)
        statuses = [chat(gw, k).status_code for k in (k1, k2, k1, k2)]
        assert statuses == [200, 200, 200, 429]
        r = chat(gw, k1)
        assert r.status_code == 429 and 'team "research"' in r.json()["error"]["message"]
        usage = admin.get("/admin/teams/research/usage").json()["usage"]
        assert usage["requests_per_minute"]["used"] >= 3 and usage["requests_per_minute"]["limit"] == 3
        # Raising the team's limit applies at once to every key of the team.
        r = httpx.patch(gw.url + "/admin/teams/research", json={"limits": {"rpm": 100}}, headers={"authorization": f"Bearer {ADMIN_KEY}"})
        assert r.status_code == 200, r.text
        assert chat(gw, k2).status_code == 200
    finally:
        gw.stop()


def test_budget_spend_survives_a_restart_on_in_process_counters(workdir, nonce):
    config = governed_config(f"sqlite://{workdir}/restart-{nonce}.db", MOCK)
    gw = start("restart", workdir, config)
    try:
        created = Admin(gw).create_key(limits={"budgets": [{"usd": 1.0, "period": "day"}]})
        for _ in range(3):
            assert chat(gw, created["key"], max_tokens=5).status_code == 200
        before = Admin(gw).get(f"/admin/keys/{created['id']}/usage").json()["usage"]["budgets"][0]["spent_usd"]
        assert before > 0
    finally:
        gw.stop()  # flushes the request log
    gw = Gateway(gw.name, config, workdir).start()
    try:
        assert chat(gw, created["key"], max_tokens=5).status_code == 200
        after = Admin(gw).get(f"/admin/keys/{created['id']}/usage").json()["usage"]["budgets"][0]["spent_usd"]
        assert after == pytest.approx(before * 4 / 3, rel=1e-6), "the day's spend before the restart still counts"
    finally:
        gw.stop()


def test_budget_alerts_post_to_the_webhook_once_per_threshold(workdir, nonce):
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    extra = MOCK + f'governance:\n  budget_alerts: {{ thresholds: [0.5, 5.0], webhook: "http://127.0.0.1:{server.server_port}/hook" }}\n'
    gw = start("alerts", workdir, governed_config(f"sqlite://{workdir}/alerts-{nonce}.db", extra))
    try:
        created = Admin(gw).create_key(limits={"budgets": [{"usd": 0.02, "period": "week"}]})
        statuses = []
        while 429 not in statuses and len(statuses) < 60:  # each request costs $0.0008
            statuses.append(chat(gw, created["key"], max_tokens=5).status_code)
        assert 200 in statuses and 429 in statuses, statuses
        deadline = time.monotonic() + 5
        while len(received) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # a duplicate would arrive now
        assert [e["threshold"] for e in received] == [0.5], received
        event = received[0]
        assert (event["event"], event["scope"], event["id"], event["period"]) == ("budget_threshold", "key", created["id"], "week")
        assert event["budget_usd"] == 0.02 and event["spent_usd"] >= 0.01
        assert "budget alert" in gw.log_text()
    finally:
        gw.stop()
        server.shutdown()


def test_keys_cli_creates_lists_rotates_and_revokes(workdir, nonce):
    import os
    import subprocess

    from gateway import gateway_bin

    gw = start("cli", workdir, governed_config(f"sqlite://{workdir}/cli-{nonce}.db", MOCK))
    env = {**os.environ, "SWITCHYARD_URL": gw.url, "SWITCHYARD_ADMIN_KEY": ADMIN_KEY}

    def keys(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(gateway_bin()), "keys", *args], capture_output=True, text=True, env=env, timeout=30)

    try:
        created = keys("create", "--name", "cli-key", "--models", "demo-model", "--rpm", "5", "--budget", "2.5/day")
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        assert key.startswith("sk-sy-") and "shown only once" in created.stderr
        assert chat(gw, key).status_code == 200
        listed = keys("list")
        assert listed.returncode == 0 and "cli-key" in listed.stdout and key not in listed.stdout
        key_id = next(line.split()[0] for line in listed.stdout.splitlines() if "cli-key" in line)
        stored = Admin(gw).get(f"/admin/keys/{key_id}").json()
        assert stored["limits"] == {"rpm": 5, "budgets": [{"usd": 2.5, "period": "day"}]}
        assert stored["models"] == ["demo-model"]

        rotated = keys("rotate", key_id, "--grace", "0s")
        assert rotated.returncode == 0, rotated.stderr
        new_key = rotated.stdout.strip()
        assert chat(gw, new_key).status_code == 200 and chat(gw, key).status_code == 401
        new_id = Admin(gw).get("/admin/keys").json()["data"][0]["id"]
        assert keys("revoke", new_id).returncode == 0
        assert chat(gw, new_key).status_code == 401

        wrong = subprocess.run(
            [str(gateway_bin()), "keys", "list"], capture_output=True, text=True, timeout=30,
            env={**env, "SWITCHYARD_ADMIN_KEY": "sk-wrong"},
        )
        assert wrong.returncode != 0 and "401" in wrong.stderr and "admin key" in wrong.stderr
    finally:
        gw.stop()


def test_a_model_quota_sends_the_route_to_its_next_target(workdir, nonce):
    extra = """\
providers:
  demo:
    kind: mock
    mock: { text: "answer" }
models:
  primary: { provider: demo }
  secondary: { provider: demo }
routes:
  smart:
    targets: [primary, secondary]
governance:
  models:
    primary: { rpm: 2 }
"""
    gw = start("quota", workdir, governed_config(f"sqlite://{workdir}/quota-{nonce}.db", extra))
    try:
        key = Admin(gw).create_key()["key"]
        wait_for_fresh_minute(10)
        served = [chat(gw, key, model="smart").headers.get("x-switchyard-model") for _ in range(4)]
        assert served == ["primary", "primary", "secondary", "secondary"]
        # Asked for by name, the model over its quota is refused, naming it.
        r = chat(gw, key, model="primary")
        assert r.status_code == 429, r.text
        assert 'model "primary" allows 2 requests per minute' in r.json()["error"]["message"]
        assert int(r.headers["retry-after"]) >= 1
    finally:
        gw.stop()


def test_feature_caps_apply_by_header_and_by_key_tag(workdir, nonce):
    extra = MOCK + "governance:\n  features:\n    summarizer: { rpm: 2 }\n"
    gw = start("feature", workdir, governed_config(f"sqlite://{workdir}/feature-{nonce}.db", extra))
    try:
        admin = Admin(gw)
        plain = admin.create_key()["key"]
        tagged = admin.create_key(tags=["feature:summarizer"])["key"]
        wait_for_fresh_minute(10)

        def by_header(key: str) -> httpx.Response:
            body = {"model": "demo-model", "messages": [{"role": "user", "content": "hi"}]}
            headers = {"authorization": f"Bearer {key}", "x-switchyard-feature": "summarizer"}
            return httpx.post(gw.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)

        assert by_header(plain).status_code == 200
        assert chat(gw, tagged).status_code == 200  # the tag names the feature
        r = by_header(plain)
        assert r.status_code == 429 and 'feature "summarizer" allows 2 requests per minute' in r.json()["error"]["message"]
        assert chat(gw, tagged).status_code == 429
        assert chat(gw, plain).status_code == 200, "without the feature, the key is not capped"
    finally:
        gw.stop()
