"""The web inbox's pages over the sample inbox: sign-in, sessions, CSRF, the brake, what each page shows."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from yarl import URL

from callkeeper.config.model import Secret
from callkeeper.inbox.model import InboxState
from callkeeper.records import Outcome, Reason
from callkeeper.web.app import SESSION_COOKIE
from callkeeper.web.sessions import BrakeRule, LoginBrake
from tests.unit.test_api_fakes import AUTH
from tests.web.conftest import Client, Site, client_for, csrf_of, sign_in
from tests.web.sample import PASSWORD, SampleInbox

JSON = {"Accept": "application/json"}


async def test_a_page_without_a_session_goes_to_the_sign_in(anonymous: Client) -> None:
    response = await anonymous.get("/", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login"
    response = await anonymous.get("/calls/sample-0?x=1", allow_redirects=False)
    assert URL(response.headers["Location"]).query["next"] == "/calls/sample-0?x=1"
    for path in ("/inbox/rows", "/events"):
        response = await anonymous.get(path, headers=JSON, allow_redirects=False)
        assert response.status == 401, path
    response = await anonymous.post("/calls/sample-0/handled", allow_redirects=False)
    assert response.status == 401


async def test_signing_in_sets_a_strict_http_only_cookie(anonymous: Client) -> None:
    token = await csrf_of(anonymous, "/login")
    response = await anonymous.post(
        "/login",
        data={"username": "alice", "password": PASSWORD, "csrf": token, "next": "/reports"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/reports"
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and not cookie["secure"]
    assert 0 < int(cookie["max-age"]) <= 12 * 3600
    page = await anonymous.get("/")
    assert page.status == 200
    assert "+1 415-555-0123" in await page.text()


async def test_the_cookie_is_secure_behind_a_tls_proxy(anonymous: Client) -> None:
    token = await csrf_of(anonymous, "/login")
    response = await anonymous.post(
        "/login",
        data={"username": "alice", "password": PASSWORD, "csrf": token},
        headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
    )
    assert response.cookies[SESSION_COOKIE]["secure"]


async def test_sign_in_refuses_wrong_passwords_unknown_users_and_missing_tokens(anonymous: Client) -> None:
    token = await csrf_of(anonymous, "/login")
    for user, password in (("alice", "wrong password"), ("nobody", PASSWORD), ("carol", PASSWORD)):
        response = await anonymous.post(
            "/login", data={"username": user, "password": password, "csrf": token}
        )
        assert response.status == 401, user
        assert "do not match" in await response.text()
    response = await anonymous.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status == 403
    assert SESSION_COOKIE not in response.cookies


async def test_after_repeated_wrong_passwords_even_the_right_one_waits(site: Site, anonymous: Client) -> None:
    site.brake = LoginBrake(per_name=BrakeRule(3, 600))
    async with client_for(site) as client:
        token = await csrf_of(client, "/login")
        for _ in range(3):
            await client.post("/login", data={"username": "alice", "password": "nope", "csrf": token})
        response = await client.post(
            "/login", data={"username": "alice", "password": PASSWORD, "csrf": token}
        )
        assert response.status == 429
        assert "Too many wrong passwords. Try again in 10 minutes." in await response.text()


async def test_only_a_local_page_is_a_target_after_signing_in(anonymous: Client) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        anonymous.session.cookie_jar.clear()
        token = await csrf_of(anonymous, "/login")
        response = await anonymous.post(
            "/login",
            data={"username": "alice", "password": PASSWORD, "csrf": token, "next": target},
            allow_redirects=False,
        )
        assert response.headers["Location"] == "/", target


async def test_the_inbox_lists_open_items_with_words(alice: Client) -> None:
    response = await alice.get("/")
    html = await response.text()
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert response.headers["Cache-Control"] == "no-store"
    assert "8 calls to call back" in html
    assert "Nobody answered" in html and "3 calls" in html and "Text sent" in html
    assert html.index("+1 415-555-0123") < html.index("+1 212-555-0188")  # newest first
    filtered = await (await alice.get("/?line=Support&number=917")).text()
    assert "+1 917-555-0107" in filtered and "+1 415-555-0123" not in filtered


async def test_bad_filters_are_refused_in_words(alice: Client) -> None:
    assert (await alice.get("/?line=Nowhere")).status == 404
    response = await alice.get("/?from=yesterday")
    assert response.status == 400
    assert "is not a date" in await response.text()
    assert (await alice.get("/?limit=0")).status == 400


async def test_a_post_without_the_csrf_token_is_refused(site: Site, alice: Client) -> None:
    response = await alice.post("/calls/sample-0/handled", data={"note": "x"})
    assert response.status == 403
    response = await alice.post(
        "/calls/sample-0/callback", headers={"X-CSRF-Token": "forged", **JSON}, allow_redirects=False
    )
    assert response.status == 403
    assert all(item.state is InboxState.OPEN for item in site.inbox.items)
    assert site.inbox.callbacks == []


async def test_handled_with_a_note_names_who(site: Site, alice: Client) -> None:
    token = await csrf_of(alice, "/calls/sample-0")
    response = await alice.post(
        "/calls/sample-0/handled",
        data={"note": "Booked for Tuesday"},
        headers={"X-CSRF-Token": token, **JSON},
    )
    assert response.status == 200
    assert (await response.json())["message"] == "+1 415-555-0123 is handled."
    item = await site.inbox.item("sample-0")
    assert item is not None and item.handled_by == "alice" and item.note == "Booked for Tuesday"
    assert "7 calls to call back" in await (await alice.get("/")).text()
    handled = await (await alice.get("/?state=handled")).text()
    assert "by alice" in handled and "Booked for Tuesday" in handled
    again = await alice.post("/calls/sample-0/handled", data={"csrf": token}, allow_redirects=False)
    assert again.status == 303  # a plain form goes back to the call; the inbox says who handled it


async def test_call_back_rings_the_signed_in_user(site: Site, alice: Client) -> None:
    token = await csrf_of(alice, "/")
    response = await alice.post("/calls/sample-1/callback", headers={"X-CSRF-Token": token, **JSON})
    assert response.status == 202
    assert "Ringing your phone now" in (await response.json())["message"]
    assert site.inbox.callbacks == [("sample-1", "alice")]


async def test_inbox_lines_limit_what_a_user_sees(alice: Client, site: Site) -> None:
    async with client_for(site) as bob:
        await sign_in(bob, "bob")
        html = await (await bob.get("/")).text()
        assert "+1 212-555-0188" in html and "+1 415-555-0123" not in html
        assert (await bob.get("/calls/sample-0")).status == 404
        assert (await bob.get("/calls/sample-0/voicemail")).status == 404
        assert (await bob.get("/?line=Sales")).status == 404
        assert (await bob.get("/reports?line=Sales")).status == 404


async def test_the_call_page_shows_journey_voicemail_texts_and_history(alice: Client) -> None:
    html = await (await alice.get("/calls/sample-0")).text()
    assert "Phones of sales rang" in html and "Nobody answered" in html
    assert 'src="/calls/sample-0/voicemail"' in html
    assert "Webhook" in html and "Sent" in html
    assert (await alice.get("/calls/unknown-call")).status == 404


async def test_voicemail_plays_and_a_deleted_message_says_so(site: Site, alice: Client) -> None:
    response = await alice.get("/calls/sample-0/voicemail", headers={"Range": "bytes=0-99"})
    assert response.status == 206
    assert response.headers["Content-Type"] == "audio/wav"
    assert len(await response.read()) == 100
    site.inbox.gone.add("sample-0")
    response = await alice.get("/calls/sample-0/voicemail")
    assert response.status == 410
    assert "deleted meanwhile" in await response.text()


async def test_live_events_report_every_change(site: Site, alice: Client) -> None:
    response = await alice.get("/events", headers={"Accept": "text/event-stream"})
    assert response.headers["Content-Type"] == "text/event-stream"
    first = await response.content.readuntil(b"\n\n")
    assert first == b"retry: 1000\nevent: version\ndata: 1\n\n"
    site.inbox.add_missed_call("+14155550999")
    async with asyncio.timeout(2):
        assert await response.content.readuntil(b"\n\n") == b"event: version\ndata: 2\n\n"
    response.close()
    rows = await (await alice.get("/inbox/rows")).text()
    assert "+1 415-555-0999" in rows and "9 calls to call back" in rows


async def test_reports_show_the_chart_the_table_and_the_csv(alice: Client) -> None:
    html = await (await alice.get("/reports?from=2026-11-30&to=2026-12-04")).text()
    assert '<svg class="chart"' in html and "Mon 30 Nov" in html
    response = await alice.get("/reports/calls.csv")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    lines = (await response.text()).splitlines()
    assert lines[0].startswith("id,direction,line,caller")
    assert len(lines) == 1 + 8 and all("sample-" in line for line in lines[1:])
    assert (await alice.get("/reports?from=2026-12-04&to=2026-11-30")).status == 400


async def test_signing_out_ends_the_session(alice: Client) -> None:
    token = await csrf_of(alice, "/")
    response = await alice.post("/logout", data={"csrf": token}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login?signed_out=1"
    assert (await alice.get("/", allow_redirects=False)).status == 303


async def test_a_new_password_ends_the_old_sessions(site: Site, alice: Client) -> None:
    alice_user = site.config.users["alice"]
    users = {**site.config.users, "alice": replace(alice_user, web_password_hash=Secret("scrypt$other"))}
    site.config = replace(site.config, users=users)
    assert (await alice.get("/", allow_redirects=False)).status == 303


async def test_the_api_still_wants_its_bearer_token(alice: Client) -> None:
    response = await alice.get("/api/v1/calls")
    assert response.status == 401
    assert (await response.json())["error"] == "authentication required"
    assert (await alice.get("/api/v1/calls", headers=AUTH)).status == 200


async def test_static_files_are_cached_when_versioned(anonymous: Client) -> None:
    html = await (await anonymous.get("/login")).text()
    assert "/static/app.css?v=" in html
    response = await anonymous.get("/static/app.css?v=1")
    assert response.headers["Cache-Control"] == "public, max-age=604800, immutable"
    assert (await anonymous.get("/static/nothing.css")).status == 404


async def test_a_call_without_an_item_shows_its_journey(site: Site, alice: Client) -> None:
    earlier = site.inbox.records["sample-0"]
    site.inbox.records["answered-1"] = replace(
        earlier, id="answered-1", outcome=Outcome.ANSWERED, reason=Reason.ANSWERED, answered_by="carol"
    )
    html = await (await alice.get("/calls/answered-1")).text()
    assert "This call is not in the inbox: it was answered." in html
    assert "Phones of sales rang" in html and "Call back" not in html
    async with client_for(site) as bob:
        await sign_in(bob, "bob")
        assert (await bob.get("/calls/answered-1")).status == 404


async def test_attempts_sent_all_at_once_meet_the_brake(site: Site) -> None:
    site.brake = LoginBrake(per_name=BrakeRule(3, 600))
    async with client_for(site) as client:
        token = await csrf_of(client, "/login")
        attempts = [
            client.post("/login", data={"username": "alice", "password": f"guess {n}", "csrf": token})
            for n in range(10)
        ]
        statuses = sorted(response.status for response in await asyncio.gather(*attempts))
        assert statuses == [401] * 3 + [429] * 7


async def test_a_failed_sign_in_keeps_the_page_to_go_to(anonymous: Client) -> None:
    token = await csrf_of(anonymous, "/login?next=/reports")
    response = await anonymous.post(
        "/login", data={"username": "alice", "password": "wrong", "csrf": token, "next": "/reports"}
    )
    assert 'name="next" value="/reports"' in await response.text()


async def test_a_long_inbox_shows_the_newest_hundred_then_more(alice: Client, site: Site) -> None:
    site.inbox.items.extend(SampleInbox(extra=150).items[8:])
    html = await (await alice.get("/")).text()
    assert html.count("<tr data-key=") == 100
    assert "100+ calls to call back" in html and 'href="/?limit=200"' in html
    more = await (await alice.get("/?limit=200")).text()
    assert more.count("<tr data-key=") == 158 and "Show older calls" not in more
