"""The web console at /ui, end to end in Debian's chromium (headless, driven by Playwright for
Python) against the real binary with seeded traffic: the finance page's team totals equal the
spend report's; the reliability page shows the fallback; a key created in the console works on
/v1/chat/completions and stops within 2 s of being revoked there, and the audit log lists both;
signed out, every data endpoint answers 401 and a change without the CSRF token 403; a replay
from the request explorer is a second record linked to the first, both answers shown; and a
screenshot of every page at 1280×800 lands in target/console-screenshots/."""

from __future__ import annotations

import csv
import time
import uuid

import httpx
import openai
import pytest

from console_env import (
    FEATURES,
    SCREENSHOTS,
    TEAMS,
    VIEWER_KEY,
    chromium_path,
    console_config,
    screenshot,
    seed,
)
from gateway import Gateway
from governance_env import ADMIN_KEY, Admin

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - tests/requirements.txt installs it
    sync_playwright = None

DATA_ENDPOINTS = (
    "/ui/api/session",
    "/admin/reports/usage",
    "/admin/reports/latency",
    "/admin/reports/events",
    "/admin/requests",
    "/admin/budgets",
    "/admin/keys",
    "/admin/users",
    "/admin/teams",
    "/admin/audit",
    "/admin/health",
)


@pytest.fixture(scope="module")
def console(workdir):
    db = workdir / f"console-{uuid.uuid4().hex[:8]}.db"
    gw = Gateway(f"console-{uuid.uuid4().hex[:6]}", console_config(f"sqlite://{db}"), workdir).start()
    try:
        yield gw, seed(gw)
    finally:
        gw.stop()


