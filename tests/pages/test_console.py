"""The team console under /app, driven as a browser without JavaScript (plus its fetches)."""
from __future__ import annotations

import json
import time

import pytest

from tests.channels.conftest import PAGE_ID, connect, fb_text, post_webhook
from tests.helpers import seed_conversation
from tests.pages.conftest import CSRF


def html(resp) -> str:
    return resp.get_data(as_text=True)


@pytest.fixture
def shop(client, user, fake_graph):
    """The signed-in user's Page with one customer message that came through the webhook."""
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    post_webhook(client, "facebook", fb_text("Do you deliver on Sundays?", psid="555"))
    conv = client.get("/api/conversations", headers=user["headers"]).get_json()["items"][0]
    return conv


def test_inbox_lists_own_conversations_with_filters_and_search(browser, user, other_user):
    seed_conversation(user["user"]["id"], "facebook", "p1", "Ada Lovelace", ["Where is my cake?"])
    seed_conversation(user["user"]["id"], "whatsapp", "w1", "Grace Hopper", ["Open on Monday?"])
    seed_conversation(other_user["user"]["id"], "facebook", "p2", "Mallory", ["secret"])
    page = html(browser.get("/app"))
    assert "Ada Lovelace" in page and "Grace Hopper" in page and "Where is my cake?" in page
    assert "Mallory" not in page and "secret" not in page
    assert 'aria-label="1 unread"' in page
    only_wa = html(browser.get("/app?platform=whatsapp"))
    assert "Grace Hopper" in only_wa and "Ada Lovelace" not in only_wa
    found = html(browser.get("/app?q=cake"))
    assert "Ada Lovelace" in found and "Grace Hopper" not in found
    assert "No conversations match" in html(browser.get("/app?status=resolved"))


def test_someone_elses_conversation_is_404(browser, other_user):
    conv = seed_conversation(other_user["user"]["id"], texts=["private"])
    resp = browser.get(f"/app/conversations/{conv['id']}")
    assert resp.status_code == 404 and "private" not in html(resp)
    resp = browser.post(f"/app/conversations/{conv['id']}/reply",
                        data={"text": "hi", "csrf_token": browser.csrf})
    assert resp.status_code == 404


def test_reply_from_the_form_goes_out_through_the_graph(browser, shop, fake_graph, client, user):
    page = html(browser.get(f"/app/conversations/{shop['id']}"))
    assert "Do you deliver on Sundays?" in page and "Messaging window open until" in page
    resp = browser.post(f"/app/conversations/{shop['id']}/reply",
                        data={"text": "Yes, from 9 to 12.", "csrf_token": browser.csrf})
    assert resp.status_code == 302
    sent = [r.json for r in fake_graph.requests_to("/me/messages")]
    assert {"recipient": {"id": "555"}} .items() <= sent[-1].items()
    assert sent[-1]["message"]["text"] == "Yes, from 9 to 12."
    thread = html(browser.get(f"/app/conversations/{shop['id']}"))
    assert "Reply sent." in thread and "Yes, from 9 to 12." in thread
    assert "AI paused" in thread  # a human reply pauses the AI, as in the API


def test_reply_fetch_needs_the_csrf_header_and_answers_json(browser, shop, fake_graph):
    url = f"/app/conversations/{shop['id']}/reply"
    refused = browser.post(url, data={"text": "hello"}, headers={"Accept": "application/json"})
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "csrf_failed"
    assert fake_graph.requests_to("/me/messages") == [] or all(
        r.json["message"].get("text") != "hello" for r in fake_graph.requests_to("/me/messages"))
    ok = browser.post(url, data={"text": "hello"}, headers={
        "Accept": "application/json", "X-CSRFToken": browser.csrf})
    assert ok.status_code == 201
    assert ok.get_json()["message"]["status"] == "sent"


def test_empty_reply_is_refused_next_to_the_field(browser, shop):
    resp = browser.post(f"/app/conversations/{shop['id']}/reply",
                        data={"text": "  ", "csrf_token": browser.csrf})
    assert resp.status_code == 400
    assert 'id="text-error"' in html(resp) and "Write a reply" in html(resp)


