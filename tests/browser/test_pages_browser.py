"""The console and the operator pages in a real browser against a live server."""
from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.realtime.conftest import QUESTION, api, business, fb_message, post_webhook, wait_until

pytestmark = pytest.mark.timeout(180)

PASSWORD = "correct horse battery"


def _live(make_stack):
    stack = make_stack()
    server = stack.server().wait_ready()
    return stack, server


def _handoff_task(base_url: str, user: dict) -> dict:
    """The hand-off task the AI opened (the question is one it cannot answer)."""
    with api(base_url) as c:
        return wait_until(lambda: c.get("/api/tasks", headers=user["headers"]).json()["items"],
                          20, "the hand-off task")[0]


def _first_conversation(base_url: str, user: dict) -> dict:
    with api(base_url) as c:
        return wait_until(lambda: c.get("/api/conversations", headers=user["headers"])
                          .json()["items"], 20, "the webhook's conversation")[0]


def test_sign_in_see_a_message_live_reply_and_take_the_task(make_stack, tabs):
    stack, server = _live(make_stack)
    shop = business(server.base_url, stack.graph, "Nora's Cakes")
    psid = "7" + uuid.uuid4().hex[:15].translate(str.maketrans("abcdef", "123456"))
    assert post_webhook(server.base_url, fb_message(shop["page_id"], "Can I pay with goats?",
                                                    psid)).status_code == 200
    conv = _first_conversation(server.base_url, shop)
    _handoff_task(server.base_url, shop)

    tab = tabs(server.base_url, viewport={"width": 1100, "height": 800})
    tab.sign_in(shop["user"]["email"])
    page = tab.page
    row = page.locator(f'[data-conversation-id="{conv["id"]}"]')
    row.wait_for()
    assert "pending" in row.inner_text()  # handed off to a human, who is told in the preview
    assert "will get back to you" in row.inner_text()
    tab.screenshot("inbox.png")
    # a new customer writes: the inbox shows it without a reload, and once the AI has answered
    # the row's preview is the answer (the list follows every event, not only the first)
    other = "7" + uuid.uuid4().hex[:15].translate(str.maketrans("abcdef", "123456"))
    post_webhook(server.base_url, fb_message(shop["page_id"], "Is the shop open today?", other))
    expect(page.locator("#inbox-list .conversation")).to_have_count(2, timeout=20_000)
    with api(server.base_url) as c:
        answered = wait_until(lambda: [
            x for x in c.get("/api/conversations", headers=shop["headers"]).json()["items"]
            if x["contact"]["platform_user_id"] == other
            and x["last_message_preview"] not in (None, "Is the shop open today?")], 20,
            "the AI's answer to the new customer")[0]
    expect(page.locator(f'[data-conversation-id="{answered["id"]}"] .preview')).to_have_text(
        answered["last_message_preview"], timeout=20_000)

    row.locator("a").click()
    page.wait_for_url(f"**/app/conversations/{conv['id']}")
    page.locator("body[data-live='connected']").wait_for(state="attached")
    # the customer writes again: the message appears without a reload
    post_webhook(server.base_url, fb_message(shop["page_id"], "Or with chickens?", psid))
    page.locator("#thread .msg.inbound", has_text="Or with chickens?").wait_for()

    before = len(stack.replies())
    page.get_by_label("Reply").fill("We only take money, sorry!")
    page.get_by_role("button", name="Send").click()
    sent = page.locator("#thread .msg.outbound", has_text="We only take money, sorry!")
    sent.wait_for()
    sent.locator("[data-status]", has_text="sent").wait_for()
    wait_until(lambda: len(stack.replies()) > before, 10, "the reply at the fake Graph")
    out = stack.replies()[-1].json
    assert out["recipient"] == {"id": psid}
    assert out["message"]["text"] == "We only take money, sorry!"
    # the box is ready for the next one once the send's answer is in (the live event showing
    # the reply as sent may come first)
    expect(page.get_by_label("Reply")).to_have_value("", timeout=10_000)
    tab.screenshot("conversation.png")

    # the AI handed the goats question off: a task waits for a human
    page.get_by_role("link", name="Tasks").click()
    task = page.locator(".task", has_text=f"Reply to {psid}")
    task.get_by_role("button", name="Take").click()
    page.locator(".flash", has_text="Task in progress.").wait_for()
    taken = page.locator(".task", has_text=f"Reply to {psid}")
    taken.get_by_role("button", name="Resolve").wait_for()
    with api(server.base_url) as c:
        [t] = [t for t in c.get("/api/tasks", headers=shop["headers"]).json()["items"]
               if t["conversation_id"] == conv["id"]]
    assert t["status"] == "in_progress" and t["assignee_id"] == shop["user"]["id"]
    assert tab.errors == []


