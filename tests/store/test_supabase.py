"""What only the Supabase backend has: per-owner JWTs on every request, RLS behind them,
and no client state shared between owners. The contract itself is in test_contract.py."""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import httpx
import jwt
import pytest
from postgrest.exceptions import APIError

from tests.store.conftest import SUPABASE_JWT_SECRET
from utils.store import ConversationFilters, DuplicateMessage, NewMessage, TaskFilters

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def backend():
    """These tests are about the Supabase backend only."""
    return "supabase"


def _owner_named(request: dict) -> str | None:
    """The owner a request asks about: its owner_id filter, or owner_id in the body."""
    for key, value in request["params"]:
        if key == "owner_id" and value.startswith("eq."):
            return value[3:]
    return (request["body"] or {}).get("owner_id")


def _work(store, owner: str, n: int) -> None:
    """A bit of everything the store does, for one owner."""
    contact, _ = store.upsert_contact(owner, "facebook", f"psid-{n}", {"name": f"Ada {n}"})
    conv, _ = store.open_conversation(owner, "facebook", "page-1", contact["id"])
    store.add_message(owner, NewMessage(conversation_id=conv["id"], direction="inbound",
                                        sender_type="contact", text=f"order {n}",
                                        platform="facebook",
                                        platform_message_id=f"mid.{owner}.{n}",
                                        created_at=T0 + timedelta(seconds=n)))
    store.list_conversations(owner, ConversationFilters(q="order"), 10, None)
    store.update_conversation(owner, conv["id"], {"labels": ["vip"]})
    task = store.create_task(owner, {"title": "Call", "conversation_id": conv["id"]})
    store.list_tasks(owner, TaskFilters(), 10, None)
    store.delete_task(owner, task["id"])


def test_each_request_carries_a_token_for_the_owner_it_is_for(store, owners, postgrest):
    a, b = owners
    for n in range(3):  # interleaved: A, B, A, B, ...
        for owner in (a, b):
            start = len(postgrest.requests)
            _work(store, owner, n)
            made = postgrest.requests[start:]
            assert made
            for request in made:
                assert request["role"] == "authenticated" and request["sub"] == owner, request
                assert _owner_named(request) == owner, request  # explicit filter as well
    claims = jwt.decode(postgrest.requests[-1]["authorization"].split()[1], SUPABASE_JWT_SECRET,
                        algorithms=["HS256"], audience="authenticated")
    assert claims["exp"] - claims["iat"] <= 60


def test_concurrent_owners_never_share_a_token(store, owners, postgrest):
    a, b = owners
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda job: _work(store, *job), [(o, n) for n in range(4) for o in (a, b)]))
    assert len(postgrest.requests) > 50
    for request in postgrest.requests:
        assert request["sub"] in (a, b) and _owner_named(request) == request["sub"], request
    # the connection pool shared by the per-call clients holds no credentials
    assert not {"authorization", "apikey"} & {k.lower() for k in store._http.headers}
    assert store._http.auth is None


def test_a_query_without_owner_filter_still_sees_only_the_owner_rows(store, owners):
    """RLS behind the backend: the owner's client, minus the explicit filter."""
    a, b = owners
    _work(store, a, 1)
    _work(store, b, 2)
    for table in ("contacts", "conversations", "messages"):
        rows = store._client(a).table(table).select("owner_id").execute().data
        assert rows and {r["owner_id"] for r in rows} == {a}
        with pytest.raises(APIError) as refused:
            store._client(a).table(table).update({"owner_id": b}).eq("owner_id", a).execute()
        assert refused.value.code == "42501"


def test_only_the_ownerless_lookup_uses_the_service_key(store, owners, postgrest):
    a, b = owners
    _work(store, a, 1)
    start = len(postgrest.requests)
    found = store.find_message(None, "facebook", f"mid.{a}.1")
    assert found["text"] == "order 1"
    assert [(r["role"], r["sub"]) for r in postgrest.requests[start:]] == [("service_role", None)]
    assert store.find_message(b, "facebook", f"mid.{a}.1") is None


def test_duplicate_of_another_owner_message_reveals_nothing(store, owners):
    a, b = owners
    _work(store, a, 1)
    contact, _ = store.upsert_contact(b, "facebook", "psid-b", {})
    conv, _ = store.open_conversation(b, "facebook", "page-1", contact["id"])
    with pytest.raises(DuplicateMessage) as dup:
        store.add_message(b, NewMessage(conversation_id=conv["id"], direction="inbound",
                                        sender_type="contact", text="x", platform="facebook",
                                        platform_message_id=f"mid.{a}.1"))
    assert dup.value.existing == {}


def test_ids_that_are_not_uuids_name_nothing(store, owners):
    a, _ = owners
    assert store.get_conversation(a, "not-a-uuid") is None
    assert store.get_task(a, "42") is None
    assert store.delete_task(a, "42") is False
    assert store.list_messages(a, "nope", 10, None).items == []
    with pytest.raises(LookupError):
        store.add_message(a, NewMessage(conversation_id="nope", direction="inbound",
                                        sender_type="contact", text="x"))