def test_whatsapp_outside_the_window_offers_a_template(browser, user):
    conv = seed_conversation(user["user"]["id"], "whatsapp", "w1", "Old Friend", ["hello"])
    page = html(browser.get(f"/app/conversations/{conv['id']}"))
    assert "The 24-hour window closed at" in page and "send an approved template" in page
    assert 'name="template_name"' in page and "(needed now)" in page


def test_take_and_resolve_a_task(browser, client, user, other_user):
    from services import tasks
    task = tasks.create_task(user["user"]["id"], {"title": "Reply to Ada on Facebook",
                                                  "description": "Ada asks about goats."})
    foreign = tasks.create_task(other_user["user"]["id"], {"title": "not yours"})
    page = html(browser.get("/app/tasks"))
    assert "Reply to Ada on Facebook" in page and "not yours" not in page
    resp = browser.post(f"/app/tasks/{task['id']}/take", data={"csrf_token": browser.csrf})
    assert resp.status_code == 302
    got = client.get(f"/api/tasks/{task['id']}", headers=user["headers"]).get_json()
    assert got["status"] == "in_progress" and got["assignee_id"] == user["user"]["id"]
    browser.post(f"/app/tasks/{task['id']}/resolve", data={"csrf_token": browser.csrf})
    assert client.get(f"/api/tasks/{task['id']}", headers=user["headers"]).get_json()["status"] \
        == "done"
    assert browser.post(f"/app/tasks/{foreign['id']}/take",
                        data={"csrf_token": browser.csrf}).status_code == 404


def test_workflow_json_is_validated_before_saving(browser, client, user):
    wf = client.get("/api/workflows", headers=user["headers"]).get_json()["items"][0]
    url = f"/app/workflows/{wf['id']}"
    page = html(browser.get(url))
    assert '"trigger"' in page.replace("&#34;", '"')
    bad = browser.post(url, data={"definition": "{not json", "csrf_token": browser.csrf})
    assert bad.status_code == 400 and "Not valid JSON" in html(bad)
    assert 'id="definition-error"' in html(bad)
    wrong = browser.post(url, data={"definition": json.dumps({"trigger": {"type": "nope"}}),
                                    "csrf_token": browser.csrf})
    assert wrong.status_code == 400 and 'id="definition-error"' in html(wrong)
    definition = dict(wf["definition"], conditions=[])
    ok = browser.post(url, data={"definition": json.dumps(definition), "csrf_token": browser.csrf})
    assert ok.status_code == 302
    off = browser.post(f"{url}/toggle", data={"enabled": "off", "csrf_token": browser.csrf})
    assert off.status_code == 302
    assert client.get(f"/api/workflows/{wf['id']}", headers=user["headers"]).get_json()[
        "enabled"] is False


def test_knowledge_add_and_test_question(browser):
    resp = browser.post("/app/knowledge", data={
        "title": "Opening hours", "format": "text", "csrf_token": browser.csrf,
        "content": "We are open Monday to Friday from 9 am to 6 pm. Closed on Sundays."})
    assert resp.status_code == 302
    page = html(browser.get("/app/knowledge?q=When are you open on Monday?"))
    assert "Opening hours" in page and "Passages it found" in page
    missing = browser.post("/app/knowledge", data={"title": "", "content": "",
                                                   "csrf_token": browser.csrf})
    assert missing.status_code == 400 and 'id="title-error"' in html(missing)


def test_connect_a_page_from_the_form(browser, user, fake_graph):
    from tests.channels.conftest import set_plan
    set_plan(user["user"]["id"], "professional")  # room for more than one account
    fake_graph.manage("EAAG-x", "12345", name="Shop")
    data = {"platform": "facebook", "external_id": "12345", "access_token": "EAAG-x",
            "name": "Shop", "csrf_token": browser.csrf}
    assert browser.post("/app/platforms", data=data).status_code == 302
    page = html(browser.get("/app/platforms"))
    assert "12345" in page and "EAAG-x" not in page  # the token is never shown
    again = browser.post("/app/platforms", data=data)
    assert again.status_code == 409 and "already connected" in html(again)
    # an id long enough not to turn up by chance (the page shows a random e-mail address)
    wrong = browser.post("/app/platforms",
                         data=dict(data, external_id="424242424242", name="Not mine"))
    assert wrong.status_code == 422 and 'id="external_id-error"' in html(wrong)
    page = html(browser.get("/app/platforms"))
    assert "424242424242" not in page and "Not mine" not in page


