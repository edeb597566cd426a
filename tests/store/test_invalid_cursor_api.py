"""An unusable cursor is a 400 invalid_cursor on every keyset-paginated list, on both store
backends - including cursors of the right shape whose values no list could have made."""
from __future__ import annotations

import base64
import json

from tests.helpers import seed_conversation
from utils.pagination import encode_cursor

SOME_ID = "00000000-0000-4000-8000-000000000001"
CURSORS = [
    base64.urlsafe_b64encode(json.dumps(["not-a-date", "x"]).encode()).decode(),
    encode_cursor([12345, SOME_ID]),
    encode_cursor(["2026-03-01T12:00:00+00:00", 12345]),
    encode_cursor(["9999-12-31T23:59:59-14:00", SOME_ID]),  # past datetime.max in UTC
]
# path (with {conversation}), who asks
LISTS = [
    ("/api/conversations", "user"),
    ("/api/conversations/{conversation}/messages", "user"),
    ("/api/contacts", "user"),
    ("/api/tasks", "user"),
    ("/api/subscriptions/users", "admin"),
    ("/api/users", "admin"),
    ("/api/workflows/runs", "user"),
]


def test_unusable_cursor_is_400_invalid_cursor(client, user, admin, store):
    conversation = seed_conversation(user["user"]["id"], texts=["hi"])
    for path, who in LISTS:
        headers = (user if who == "user" else admin)["headers"]
        url = path.format(conversation=conversation["id"])
        assert client.get(url, headers=headers).status_code == 200, url
        for cursor in CURSORS:
            resp = client.get(url, headers=headers, query_string={"cursor": cursor})
            assert (resp.status_code, resp.get_json()["error"]["code"]) == \
                (400, "invalid_cursor"), (url, cursor)