def _raw_client(postgrest, http, token):
    from supabase import ClientOptions, create_client
    return create_client(postgrest.url, postgrest.service_key, options=ClientOptions(
        headers={"Authorization": f"Bearer {token}"}, auto_refresh_token=False,
        persist_session=False, httpx_client=http))


@pytest.mark.parametrize("secret,ttl,code", [("wrong-secret-" + "w" * 32, 60, "PGRST301"),
                                             (SUPABASE_JWT_SECRET, -30, "PGRST303")])
def test_the_fake_refuses_tokens_it_cannot_verify(postgrest, secret, ttl, code):
    now = datetime.now(timezone.utc)
    token = jwt.encode({"sub": "00000000-0000-0000-0000-000000000001", "role": "authenticated",
                        "iat": now, "exp": now + timedelta(seconds=ttl)}, secret)
    with httpx.Client() as http, pytest.raises(APIError) as refused:
        _raw_client(postgrest, http, token).table("tasks").select("*").execute()
    assert refused.value.code == code


@pytest.mark.parametrize("query,code", [
    (lambda t: t.select("*").neq("title", "x"), "PGRST100"),       # a filter the backend never uses
    (lambda t: t.select("*").order("title", nullsfirst=True), "PGRST100"),
    (lambda t: t.delete(), "21000"),                                  # no WHERE (pg-safeupdate)
])
def test_the_fake_refuses_shapes_the_backend_does_not_send(postgrest, query, code):
    token = postgrest.mint("authenticated", sub="00000000-0000-0000-0000-000000000001")
    with httpx.Client() as http, pytest.raises(APIError) as refused:
        query(_raw_client(postgrest, http, token).table("tasks")).execute()
    assert refused.value.code == code


def _calls(postgrest, start: int) -> list[tuple]:
    """(method, table, role, sub) of each request made since `start`."""
    return [(r["method"], r["path"].rsplit("/", 1)[1], r["role"], r["sub"])
            for r in postgrest.requests[start:]]


def test_subscription_calls_go_out_with_the_least_key_that_works(store, owners, postgrest):
    """Plans are read as anon, a subscription as its user; writes and cross-user reads use
    the service key (the migration gives no API user any write on these tables)."""
    a, _ = owners
    expected = [
        (lambda: store.list_tiers(), [("GET", "subscription_tiers", "anon", None)]),
        (lambda: store.get_tier("free"), [("GET", "subscription_tiers", "anon", None)]),
        (lambda: store.create_tier({"name": "Gold", "price": 5}),
         [("POST", "subscription_tiers", "service_role", None)]),
        (lambda: store.update_tier("free", {"description": "x"}),
         [("PATCH", "subscription_tiers", "service_role", None)]),
        (lambda: store.save_subscription(a, {"tier_id": "starter"}),  # none yet: insert
         [("PATCH", "user_subscriptions", "service_role", None),
          ("POST", "user_subscriptions", "service_role", None)]),
        (lambda: store.save_subscription(a, {"status": "expired"}),
         [("PATCH", "user_subscriptions", "service_role", None)]),
        (lambda: store.get_subscription(a), [("GET", "user_subscriptions", "authenticated", a)]),
        (lambda: store.count_tier_subscriptions("starter"),
         [("HEAD", "user_subscriptions", "service_role", None)]),
        (lambda: store.list_subscriptions(10, None),
         [("GET", "user_subscriptions", "service_role", None)]),
    ]
    for call, calls in expected:
        start = len(postgrest.requests)
        call()
        assert _calls(postgrest, start) == calls


def test_a_user_token_cannot_change_plans_or_subscriptions(store, owners):
    """What RLS stops if a token for a user ever writes: no free upgrade, no cheaper plan."""
    a, b = owners
    store.save_subscription(a, {"tier_id": "free"})
    store.save_subscription(b, {"tier_id": "free"})
    as_a = store._client(a)
    attempts = [
        lambda: as_a.table("user_subscriptions").update({"tier_id": "enterprise"})
        .eq("user_id", a).execute(),
        lambda: as_a.table("user_subscriptions").update({"status": "canceled"})
        .eq("user_id", b).execute(),
        lambda: as_a.table("user_subscriptions").delete().eq("user_id", a).execute(),
        lambda: as_a.table("user_subscriptions").insert(
            {"user_id": str(uuid.uuid4()), "tier_id": "enterprise"}).execute(),
        lambda: as_a.table("subscription_tiers").update({"price": 0})
        .eq("id", "enterprise").execute(),
    ]
    for attempt in attempts:
        with pytest.raises(APIError) as refused:
            attempt()
        assert refused.value.code == "42501"
    assert store.get_subscription(a)["tier_id"] == store.get_subscription(b)["tier_id"] == "free"
    assert store.get_tier("enterprise")["price"] == 199
    # and a user's token reads no one else's subscription, even without the user filter
    rows = as_a.table("user_subscriptions").select("user_id").execute().data
    assert [r["user_id"] for r in rows] == [a]