def test_socket_token_is_the_sessions_and_needs_csrf(app, browser):
    from utils.auth import authenticate_access_token
    assert browser.post("/app/socket-token",
                        headers={"Accept": "application/json"}).status_code == 400
    token = browser.post("/app/socket-token", headers={
        "Accept": "application/json", "X-CSRFToken": browser.csrf}).get_json()["token"]
    user, _ = authenticate_access_token(token)
    assert user.email in html(browser.get("/app"))
    browser.post("/logout", data={"csrf_token": browser.csrf})
    from models_db import db
    db.session.expire_all()
    with pytest.raises(Exception) as exc:
        authenticate_access_token(token)
    assert getattr(exc.value, "code", "") == "token_revoked"


def test_plan_and_analytics_pages(browser, user):
    seed_conversation(user["user"]["id"], texts=["one", "two"])
    assert "Free" in html(browser.get("/app/plan"))
    page = html(browser.get("/app/analytics?from=2026-01-01&to=2026-01-31"))
    assert 'id="stat-in">2<' in page and 'id="analytics-data"' in page
    assert browser.get("/app/analytics?from=2026-02-01&to=2026-01-01").status_code == 400


def test_pages_load_only_local_assets(browser):
    page = html(browser.get("/app"))
    assert "http://" not in page.replace("http://localhost", "") and "https://" not in page
    for src in ("/static/vendor/htmx-2.0.11.min.js", "/static/vendor/socket.io-4.8.4.min.js",
                "/static/js/dana.js", "/static/css/dana.css"):
        assert src in page
        assert browser.get(src).status_code == 200
    assert CSRF.search(page)


def test_import_a_knowledge_file(browser):
    import io
    csv = b"question,answer\nDo you deliver?,\"Yes, every weekday.\"\nCan I pay by card?,Yes.\n"
    resp = browser.post("/app/knowledge/import", content_type="multipart/form-data", data={
        "file": (io.BytesIO(csv), "faq.csv"), "tags": "faq", "csrf_token": browser.csrf})
    assert resp.status_code == 302, html(resp)
    page = html(browser.get("/app/knowledge"))
    assert "Imported 1 document(s) from faq.csv." in page and "<strong>Faq</strong>" in page
    missing = browser.post("/app/knowledge/import", content_type="multipart/form-data",
                           data={"csrf_token": browser.csrf})
    assert missing.status_code == 400 and "Choose a file to import." in html(missing)
    bad = browser.post("/app/knowledge/import", content_type="multipart/form-data", data={
        "file": (io.BytesIO(b"\x00\x01"), "x.exe"), "csrf_token": browser.csrf})
    assert bad.status_code == 400 and 'id="import-file-error"' in html(bad)


def test_suggested_replies_fill_the_box_without_sending(browser, shop, fake_graph):
    before = len(fake_graph.requests_to("/me/messages"))
    resp = browser.post(f"/app/conversations/{shop['id']}/suggest", headers={
        "Accept": "application/json", "X-CSRFToken": browser.csrf})
    assert resp.status_code == 200
    suggestions = resp.get_json()["suggestions"]
    assert suggestions and all(isinstance(s, str) and s for s in suggestions)
    assert len(fake_graph.requests_to("/me/messages")) == before