@pytest.fixture(scope="module")
def browser():
    if sync_playwright is None:
        pytest.fail("playwright is not installed: pip install -r tests/requirements.txt", pytrace=False)
    path = chromium_path()
    if path is None:
        pytest.fail("chromium not found: apt-get install -y chromium (.ci/run installs it)", pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


def open_page(browser, gw: Gateway, key: str | None = ADMIN_KEY):
    """A fresh browser context (no cookies) at 1280×800, signed in through the form with `key`."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "401" not in m.text else None)
    page.goto(gw.url + "/ui")
    page.wait_for_selector("[data-testid=signin-key]")
    if key:
        page.fill("[data-testid=signin-key]", key)
        page.click("[data-testid=signin-submit]")
        page.wait_for_selector("[data-testid=actor]")
    page.errors = errors
    return page


@pytest.fixture
def admin_page(browser, console):
    page = open_page(browser, console[0])
    yield page
    page.context.close()


def settled(page, route: str, ready: str) -> None:
    """Goes to #/route and waits until `ready` shows and nothing on the page is still loading."""
    page.evaluate(f"window.location.hash = '#/{route}'")
    page.wait_for_selector(ready)
    page.wait_for_function("() => !document.querySelector('#content [data-state=loading]')")
    # Charts draw on the next animation frame.
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def cells(page, table: str, col: str) -> list:
    return page.eval_on_selector_all(
        f"[data-testid={table}] tbody tr:not(.total)",
        f"""rows => rows.map(r => {{
            const c = r.querySelector('td[data-col={col}]');
            return c ? {{text: c.innerText, value: c.dataset.value ?? null, row: r.innerText}} : null;
        }})""",
    )


def money(text: str) -> float:
    return float(text.replace("$", "").replace(",", ""))


# ---------------------------------------------------------------------------------------------


def test_finance_page_team_totals_equal_the_spend_report(admin_page, console):
    gw, _ = console
    page = admin_page
    settled(page, "finance", "[data-testid=spend-table] tbody tr")
    page.click("[data-testid=spend-dim] button[data-value=team]")
    teams = [c["text"] for c in cells(page, "spend-table", "team")]
    costs = cells(page, "spend-table", "cost_usd")
    shown = dict(zip(teams, costs))

    report = Admin(gw).get("/admin/reports/usage?group_by=team").json()
    expected = {row["team"]: row["cost_usd"] for row in report["rows"] if row["team"]}
    assert set(expected) == set(TEAMS)
    for team in TEAMS:
        assert float(shown[team]["value"]) == pytest.approx(expected[team], rel=1e-9), team
        # What a person reads: the same figure, rounded for display.
        assert money(shown[team]["text"]) == pytest.approx(expected[team], rel=0.01), shown[team]
    total = page.inner_text("[data-testid=spend-table] tr.total td[data-col=cost_usd]")
    assert money(total) == pytest.approx(report["total"]["cost_usd"], rel=0.01)
    assert page.inner_text("[data-kpi=spend] .value") == total
    # The CSV export under the chart carries the same figures, unrounded.
    with page.expect_download() as download:
        page.click("[data-testid=csv-spend-by-team]")
    exported = list(csv.DictReader(open(download.value.path(), encoding="utf-8")))
    for team in TEAMS:
        row = next(r for r in exported if r["Team"] == team)
        assert float(row["Spend"]) == pytest.approx(expected[team], rel=1e-9)
    # The feature and model stackings are one click away and name what was seeded.
    page.click("[data-testid=spend-dim] button[data-value=feature]")
    page.wait_for_selector("[data-testid=spend-table] td[data-col=feature]")
    assert set(FEATURES) <= {c["text"] for c in cells(page, "spend-table", "feature")}
    assert not page.errors, page.errors


def test_reliability_page_shows_the_fallback(admin_page, console):
    page = admin_page
    settled(page, "reliability", "[data-testid=reliability-table] tbody tr")
    models = [c["text"] for c in cells(page, "reliability-table", "model")]
    providers = [c["text"] for c in cells(page, "reliability-table", "provider")]
    values = [float(c["value"]) for c in cells(page, "reliability-table", "fallbacks")]
    fallbacks = dict(zip(zip(providers, models), values))
    # The fallback route's request: broken-model failed, demo-model answered.
    assert fallbacks.get(("demo", "demo-model"), 0) >= 1, fallbacks
    errors = page.inner_text("[data-testid=attempt-errors]")
    assert "broken-model" in errors, errors
    assert page.inner_text("[data-kpi=fallback-rate] .value") != "0.0%"
    # Live breaker state of each deployment, from /admin/health.
    assert "broken-model" in page.inner_text("[data-testid=breakers]")
    assert not page.errors, page.errors


def test_a_key_created_in_the_console_works_and_stops_within_2s_of_its_revocation(admin_page, console):
    gw, _ = console
    page = admin_page
    name = "console-" + uuid.uuid4().hex[:6]
    settled(page, "keys", "[data-testid=keys-table]")
    page.click("[data-testid=create-key]")
    page.fill("[data-testid=key-form] [data-field=name]", name)
    page.select_option("[data-testid=key-form] [data-field=team_id]", "support")
    page.fill("[data-testid=key-form] [data-field=rpm]", "600")
    page.click("[data-testid=key-form] [data-testid=form-submit]")
    key = page.inner_text("[data-testid=new-key-secret]").strip()
    assert key.startswith("sk-"), key
    page.click("[data-testid=new-key-done]")
    page.wait_for_selector("[data-testid=new-key]", state="detached")
    assert key not in page.content(), "the key must not stay on the page once the dialog closed"

    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=10)
    answer = client.chat.completions.create(model="demo-model", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content

    row = page.locator("[data-testid=keys-table] tbody tr", has_text=name)
    key_id = row.locator("td[data-col=name] .sub").inner_text().strip()
    row.locator("[data-action=revoke]").click()
    with page.expect_response(lambda r: r.url.endswith(f"/admin/keys/{key_id}/revoke")) as revoked:
        page.click("[data-testid=confirm]")
    assert revoked.value.status == 200
    start = time.monotonic()
    while True:
        try:
            client.chat.completions.create(model="demo-model", messages=[{"role": "user", "content": "hi"}])
        except openai.AuthenticationError:
            break
        assert time.monotonic() - start < 2.0, "the revoked key still works after 2 s"
        time.sleep(0.05)
    assert time.monotonic() - start < 2.0

    settled(page, "keys/audit", "[data-testid=audit-table] tbody tr")
    audit = [c["row"] for c in cells(page, "audit-table", "action")]
    mine = [line for line in audit if key_id in line]
    assert any("key.create" in line for line in mine), audit[:5]
    assert any("key.revoke" in line for line in mine), audit[:5]
    assert key not in page.content()
    assert not page.errors, page.errors


def test_signed_out_every_data_endpoint_refuses_and_a_change_needs_the_csrf_token(browser, console):
    gw, seeded = console
    with httpx.Client(base_url=gw.url, timeout=10) as anon:
        shell = anon.get("/ui")
        assert shell.status_code == 200 and "text/html" in shell.headers["content-type"]
        assert "default-src 'self'" in shell.headers["content-security-policy"]
        assert shell.headers["x-frame-options"].upper() == "DENY"
        assert shell.headers["x-content-type-options"] == "nosniff"
        assert "sk-" not in shell.text and "cost_usd" not in shell.text
        for path in DATA_ENDPOINTS:
            assert anon.get(path).status_code == 401, path
        assert anon.post("/admin/keys", json={"name": "sneaky"}).status_code == 401
        assert anon.post("/ui/api/session", json={"key": "sk-not-a-key"}).status_code == 401

    with httpx.Client(base_url=gw.url, timeout=10) as signed:
        r = signed.post("/ui/api/session", json={"key": ADMIN_KEY})
        assert r.status_code == 200, r.text
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=" in cookie
        csrf = r.json()["csrf"]
        assert r.json()["role"] == "admin"
        assert signed.get("/admin/keys").status_code == 200
        refused = signed.post("/admin/teams", json={"id": "no-csrf"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_token_invalid", refused.text
        wrong = signed.post("/admin/teams", json={"id": "no-csrf"}, headers={"x-csrf-token": csrf + "x"})
        assert wrong.status_code == 403
        made = signed.post("/admin/teams", json={"id": "with-csrf-" + uuid.uuid4().hex[:4]}, headers={"x-csrf-token": csrf})
        assert made.status_code == 201, made.text
        assert signed.delete("/ui/api/session", headers={"x-csrf-token": csrf}).status_code == 204
        assert signed.get("/admin/keys").status_code == 401

    with httpx.Client(base_url=gw.url, timeout=10) as viewer:
        r = viewer.post("/ui/api/session", json={"key": VIEWER_KEY})
        assert r.status_code == 200 and r.json()["role"] == "viewer", r.text
        assert viewer.get("/admin/reports/usage").status_code == 200
        denied = viewer.post("/admin/teams", json={"id": "viewer-team"}, headers={"x-csrf-token": r.json()["csrf"]})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "read_only", denied.text

    # In the browser: signed out, every page's deep link shows the sign-in form and no data.
    page = open_page(browser, gw, key=None)
    for route in ("finance", "reliability", "quality", "keys", "keys/audit", "requests", f"requests/{seeded.kept}"):
        page.goto(f"{gw.url}/ui#/{route}")
        page.reload()
        page.wait_for_selector("[data-testid=signin]")
        assert page.locator("table, [data-testid=actor]").count() == 0, route
    page.fill("[data-testid=signin-key]", "sk-wrong")
    page.click("[data-testid=signin-submit]")
    page.wait_for_selector("[data-testid=signin-message].error")
    page.context.close()
    # A viewer sees the keys but no button that changes them.
    page = open_page(browser, gw, key=VIEWER_KEY)
    settled(page, "keys", "[data-testid=keys-table]")
    assert page.locator("[data-testid=create-key]").count() == 0
    assert page.locator("[data-action=revoke]").count() == 0
    page.context.close()


def test_replay_from_the_explorer_is_a_second_record_linked_to_the_first(admin_page, console):
    gw, seeded = console
    page = admin_page
    settled(page, "requests?route=kept", "[data-testid=requests-table] tbody tr")
    ids = page.eval_on_selector_all("[data-testid=requests-table] tbody tr", "rows => rows.length")
    assert ids >= 1
    page.locator("[data-testid=requests-table] tbody tr").last.click()
    page.wait_for_selector("[data-testid=request-id]")
    assert page.inner_text("[data-testid=request-id]") == seeded.kept
    page.fill("[data-testid=replay-model]", "cheap-model")
    page.click("[data-testid=replay-submit]")
    page.wait_for_selector("[data-testid=replay-new] [data-testid=answer]")
    original = page.inner_text("[data-testid=replay-original] [data-testid=answer]")
    replayed = page.inner_text("[data-testid=replay-new] [data-testid=answer]")
    assert "demo model" in original, original
    assert "cheap model" in replayed, replayed
    new_id = page.inner_text("[data-testid=replay-new] .card-head a").strip()
    assert new_id and new_id != seeded.kept

    admin = Admin(gw)
    deadline = time.monotonic() + 10
    while (r := admin.get(f"/admin/requests/{new_id}")).status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert r.status_code == 200, r.text
    assert r.json()["replay_of"] == seeded.kept
    assert r.json()["model"] == "cheap-model"
    original_record = admin.get(f"/admin/requests/{seeded.kept}").json()
    assert new_id in [x if isinstance(x, str) else x.get("request_id") for x in original_record["replays"]]
    # The replay's own page links back to the original.
    page.click("[data-testid=replay-new] .card-head a")
    page.wait_for_selector("[data-testid=replay-of]")
    assert page.inner_text("[data-testid=replay-of]") == seeded.kept
    assert not page.errors, page.errors


def test_screenshots_of_every_page_at_1280x800(browser, console):
    gw, seeded = console
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = open_page(browser, gw, key=None)
    screenshot(page, "01-sign-in")
    page.fill("[data-testid=signin-key]", ADMIN_KEY)
    page.click("[data-testid=signin-submit]")
    page.wait_for_selector("[data-testid=actor]")
    shots = [
        ("02-finance", "finance", "[data-testid=spend-table]"),
        ("03-reliability", "reliability", "[data-testid=reliability-table]"),
        ("04-quality", "quality", "[data-testid=guardrails]"),
        ("05-keys", "keys", "[data-testid=keys-table]"),
        ("06-teams", "keys/teams", "[data-testid=teams-table]"),
        ("07-users", "keys/users", "[data-testid=users]"),
        ("08-audit", "keys/audit", "[data-testid=audit-table]"),
        ("09-requests", "requests", "[data-testid=requests-table]"),
        ("10-request-fallback", f"requests/{seeded.fallback}", "[data-testid=path] .hop"),
        ("11-request-blocked", f"requests/{seeded.blocked}", "[data-testid=request-id]"),
        ("12-requests-empty", "requests?team=nobody", "[data-state=empty]"),
    ]
    problems = []
    for name, route, ready in shots:
        settled(page, route, ready)
        path = screenshot(page, name)
        assert path.stat().st_size > 10_000
        overflow = page.evaluate(
            """() => {
                const out = [];
                if (document.documentElement.scrollWidth > window.innerWidth) out.push('page is wider than the window');
                for (const el of document.querySelectorAll('.kpi .value, .kpi .label, .table-wrap, .card-head h2'))
                    if (el.scrollWidth > el.clientWidth + 1) out.push((el.className || el.tagName) + ': ' + el.innerText.slice(0, 40));
                return out;
            }"""
        )
        problems += [f"{name}: {o}" for o in overflow]
    assert not problems, f"text that does not fit at 1280×800 (see {SCREENSHOTS}): {problems}"
    assert "Clear a filter" in page.inner_text("[data-state=empty]")
    # A range with no traffic: every chart says what to do instead of drawing nothing.
    page.evaluate(
        "sessionStorage.setItem('switchyard.console.range',"
        " JSON.stringify({preset: 'custom', from: Date.UTC(2020, 0, 1), to: Date.UTC(2020, 0, 8)}))"
    )
    page.reload()
    # The app has booted (session read, the page of the old hash drawn) before it is sent on.
    page.wait_for_selector("[data-testid=actor]")
    page.wait_for_function("() => !document.querySelector('#content [data-state=loading]')")
    settled(page, "finance", "[data-testid=spend] [data-state=empty]")
    screenshot(page, "13-finance-empty-range")
    assert "widen the range" in page.inner_text("[data-testid=spend] [data-state=empty]")
    assert not page.errors, page.errors
    page.context.close()
