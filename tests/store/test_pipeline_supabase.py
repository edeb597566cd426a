"""The whole product on DATA_BACKEND=supabase: webhook -> ingest -> workflow -> AI reply or
hand-off -> Send API (fake Graph) -> stored messages, and the inbox API on top.

tests/channels/ proves this pipeline on the default SQL backend; here the same app is built on
the Supabase backend (the real supabase-py client against tests/fakes/postgrest.py, which runs
every request under Row-Level Security on a fresh PostgreSQL database with
supabase/migrations applied), with Meta's side played by signed webhooks and the fake Graph.
Everything goes through the HTTP API, as the frontend and Meta would.
"""
from __future__ import annotations

import pytest

from models_db import WebhookEvent, db
from tests.channels.conftest import (  # noqa: F401
    IG_ID,
    PAGE_ID,
    PHONE_ID,
    account_token,
    add_knowledge,
    business,
    conversations,
    fake_graph,
    fb_text,
    messages,
    now_ms,
    post_webhook,
    wa_status,
    wa_text,
)
from utils.store.sql_models import Conversation, Message

SHIPPING = ("Shipping. We ship to every country in the European Union. Standard delivery takes "
            "3 to 5 working days and costs 4.90 euros; orders over 50 euros ship free.")
OTHER_DOCS = {
    "Returns": "Returns. You can return any item within 30 days for a full refund; use the "
               "prepaid label in the box.",
    "Opening hours": "Opening hours. Our shop in Oslo is open Monday to Friday from 9 to 17 and "
                     "on Saturdays from 10 to 14.",
}
QUESTION = "How long does delivery take and what does shipping cost?"
STORE_TABLES = {"contacts", "conversations", "messages", "tasks", "search_conversations"}
DELIVERIES = {  # platform -> (build a delivery of `text` with message id `m`, Send API path)
    "facebook": (lambda text, m=None: fb_text(text, mid_=m), "/me/messages"),
    "whatsapp": (lambda text, m=None: wa_text(text, wamid=m), f"/{PHONE_ID}/messages"),
}


@pytest.fixture
def backend():
    """Every test here runs on the Supabase backend."""
    return "supabase"


@pytest.fixture
def settings_overrides(settings_overrides, fake_graph):
    """The Supabase settings (tests/store/conftest.py) plus the Send API pointed at the fake
    Graph, as in tests/channels/conftest.py."""
    return {**settings_overrides, "GRAPH_API_URL": fake_graph.base_url,
            "GRAPH_RETRY_WAIT_SECONDS": 0.001, "GRAPH_RETRY_ATTEMPTS": 3,
            "GRAPH_TIMEOUT_SECONDS": 3.0}


@pytest.fixture(autouse=True)
def _supabase_store(store):
    """The app's store is the Supabase one (and is closed after the test)."""
    return store


def _stock_knowledge(client, user) -> None:
    add_knowledge(client, user, "Shipping", SHIPPING)
    for title, content in OTHER_DOCS.items():
        add_knowledge(client, user, title, content)


def _rows(postgrest, table: str) -> list[dict]:
    """The rows the store wrote, read straight from PostgreSQL (not through the app)."""
    import psycopg
    from psycopg.rows import dict_row
    with psycopg.connect(postgrest.dsn, row_factory=dict_row) as conn:
        return conn.execute(f"select * from public.{table} order by created_at, id").fetchall()


def _get(client, user, path: str):
    resp = client.get(path, headers=user["headers"])
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


