"""AUTOMATION_QUEUE=rq with real processes: a hand-off's e-mail is sent by the worker, after
the customer's answer, never by the web process that received the webhook."""
from __future__ import annotations

from tests.fakes.smtp import SmtpServer
from tests.realtime.conftest import (
    QUESTION,
    api,
    business,
    conversations,
    fb_message,
    messages,
    post_webhook,
)

LOGIN, PASSWORD = "agent@shop.example.com", "smtp-Pa55word-7781"


def _admin_grants_starter(stack, server, owner) -> None:
    email, password = "ops@example.com", "correct horse battery"
    done = stack.flask("create-admin", "--email", email, "--password", password)
    assert done.returncode == 0, done.stderr[-2000:]
    with api(server.base_url) as c:
        token = c.post("/api/auth/login", json={"email": email, "password": password}
                       ).json()["access_token"]
        resp = c.put(f"/api/subscriptions/user/{owner['user']['id']}",
                     headers={"Authorization": f"Bearer {token}"}, json={"tier_id": "starter"})
    assert resp.status_code in (200, 201), resp.text


def test_handoff_email_is_sent_by_the_worker_after_the_reply(make_stack):
    smtp = SmtpServer(users={LOGIN: PASSWORD}).start()
    try:
        stack = make_stack(redis=True)
        server = stack.server("web", AUTOMATION_QUEUE="rq").wait_ready()
        owner = business(server.base_url, stack.graph)
        _admin_grants_starter(stack, server, owner)
        with api(server.base_url) as c:
            resp = c.post("/api/integrations", headers=owner["headers"], json={
                "type": "email", "config": {
                    "smtp_host": smtp.host, "smtp_port": smtp.port, "security": "none",
                    "username": LOGIN, "password": PASSWORD,
                    "from_address": "dana@shop.example.com",
                    "to_addresses": ["team@shop.example.com"]}})
        assert resp.status_code == 201, resp.text

        assert post_webhook(server.base_url, fb_message(owner["page_id"], QUESTION)
                            ).status_code == 200
        assert smtp.messages == [] and stack.replies() == []   # the web process only enqueued

        worker = stack.worker("worker", "--burst")
        assert worker.wait(60) == 0, worker.log()[-3000:]
        [conv] = conversations(server.base_url, owner)
        [notice] = [m for m in messages(server.base_url, owner, conv["id"])
                    if m["direction"] == "outbound"]
        assert notice["status"] == "sent" and notice["sender_type"] == "system"
        [mail] = smtp.messages
        assert mail.rcpt_tos == ["team@shop.example.com"] and QUESTION in \
            mail.message.get_body(("plain",)).get_content()
        assert PASSWORD not in worker.log() and PASSWORD not in server.log()
    finally:
        smtp.stop()