def test_whatsapp_template_outside_the_window_from_the_form(app, client, fake_graph):
    import time

    from tests.channels.conftest import PHONE_ID, set_plan, wa_text
    from tests.conftest import auth_header, register
    from tests.pages.conftest import csrf_of, sign_in
    owner = register(client)
    owner["headers"] = auth_header(owner)
    set_plan(owner["user"]["id"], "professional")
    connect(client, owner, fake_graph, "whatsapp", PHONE_ID)
    post_webhook(client, "whatsapp", wa_text("Is my order ready?", ts=time.time() - 2 * 86400))
    conv = client.get("/api/conversations", headers=owner["headers"]).get_json()["items"][0]
    tab = app.test_client()
    assert sign_in(tab, owner["user"]["email"], owner["password"]).status_code == 302
    token = csrf_of(tab, f"/app/conversations/{conv['id']}")
    resp = tab.post(f"/app/conversations/{conv['id']}/reply", data={
        "text": "", "template_name": "order_update", "template_language": "en_US",
        "csrf_token": token})
    assert resp.status_code == 302
    [sent] = [r.json for r in fake_graph.requests if r.json and r.json.get("type") == "template"]
    assert sent["template"]["name"] == "order_update"
    bad = tab.post(f"/app/conversations/{conv['id']}/reply", data={
        "template_name": "Order Update!", "csrf_token": token})
    assert bad.status_code == 400 and 'id="template_name-error"' in html(bad)


def test_a_burst_is_answered_once_with_all_its_texts_and_the_thread_says_so(
        browser, client, user, fake_graph, monkeypatch):
    from automation.ai import response_generator
    from automation.core import actions

    asked = []

    def generate(ctx):
        asked.append(ctx.message_text)
        return response_generator.generate_reply(ctx)

    monkeypatch.setattr(actions, "generate_reply", generate)
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    fake_graph.requests.clear()
    # Three messages in a quick burst (Meta batches them in one delivery).
    texts = ["Hi", "I ordered a cake for Saturday", "Can it be delivered before noon?"]
    start = int(time.time() * 1000) - 3000
    parts = [fb_text(text, psid="777", ts=start + n * 1000)["entry"][0]["messaging"][0]
             for n, text in enumerate(texts)]
    delivery = fb_text("", psid="777")
    delivery["entry"][0]["messaging"] = parts
    assert post_webhook(client, "facebook", delivery).status_code == 200
    from models_db import WebhookEvent, db
    [event] = db.session.scalars(db.select(WebhookEvent)).all()
    assert event.status == "processed", event.error

    conv = client.get("/api/conversations", headers=user["headers"]).get_json()["items"][0]
    thread = client.get(f"/api/conversations/{conv['id']}/messages?limit=100",
                        headers=user["headers"]).get_json()["items"]
    inbound = [m for m in thread if m["direction"] == "inbound"]
    replies = [m for m in thread if m["direction"] == "outbound"]
    assert [m["text"] for m in inbound] == texts
    # One answer, reached Graph once, and the AI was asked the whole burst.
    assert len(replies) == 1 and len(fake_graph.requests_to("/me/messages")) == 1
    assert asked == ["\n".join(texts)]
    [reply] = replies
    assert reply["metadata"]["answers"] == [m["id"] for m in inbound]
    assert [m["metadata"]["answered_by"] for m in inbound] == [[reply["id"]]] * 3
    page = html(browser.get(f"/app/conversations/{conv['id']}"))
    assert "answers 3 messages" in page


def test_knowledge_page_shows_and_changes_how_bold_the_ai_answers(browser, client, user,
                                                                   other_user):
    page = html(browser.get("/app/knowledge"))
    assert 'name="answer_confidence"' in page
    assert '<option selected value="cautious">' in page           # the default, shown
    resp = browser.post("/app/knowledge/answer-confidence",
                        data={"answer_confidence": "bold", "csrf_token": browser.csrf})
    assert resp.status_code == 302
    page = html(browser.get("/app/knowledge"))
    assert '<option selected value="bold">' in page and "the bold level" in page
    profile = client.get("/api/business", headers=user["headers"]).get_json()
    assert profile["answer_confidence"] == "bold"
    bad = browser.post("/app/knowledge/answer-confidence",
                       data={"answer_confidence": "reckless", "csrf_token": browser.csrf})
    assert bad.status_code == 400 and 'id="answer_confidence-error"' in html(bad)
    assert client.get("/api/business", headers=user["headers"]).get_json()[
        "answer_confidence"] == "bold"
    assert client.get("/api/business", headers=other_user["headers"]).get_json()[
        "answer_confidence"] == "cautious"