# ------------------------------------------------------------------ 1. AI answer
@pytest.mark.parametrize("platform", ["facebook", "whatsapp"])
def test_question_answered_from_knowledge_base(client, business, fake_graph, postgrest,
                                               platform):
    _stock_knowledge(client, business)
    build, path = DELIVERIES[platform]
    assert post_webhook(client, platform, build(QUESTION, "mid-question-1")).status_code == 200

    [conv] = conversations(client, business)
    assert conv["platform"] == platform and conv["message_count"] == 2
    assert conv["last_message_preview"] and "3 to 5 working days" in conv["last_message_preview"]
    inbound, reply = messages(client, business, conv["id"])
    assert (inbound["direction"], inbound["sender_type"], inbound["text"]) == \
        ("inbound", "contact", QUESTION)
    assert inbound["platform_message_id"] == "mid-question-1"
    assert inbound["metadata"]["automation"]["outcome"]
    assert (reply["direction"], reply["sender_type"], reply["status"]) == ("outbound", "ai", "sent")
    assert "3 to 5 working days" in reply["text"]

    [sent] = fake_graph.requests_to(path)
    ext = {"facebook": PAGE_ID, "instagram": IG_ID, "whatsapp": PHONE_ID}[platform]
    assert sent.headers["authorization"] == f"Bearer {account_token(platform, ext)}"
    recipient = sent.json.get("to") or sent.json["recipient"]["id"]
    assert recipient == conv["contact"]["platform_user_id"]
    answer = sent.json["text"]["body"] if platform == "whatsapp" else sent.json["message"]["text"]
    assert answer == reply["text"]
    assert reply["platform_message_id"] and reply["platform_message_id"].startswith(
        "wamid.FAKE" if platform == "whatsapp" else "m_fake")

    # stored on Supabase, under the owner; nothing in the app's own database
    owner = business["user"]["id"]
    stored = _rows(postgrest, "messages")
    assert [(str(m["owner_id"]), m["direction"], m["platform_message_id"]) for m in stored] == [
        (owner, "inbound", "mid-question-1"), (owner, "outbound", reply["platform_message_id"])]
    for model in (Conversation, Message):
        assert db.session.scalar(db.select(db.func.count()).select_from(model)) == 0
    # every call on the store's tables went out with a token for the owner (RLS applies)
    calls = {(r["role"], r["sub"]) for r in postgrest.requests
             if r["path"].rsplit("/", 1)[1] in STORE_TABLES}
    assert calls == {("authenticated", owner)}


# --------------------------------------------------------------- 2. redeliveries
@pytest.mark.parametrize("platform", ["facebook", "whatsapp"])
def test_same_delivery_three_times_one_message_one_reply(client, business, fake_graph,
                                                         postgrest, platform):
    _stock_knowledge(client, business)
    build, path = DELIVERIES[platform]
    payload = build("What does shipping cost?", "mid-dup-1")
    for _ in range(3):
        assert post_webhook(client, platform, payload).status_code == 200
    # and inside another batch (other bytes): each delivery is stored and processed; the
    # store's unique platform message id is what stops the message
    other = build("What does shipping cost?", "mid-dup-1")
    unrelated = build("unrelated")["entry"][0]
    if platform == "facebook":
        unrelated["id"] = unrelated["messaging"][0]["recipient"]["id"] = "999"
    else:
        unrelated["changes"][0]["value"]["metadata"]["phone_number_id"] = "999"
    other["entry"].append(unrelated)  # for an account nobody connected: ignored
    assert post_webhook(client, platform, other).status_code == 200
    events = db.session.scalars(db.select(WebhookEvent)).all()
    assert len(events) == 4 and {e.status for e in events} == {"processed"}
    [conv] = conversations(client, business)
    thread = messages(client, business, conv["id"])
    assert [(m["direction"], m["sender_type"]) for m in thread] == [("inbound", "contact"),
                                                                    ("outbound", "ai")]
    assert len(fake_graph.requests_to(path)) == 1
    assert conv["message_count"] == 2 and conv["unread_count"] == 1
    assert len(_rows(postgrest, "messages")) == 2
    # each redelivery reached the store, and was refused there (409, unique platform id)
    inserts = [r for r in postgrest.requests if (r["method"], r["path"]) == (
        "POST", "/rest/v1/messages") and r["body"]["direction"] == "inbound"]
    assert [r["body"]["platform_message_id"] for r in inserts] == ["mid-dup-1"] * 4