def test_dashboard_draws_the_charts(make_stack, tabs):
    stack, server = _live(make_stack)
    shop = business(server.base_url, stack.graph, "Chart Shop")
    for text in ("Hello", "Are you open?", "Thanks"):
        post_webhook(server.base_url, fb_message(shop["page_id"], text))
    with api(server.base_url) as c:
        wait_until(lambda: c.get("/api/analytics/summary", headers=shop["headers"])
                   .json()["totals"]["inbound"] == 3, 20, "three messages in the analytics")
    tab = tabs(server.base_url, viewport={"width": 1100, "height": 800})
    tab.sign_in(shop["user"]["email"])
    tab.page.get_by_role("link", name="Analytics").click()
    tab.page.wait_for_selector("canvas#messages-chart[data-drawn='true']")
    assert tab.page.locator("#stat-in").inner_text() == "3"
    tab.screenshot("dashboard.png")
    # import a knowledge file: the progress bar runs to the end and says what was imported
    tab.page.get_by_role("link", name="Knowledge").click()
    tab.page.get_by_label("File (.md").set_input_files(files=[{
        "name": "hours.md", "mimeType": "text/markdown",
        "buffer": b"# Opening hours\n\nWe are open Monday to Friday, 9 to 6.\n"}])
    tab.page.get_by_role("button", name="Import").click()
    tab.page.locator("form[data-upload][data-done='true']").wait_for(state="attached")
    assert tab.page.locator("#import-progress").get_attribute("value") is not None
    assert tab.page.eval_on_selector("#import-progress", "p => p.value") == 100
    assert "Imported 1 document(s) from hours.md." in tab.page.locator("#import-state").inner_text()
    # phone width: the inbox still reads without sideways scrolling
    phone = tabs(server.base_url, viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.sign_in(shop["user"]["email"])
    width = phone.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    phone.screenshot("inbox-phone.png")
    assert tab.errors == [] and phone.errors == []


def test_admin_replays_an_event_and_a_non_admin_cannot_reach_admin(make_stack, tabs):
    stack, server = _live(make_stack)
    shop = business(server.base_url, stack.graph, "Replay Shop")
    post_webhook(server.base_url, fb_message(shop["page_id"], "Hi there"))
    _first_conversation(server.base_url, shop)
    [(event_id,)] = stack.query("SELECT id FROM webhook_events")
    wait_until(lambda: stack.event(event_id)["status"] == "processed", 20, "the event processed")

    user_tab = tabs(server.base_url)
    user_tab.sign_in(shop["user"]["email"])
    assert user_tab.page.get_by_role("link", name="Admin").count() == 0
    assert user_tab.errors == []
    resp = user_tab.page.goto("/admin/events")
    assert resp.status == 404 and "Not found" in user_tab.page.content()

    admin_email = f"ops-{uuid.uuid4().hex[:8]}@example.com"
    done = stack.flask("create-admin", "--email", admin_email, "--password", PASSWORD,
                       "--name", "Ops")
    assert done.returncode == 0, done.stderr
    admin = tabs(server.base_url)
    admin.sign_in(admin_email)
    admin.page.get_by_role("link", name="Admin").click()
    admin.page.get_by_role("link", name="Webhook events").click()
    admin.page.get_by_label("Status").select_option("processed")
    admin.page.get_by_role("button", name="Filter").click()
    row = admin.page.locator(f'tr[data-event-id="{event_id}"]')
    row.get_by_role("button", name="Replay").click()
    admin.page.locator(".flash", has_text=f"Event {event_id} replayed: processed.").wait_for()
    audit = stack.query("SELECT actor_id FROM audit_log WHERE event = 'webhook_event_replayed'")
    assert len(audit) == 1
    assert stack.query("SELECT count(*) FROM messages WHERE direction = 'inbound'")[0][0] == 1
    assert admin.errors == []


def test_csrf_refusals_in_the_browser(make_stack, tabs):
    stack, server = _live(make_stack)
    shop = business(server.base_url, stack.graph, "CSRF Shop")
    post_webhook(server.base_url, fb_message(shop["page_id"], QUESTION))
    conv = _first_conversation(server.base_url, shop)
    _handoff_task(server.base_url, shop)
    tab = tabs(server.base_url)
    tab.sign_in(shop["user"]["email"])
    page = tab.page

    # a form whose token was tampered with: a clear page, nothing changed
    page.goto("/app/tasks")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]')"
                  ".forEach(i => i.value = 'forged')")
    page.locator(".task").first.get_by_role("button", name="Take").click()
    assert page.locator("h1").inner_text() == "Form refused"
    assert re.search(r"Reload the page", page.content())

    # a fetch without the header: the JSON error shape
    result = page.evaluate("""async (url) => {
        const r = await fetch(url, {method: 'POST', body: new FormData(),
                                    headers: {'Accept': 'application/json'}});
        return {status: r.status, body: await r.json()};
    }""", f"/app/conversations/{conv['id']}/reply")
    assert result["status"] == 400
    assert result["body"]["error"]["code"] == "csrf_failed"
    with api(server.base_url) as c:
        [t] = c.get("/api/tasks", headers=shop["headers"]).json()["items"]
    assert t["status"] == "open"

    # another site's form cannot post into a signed-in session (SameSite=Lax + CSRF)
    evil = page.evaluate("""async () => {
        const r = await fetch('/logout', {method: 'POST', credentials: 'include'});
        return r.status;
    }""")
    assert evil == 400
    page.goto("/app")
    assert page.url.endswith("/app")  # still signed in
