"""The web console's test bed: a gateway with an SQLite database, an admin and a viewer key, mock
providers (one that always fails, for a fallback), a route that keeps bodies (for replay), a
blocking guardrail; seeded traffic from three teams and two features with feedback; and Debian's
chromium driven headless through Playwright for Python (no browser download)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gateway import ROOT, Gateway
from governance_env import ADMIN_KEY, Admin

VIEWER_KEY = "sk-viewer-e2e-console"
SCREENSHOTS = ROOT / "target" / "console-screenshots"
TEAMS = ("search", "billing", "support")
FEATURES = ("chat", "summarize")
BLOCKED_WORD = "project-nightingale"

MODELS = f"""\
guardrails:
  apply: [banned]
  define:
    banned: {{ type: patterns, keywords: [{BLOCKED_WORD}], action: block }}
providers:
  demo:
    kind: mock
    mock: {{ text: "The demo model says the sky is blue." }}
  cheap:
    kind: mock
    mock: {{ text: "The cheap model says it is blue too." }}
  broken:
    kind: mock
    mock: {{ failure_rate: 1.0, failure_status: 500 }}
models:
  demo-model:
    provider: demo
    price: {{ input: 2.0, output: 8.0 }}
  cheap-model:
    provider: cheap
    price: {{ input: 0.5, output: 1.0 }}
  broken-model:
    provider: broken
routes:
  fb:
    targets: [broken-model, demo-model]
  kept:
    targets: [demo-model]
    record_bodies: true
"""


def console_config(database_url: str) -> str:
    return (
        f'server:\n  listen: "127.0.0.1:__PORT__"\n'
        f'auth:\n  admin_keys: ["{ADMIN_KEY}"]\n  viewer_keys: ["{VIEWER_KEY}"]\n'
        f'database:\n  url: "{database_url}"\n'
        f"{MODELS}"
    )


@dataclass
class Seeded:
    """What the seeding sent: request ids by kind, and each team's key."""

    keys: dict[str, str] = field(default_factory=dict)
    ok: list[str] = field(default_factory=list)
    fallback: str = ""
    blocked: str = ""
    kept: str = ""
    rated: list[str] = field(default_factory=list)


def chat(gw: Gateway, key: str, model: str, text: str = "what colour is the sky?", feature: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}
    if feature:
        headers["x-switchyard-feature"] = feature
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return httpx.post(gw.url + "/v1/chat/completions", json=body, headers=headers, timeout=15)


def seed(gw: Gateway) -> Seeded:
    """Three teams, two features, a fallback, a guardrail block, a request with its body kept,
    and feedback on three answers; returns once every record is in the log."""
    admin = Admin(gw)
    out = Seeded()
    for team in TEAMS:
        # A monthly cap on one team, far above what the seeding spends, for the budgets card.
        limits = {"budgets": [{"usd": 0.01, "period": "month"}]} if team == "search" else {}
        assert admin.post("/admin/teams", {"id": team, "name": team.title(), "limits": limits}).status_code == 201
    assert admin.post("/admin/users", {"id": "alice@example.com", "name": "Alice", "team_id": "billing"}).status_code == 201
    for team in TEAMS:
        user = {"user_id": "alice@example.com"} if team == "billing" else {}
        out.keys[team] = admin.create_key(name=f"{team}-app", team_id=team, **user)["key"]
    plan = [
        ("search", "demo-model", "chat"),
        ("search", "demo-model", "chat"),
        ("search", "cheap-model", "summarize"),
        ("billing", "demo-model", "summarize"),
        ("billing", "cheap-model", "summarize"),
        ("support", "cheap-model", "chat"),
    ]
    for team, model, feature in plan:
        r = chat(gw, out.keys[team], model, feature=feature)
        assert r.status_code == 200, r.text
        out.ok.append(r.headers["x-request-id"])
    r = chat(gw, out.keys["support"], "fb", feature="chat")
    assert r.status_code == 200, r.text
    out.fallback = r.headers["x-request-id"]
    r = chat(gw, out.keys["billing"], "demo-model", text=f"tell me about {BLOCKED_WORD}", feature="chat")
    assert r.status_code == 400 and "guardrail" in r.text, r.text
    out.blocked = r.headers["x-request-id"]
    r = chat(gw, out.keys["search"], "kept", text="What colour is the sky? One line.", feature="chat")
    assert r.status_code == 200, r.text
    out.kept = r.headers["x-request-id"]
    for (team, score), rid in zip((("search", 5), ("search", 4), ("billing", 2)), (out.ok[0], out.ok[1], out.ok[3])):
        fb = httpx.post(
            gw.url + "/v1/feedback",
            json={"request_id": rid, "score": score, "comment": "seeded"},
            headers={"authorization": f"Bearer {out.keys[team]}"},
            timeout=10,
        )
        assert fb.status_code in (200, 201, 204), fb.text
        out.rated.append(rid)
    wait_for_records(gw, len(plan) + 3)
    return out


def wait_for_records(gw: Gateway, count: int, timeout: float = 15) -> None:
    """The recorder writes in batches: wait until the usage report counts `count` requests and
    every rating."""
    admin = Admin(gw)
    deadline = time.monotonic() + timeout
    while True:
        total = admin.get("/admin/reports/usage").json()["total"]
        if (total["requests"] >= count and total["feedback_count"] >= 3) or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