# ------------------------------------------------------------------ 3. hand-off
@pytest.mark.parametrize("platform", ["facebook", "whatsapp"])
def test_unanswerable_question_is_handed_off(client, business, fake_graph, platform):
    build, path = DELIVERIES[platform]
    post_webhook(client, platform, build("Can I pay for my wedding cake with goats?"))
    [conv] = conversations(client, business)
    assert conv["ai_enabled"] is False and conv["status"] == "pending"

    thread = messages(client, business, conv["id"])
    assert [m["sender_type"] for m in thread] == ["contact", "system"]
    notice = thread[-1]
    assert notice["status"] == "sent" and notice["platform_message_id"]
    assert "team" in notice["text"].lower()
    [sent] = fake_graph.requests_to(path)
    assert (sent.json.get("to") or sent.json["recipient"]["id"]) == \
        conv["contact"]["platform_user_id"]

    [task] = _get(client, business, "/api/tasks")["items"]
    assert task["conversation_id"] == conv["id"] and conv["id"] in task["description"]
    assert "goats" in task["description"] and task["status"] == "open"
    assert _get(client, business, f"/api/tasks?conversation_id={conv['id']}")["items"] == [task]
    assert _get(client, business, f"/api/tasks/{task['id']}") == task

    # the AI is paused: the next customer message is stored, and nobody answers it
    post_webhook(client, platform, build("Hello?"))
    assert len(fake_graph.requests_to(path)) == 1
    thread = messages(client, business, conv["id"])
    # (sorted: WhatsApp times are whole seconds, so both may share one)
    assert sorted(m["text"] for m in thread if m["direction"] == "inbound") == [
        "Can I pay for my wedding cake with goats?", "Hello?"]
    assert [m["sender_type"] for m in thread].count("system") == 1
    assert len(_get(client, business, "/api/tasks")["items"]) == 1


# ---------------------------------------------------------- 4. WhatsApp statuses
def test_whatsapp_statuses_out_of_order_never_move_backwards(client, business, fake_graph):
    post_webhook(client, "whatsapp", wa_text("hi there"))
    [conv] = conversations(client, business)
    first = client.post(f"/api/conversations/{conv['id']}/messages", json={"text": "Hello!"},
                        headers=business["headers"]).get_json()
    wamid = first["platform_message_id"]
    assert first["status"] == "sent" and wamid

    def current(message_id: str) -> dict:
        return next(m for m in messages(client, business, conv["id"]) if m["id"] == message_id)

    post_webhook(client, "whatsapp", wa_status(wamid, "read"))        # read before delivered
    assert current(first["id"])["status"] == "read"
    post_webhook(client, "whatsapp", wa_status(wamid, "delivered"))   # late: changes nothing
    post_webhook(client, "whatsapp", wa_status(wamid, "sent"))
    assert current(first["id"])["status"] == "read"
    post_webhook(client, "whatsapp", wa_status("wamid.unknown", "delivered"))  # not ours: fine

    second = client.post(f"/api/conversations/{conv['id']}/messages",
                         json={"text": "Still there?"}, headers=business["headers"]).get_json()
    post_webhook(client, "whatsapp", wa_status(second["platform_message_id"], "failed", errors=[{
        "code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
        "error_data": {"details": "More than 24 hours have passed"}}]))
    failed = current(second["id"])
    assert failed["status"] == "failed" and failed["error"] == "outside_window"
    assert failed["metadata"]["error_detail"]["code"] == 131047
    post_webhook(client, "whatsapp", wa_status(second["platform_message_id"], "delivered"))
    post_webhook(client, "whatsapp", wa_status(second["platform_message_id"], "read"))
    after = current(second["id"])
    assert (after["status"], after["error"]) == ("failed", "outside_window")
    assert current(first["id"])["status"] == "read"


