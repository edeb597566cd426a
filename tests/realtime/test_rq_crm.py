"""AUTOMATION_QUEUE=rq with real processes: a hand-off workflow's crm_sync runs in the worker,
after the customer's answer, never in the web process that received the webhook."""
from __future__ import annotations

from tests.fakes.hubspot import TOKEN, FakeHubSpot
from tests.realtime.conftest import (
    QUESTION,
    api,
    business,
    conversations,
    fb_message,
    messages,
    post_webhook,
)


def _admin_grants(stack, server, owner, tier: str) -> None:
    email, password = "ops@example.com", "correct horse battery"
    done = stack.flask("create-admin", "--email", email, "--password", password)
    assert done.returncode == 0, done.stderr[-2000:]
    with api(server.base_url) as c:
        token = c.post("/api/auth/login", json={"email": email, "password": password}
                       ).json()["access_token"]
        resp = c.put(f"/api/subscriptions/user/{owner['user']['id']}",
                     headers={"Authorization": f"Bearer {token}"}, json={"tier_id": tier})
    assert resp.status_code in (200, 201), resp.text


def test_handoff_crm_sync_runs_in_the_worker_after_the_reply(make_stack):
    hubspot = FakeHubSpot().start()
    try:
        stack = make_stack(redis=True)
        server = stack.server("web", AUTOMATION_QUEUE="rq",
                              HUBSPOT_API_URL=hubspot.base_url).wait_ready()
        owner = business(server.base_url, stack.graph)
        _admin_grants(stack, server, owner, "professional")
        with api(server.base_url) as c:
            resp = c.post("/api/integrations", headers=owner["headers"], json={
                "type": "hubspot", "config": {"access_token": TOKEN}})
            assert resp.status_code == 201, resp.text
            resp = c.post("/api/workflows", headers=owner["headers"], json={
                "name": "CRM on hand-off", "definition": {
                    "trigger": {"type": "handoff"}, "actions": [{"type": "crm_sync"}]}})
            assert resp.status_code == 201, resp.text
        hubspot.requests.clear()

        assert post_webhook(server.base_url, fb_message(owner["page_id"], QUESTION)
                            ).status_code == 200
        assert hubspot.requests == [] and stack.replies() == []   # the web process enqueued

        worker = stack.worker("worker", "--burst", HUBSPOT_API_URL=hubspot.base_url)
        assert worker.wait(60) == 0, worker.log()[-3000:]
        [conv] = conversations(server.base_url, owner)
        [notice] = [m for m in messages(server.base_url, owner, conv["id"])
                    if m["direction"] == "outbound"]
        assert notice["status"] == "sent" and notice["sender_type"] == "system"
        assert len(hubspot.contacts) == 1 and len(hubspot.notes) == 1
        assert QUESTION in hubspot.notes[0]["properties"]["hs_note_body"]
        assert TOKEN not in worker.log() and TOKEN not in server.log()
    finally:
        hubspot.stop()