# ----------------------------------------------------------------- 5. agent reply
def test_agent_reply_is_sent_and_pauses_ai(client, business, fake_graph):
    post_webhook(client, "facebook", fb_text("Hello"))
    [conv] = conversations(client, business)
    fake_graph.requests.clear()
    before = _get(client, business, f"/api/conversations/{conv['id']}")
    resp = client.post(f"/api/conversations/{conv['id']}/messages", json={"text": "Hi, Nora here!"},
                       headers=business["headers"])
    assert resp.status_code == 201, resp.get_json()
    msg = resp.get_json()
    assert (msg["direction"], msg["sender_type"], msg["status"]) == ("outbound", "agent", "sent")
    assert msg["platform_message_id"].startswith("m_")
    assert msg["metadata"]["author_id"] == business["user"]["id"]
    [req] = fake_graph.requests_to("/me/messages")
    assert req.json["messaging_type"] == "RESPONSE"
    assert req.json["message"]["text"] == "Hi, Nora here!"
    assert req.json["recipient"]["id"] == conv["contact"]["platform_user_id"]

    got = _get(client, business, f"/api/conversations/{conv['id']}")
    assert got["ai_enabled"] is False
    assert got["message_count"] == before["message_count"] + 1
    assert got["last_message_preview"] == "Hi, Nora here!"
    assert messages(client, business, conv["id"])[-1]["id"] == msg["id"]
    # with the AI paused, the customer's next message gets no automated reply
    post_webhook(client, "facebook", fb_text("Thanks!"))
    assert len(fake_graph.requests_to("/me/messages")) == 1


# ------------------------------------------------------------------- 6. scoping
def test_another_users_conversation_is_404(client, business, other_user, fake_graph):
    post_webhook(client, "facebook", fb_text("Hello"))
    [conv] = conversations(client, business)
    h = other_user["headers"]
    missing = client.get("/api/conversations/00000000-0000-0000-0000-000000000000", headers=h)
    assert missing.status_code == 404
    for method, path, kwargs in [
        ("get", f"/api/conversations/{conv['id']}", {}),
        ("patch", f"/api/conversations/{conv['id']}", {"json": {"status": "resolved"}}),
        ("get", f"/api/conversations/{conv['id']}/messages", {}),
        ("post", f"/api/conversations/{conv['id']}/messages", {"json": {"text": "x"}}),
        ("post", f"/api/conversations/{conv['id']}/read", {}),
        ("get", "/api/conversations/not-a-uuid", {}),
    ]:
        resp = getattr(client, method)(path, headers=h, **kwargs)
        assert resp.status_code == 404, (method, path, resp.get_json())
        assert resp.get_json() == missing.get_json()
    assert client.get("/api/conversations", headers=h).get_json() == {"items": [],
                                                                       "next_cursor": None}
    # nothing of it reached the owner's conversation or the customer
    got = _get(client, business, f"/api/conversations/{conv['id']}")
    assert got["status"] == conv["status"] and got["message_count"] == conv["message_count"]
    sent = [r.json["message"]["text"] for r in fake_graph.requests_to("/me/messages")]
    assert "x" not in sent


# ------------------------------------------------------- 7. filters, pagination
def test_conversation_filters_and_pagination(client, business, fake_graph):
    h = business["headers"]
    # only the inbox here: instead of the default AI workflow (replies, hand-offs), one that
    # labels every new message, so that nothing else changes a conversation
    [default] = _get(client, business, "/api/workflows")["items"]
    assert client.patch(f"/api/workflows/{default['id']}", json={"enabled": False},
                        headers=h).status_code == 200
    assert client.post("/api/workflows", headers=h, json={"name": "label", "definition": {
        "trigger": {"type": "message_received"},
        "actions": [{"type": "add_label", "label": "new"}]}}).status_code == 201
    texts = ["Where is my parcel?", "Do you sell gift cards?", "100% cotton?",
             "Is the blue vase in stock?", "Opening hours on Sunday?"]
    base = now_ms(-3600)
    for i, text in enumerate(texts):
        post_webhook(client, "facebook", fb_text(text, psid=f"psid-{i}", ts=base + i * 1000))
    # two more at the very same instant: the cursor's id tie-break decides their order
    for i in (5, 6):
        post_webhook(client, "whatsapp", wa_text(f"same time {i}", wa_id=f"4670000000{i}",
                                                 ts=(base + 10_000) / 1000, name=f"Tie {i}"))
    assert fake_graph.requests == []

    everything = _get(client, business, "/api/conversations?limit=100")["items"]
    assert len(everything) == 7 and all(c["labels"] == ["new"] for c in everything)
    assert len({c["last_message_at"] for c in everything if c["platform"] == "whatsapp"}) == 1
    assert all(c["status"] == "open" and c["ai_enabled"] for c in everything)
    order = [c["id"] for c in everything]
    keys = [(c["last_message_at"], c["id"]) for c in everything]
    assert keys == sorted(keys, reverse=True)
    by_text = {c["last_message_preview"]: c["id"] for c in everything}

    for limit in (1, 2, 3):
        got, cursor, pages = [], None, 0
        while True:
            body = _get(client, business, f"/api/conversations?limit={limit}"
                                          + (f"&cursor={cursor}" if cursor else ""))
            assert len(body["items"]) <= limit
            got += [c["id"] for c in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if not cursor:
                break
        assert got == order and pages == -(-7 // limit)

    vip, gift = by_text["Where is my parcel?"], by_text["Do you sell gift cards?"]
    tie = by_text["same time 5"]
    assert client.patch(f"/api/conversations/{vip}", json={"labels": ["vip", "needs reply"],
                                                            "status": "pending"},
                        headers=h).status_code == 200
    assert client.patch(f"/api/conversations/{gift}", json={"labels": ["b2b,wholesale"],
                                                             "status": "resolved"},
                        headers=h).status_code == 200
    assert client.patch(f"/api/conversations/{tie}", json={"labels": ["vip"]},
                        headers=h).status_code == 200

    def ids(query: str) -> list[str]:
        return [c["id"] for c in _get(client, business, f"/api/conversations?{query}")["items"]]

    assert ids("status=pending") == [vip]
    assert ids("status=resolved") == [gift]
    assert ids("status=open") == [i for i in order if i not in (vip, gift)]
    assert ids("label=vip") == [tie, vip]
    assert ids("label=needs%20reply") == [vip]
    assert ids("label=b2b%2Cwholesale") == [gift]     # one label with a comma in it
    assert ids("label=b2b") == ids("label=wholesale") == []
    assert ids("label=vip&status=pending") == [vip]
    assert ids("label=new") == [i for i in order if i not in (vip, gift, tie)]
    assert ids("platform=whatsapp") == [c for c in order if c in (tie, by_text["same time 6"])]

    # search: message text or contact name, any case, the query taken literally
    assert ids("q=BLUE%20VASE") == [by_text["Is the blue vase in stock?"]]
    assert ids("q=100%25") == [by_text["100% cotton?"]]
    assert ids("q=%25") == [by_text["100% cotton?"]]
    assert ids("q=tie%206") == [by_text["same time 6"]]      # the WhatsApp profile name
    assert ids("q=same%20time") == [c for c in order if c in (tie, by_text["same time 6"])]
    assert ids("q=nothing%20like%20this") == []
    assert ids("q=same%20time&label=vip") == [tie]
    # search results page with the same cursor
    first = _get(client, business, "/api/conversations?q=same%20time&limit=1")
    second = _get(client, business,
                  f"/api/conversations?q=same%20time&limit=1&cursor={first['next_cursor']}")
    assert [c["id"] for c in first["items"] + second["items"]] == ids("q=same%20time")
    assert second["next_cursor"] is None


# ------------------------------------------------------------------ new contacts
def test_new_contact_condition_only_matches_a_contact_seen_for_the_first_time(
        client, business, fake_graph):
    h = business["headers"]
    [default] = _get(client, business, "/api/workflows")["items"]
    client.patch(f"/api/workflows/{default['id']}", json={"enabled": False}, headers=h)
    assert client.post("/api/workflows", headers=h, json={"name": "welcome", "definition": {
        "trigger": {"type": "message_received"},
        "conditions": [{"type": "new_contact", "value": True}],
        "actions": [{"type": "add_label", "label": "welcome"}]}}).status_code == 201
    post_webhook(client, "facebook", fb_text("hi", psid="55"))
    [conv] = conversations(client, business)
    assert conv["labels"] == ["welcome"]
    client.patch(f"/api/conversations/{conv['id']}", json={"labels": []}, headers=h)
    post_webhook(client, "facebook", fb_text("hi again", psid="55"))
    [conv] = conversations(client, business)
    assert conv["labels"] == []  # a returning contact is not new
