r"""Benchmark: the conversation store (utils.store.sql.SqlStore) on PostgreSQL with one big
owner — 10,000 conversations and 1,000,000 messages — plus other owners' rows.

    .venv/bin/python bench/conversations.py
    .venv/bin/python bench/conversations.py \
        --database-url postgresql://postgres@127.0.0.1:5432/test \
        --conversations 10000 --messages 1000000 --repeat 200

A fresh database `dana_bench_conv_<random>` is created next to --database-url's database
(127.0.0.1 only), migrated with the app's Alembic migrations, seeded with generate_series,
ANALYZEd, measured in-process through the real store inside an app context, and dropped at
the end (also on error or Ctrl-C).

Measured (p50/p99 over --repeat calls, scenarios interleaved round by round), each as a
ratio to a primary-key lookup (`db.session.get(Conversation, id)` on an empty identity
map) measured in the same run:
  (a) conversation list, first page (limit 50)
  (b) conversation list, the 100th page (keyset cursor reached by walking 99 pages)
  (c) newest page of messages of the biggest conversation (limit 50), and its 100th page
  (d) filtered lists: status=pending, label=vip
  (e) text search q= (a frequent word and a word that matches nothing)
It also counts the SQL statements each list call sends (a `before_cursor_execute`
listener; no N+1 means 1) and prints EXPLAIN (ANALYZE, BUFFERS) summaries.

When migrations/versions/0007_store_indexes.py exists, the schema is first built up to 0006
and measured ("before"), then upgraded to head on the same data and measured again
("after"). Then what-if passes on the same data (each can be turned off):
  --what-if-desc-index  (a)-(c) with (owner_id, last_message_at DESC, id DESC) and
                        (conversation_id, created_at DESC, id DESC) instead of the ASC indexes
  --what-if-row-keyset  (a)-(c) with the cursor condition written as a row-value comparison,
                        (t, id) < (:t, :id) — a proposed change to sql.py's _keyset_after,
                        patched in this process only
  --what-if-trigram     (e) with a pg_trgm GIN index on lower(messages.text)
The what-if indexes are created in the throw-away database only.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import random
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and the app importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    FERNET_KEY,
    JWT_SECRET_KEY,
    SECRET_KEY,
    database,
    percentile,
    print_table,
    raise_on_sigterm,
    require_loopback_url,
    temp_workdir,
)

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
PAGE = 50
FREQUENT_WORD = "refund"  # in ~1% of the messages
RARE_WORD = "zyxwvut"  # in no message: the worst case for a LIKE search


# ---------------------------------------------------------------------------- database


def build_app(work: Path, database_url: str):
    """The real app, built like the tests build it (fixed secrets, no .env)."""
    from app import create_app
    from utils.config import load_settings

    settings = load_settings(
        _env_file=None,
        DANA_ENV="test",
        DATABASE_URL=database_url,
        INSTANCE_PATH=str(work / "instance"),
        SECRET_KEY=SECRET_KEY,
        JWT_SECRET_KEY=JWT_SECRET_KEY,
        ENCRYPTION_KEYS=FERNET_KEY,
        LOG_LEVEL="WARNING",
        RATE_LIMIT_ENABLED=False,
    )
    return create_app(settings)


def migrate_to(revision: str) -> None:
    from flask_migrate import upgrade

    from app import MIGRATIONS_DIR

    logging.disable(logging.INFO)  # Alembic's per-revision INFO lines
    try:
        upgrade(directory=MIGRATIONS_DIR, revision=revision)
    finally:
        logging.disable(logging.NOTSET)


# ---------------------------------------------------------------------------- seeding


@dataclass
class Seed:
    owner_id: str
    other_owner_ids: list[str]
    conversation_ids: list[str]  # the main owner's, any order
    big_conversation_id: str  # the main owner's conversation with the most messages
    seconds: float = 0.0
    counts: dict = field(default_factory=dict)


def seed(args) -> Seed:
    """One owner with args.conversations conversations and args.messages messages, other
    owners with their own rows interleaved in time; every derived column consistent.
    """
    from sqlalchemy import text

    from models_db import User, db

    started = time.perf_counter()
    owners = [
        User(email=f"owner{i}@bench.example", password_hash="!", name=f"Owner {i}")
        for i in range(1 + args.other_owners)
    ]
    db.session.add_all(owners)
    db.session.commit()
    owner_ids = [u.id for u in owners]
    main, others = owner_ids[0], owner_ids[1:]

    C, M, B = args.conversations, args.messages, args.big_conversations
    per_big = args.big_messages
    if B * per_big >= M or B >= C:
        raise SystemExit("bench: --big-conversations x --big-messages must be < --messages")
    OC = args.other_conversations  # per other owner
    OM = args.other_messages  # in total over the other owners
    other_total = OC * len(others)

    conn = db.session.connection()
    ex = lambda sql, **p: conn.execute(text(sql), p)  # noqa: E731
    ex("SET LOCAL synchronous_commit = off")
    ex("SET LOCAL maintenance_work_mem = '256MB'")
    ex("SELECT setseed(0.42)")
    # n = 1..C: the main owner's conversations (1..B are the big ones); then the others'.
    ex(
        """CREATE TEMP TABLE bench_conv ON COMMIT DROP AS
          SELECT n,
                 CASE WHEN n <= :c THEN :main
                      ELSE ((:others)::text[])[1 + (n - :c - 1) % :n_others] END AS owner_id,
                 gen_random_uuid()::text AS conv_id, gen_random_uuid()::text AS contact_id,
                 now() - interval '400 days' + n * interval '1 second' AS created
          FROM generate_series(1, :total) AS n""",
        c=C,
        main=main,
        others=others or [main],
        n_others=max(1, len(others)),
        total=C + other_total,
    )
    ex("CREATE UNIQUE INDEX ON bench_conv (n)")
    ex("ANALYZE bench_conv")
    ex("""INSERT INTO contacts (id, owner_id, platform, platform_user_id, name, first_name,
                                last_name, profile, created_at, updated_at)
          SELECT contact_id, owner_id, 'facebook', 'psid_' || n, 'Customer ' || n, 'Customer',
                 n::text, '{}', created, created
          FROM bench_conv""")
    ex("""INSERT INTO conversations (id, owner_id, platform, platform_account_id, contact_id,
                                     status, labels, ai_enabled, last_message_at, unread_count,
                                     message_count, created_at, updated_at)
          SELECT conv_id, owner_id, 'facebook', 'page_' || owner_id, contact_id,
                 CASE WHEN n % 10 = 3 THEN 'pending' WHEN n % 10 IN (5, 6, 7) THEN 'resolved'
                      ELSE 'open' END,
                 (CASE WHEN n % 20 = 1 THEN '["vip"]' WHEN n % 7 = 2 THEN '["billing", "returning"]'
                       ELSE '[]' END)::json,
                 true, created, 0, 0, created, created
          FROM bench_conv""")
    # Messages: g = 1..M for the main owner (the first B*per_big in the big conversations,
    # the rest round-robin over the others), then M+1..M+OM round-robin over other owners'.
    # Timestamps are spread at random over the past year, so owners interleave in time.
    ex(
        """INSERT INTO messages (id, owner_id, conversation_id, direction, sender_type, text,
                                attachments, platform, platform_message_id, status, is_note,
                                metadata, created_at, updated_at)
          SELECT gen_random_uuid()::text, c.owner_id, c.conv_id,
                 CASE WHEN g % 2 = 0 THEN 'inbound' ELSE 'outbound' END,
                 CASE WHEN g % 2 = 0 THEN 'contact' ELSE 'ai' END,
                 CASE WHEN g % 101 = 0 THEN 'I would like a refund for order #' || g
                      ELSE 'Hello, where is my parcel ' || g || '? Thanks a lot' END,
                 '[]', 'facebook', 'm_bench_' || g,
                 CASE WHEN g % 2 = 0 THEN 'received' ELSE 'delivered' END, false, '{}', t.ts, t.ts
          FROM (SELECT g,
                       CASE WHEN g <= :big_total THEN (g - 1) / :per_big + 1
                            WHEN g <= :m THEN :b + 1 + (g - :big_total - 1) % (:c - :b)
                            ELSE :c + 1 + (g - :m - 1) % :other_total END AS n
                FROM generate_series(1, :m + :om) AS g) AS s
          JOIN bench_conv c ON c.n = s.n
          CROSS JOIN LATERAL (SELECT now() - random() * interval '365 days'
                                     - (g % 1000) * interval '1 microsecond' AS ts) AS t""",
        big_total=B * per_big,
        per_big=per_big,
        m=M,
        b=B,
        c=C,
        other_total=max(1, other_total),
        om=OM if other_total else 0,
    )
    # Derived conversation columns, consistent with the messages.
    ex("""UPDATE conversations AS cv
          SET last_message_at = a.last_at, last_inbound_at = a.last_in, message_count = a.cnt,
              unread_count = a.cnt_in % 4, last_message_preview = left(a.last_text, 200),
              updated_at = a.last_at
          FROM (SELECT DISTINCT ON (conversation_id) conversation_id,
                       max(created_at) OVER w AS last_at,
                       max(created_at) FILTER (WHERE direction = 'inbound') OVER w AS last_in,
                       count(*) OVER w AS cnt,
                       count(*) FILTER (WHERE direction = 'inbound') OVER w AS cnt_in,
                       text AS last_text
                FROM messages
                WINDOW w AS (PARTITION BY conversation_id)
                ORDER BY conversation_id, created_at DESC, id DESC) AS a
          WHERE a.conversation_id = cv.id""")
    big = conn.execute(text("SELECT conv_id FROM bench_conv WHERE n = 1")).scalar_one()
    ids = list(
        conn.execute(text("SELECT conv_id FROM bench_conv WHERE n <= :c"), {"c": C}).scalars()
    )
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("users", "contacts", "conversations", "messages"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
        conn.execute(text("CHECKPOINT"))  # no seeding write-back during the measurements
    counts = {
        t: db.session.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
        for t in ("contacts", "conversations", "messages")
    }
    counts["owner_messages"] = db.session.execute(
        text("SELECT count(*) FROM messages WHERE owner_id = :o"), {"o": main}
    ).scalar_one()
    counts["big_conversation_messages"] = db.session.execute(
        text("SELECT message_count FROM conversations WHERE id = :i"), {"i": big}
    ).scalar_one()
    bad = db.session.execute(
        text(
            """SELECT count(*) FROM conversations cv
           WHERE message_count <> (SELECT count(*) FROM messages m WHERE m.conversation_id = cv.id)
              OR last_message_at <> (SELECT max(created_at) FROM messages m
                                     WHERE m.conversation_id = cv.id)"""
        )
    ).scalar_one()
    if bad:
        raise RuntimeError(f"seeding left {bad} conversations inconsistent")
    db.session.commit()
    return Seed(main, others, ids, big, time.perf_counter() - started, counts)


# ---------------------------------------------------------------------------- measuring


class StatementLog:
    """Collects (statement, parameters) of every cursor execute while `recording`."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.recording = False
        self.items: list[tuple[str, object]] = []
        self.engine = engine
        event.listen(engine, "before_cursor_execute", self._on)

    def _on(self, conn, cursor, statement, parameters, context, executemany):
        if self.recording:
            self.items.append((statement, parameters))

    @contextmanager
    def record(self):
        self.items, self.recording = [], True
        try:
            yield self.items
        finally:
            self.recording = False

    def close(self):
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._on)


@dataclass
class Scenario:
    key: str
    label: str
    call: object  # () -> Page | object
    reps: int
    explain: bool = False
    samples: list[float] = field(default_factory=list)
    statements: int | None = None
    captured: tuple[str, object] | None = None
    plan: list[str] = field(default_factory=list)
    items: int | None = None

    def p(self, q: float) -> float:
        return percentile(self.samples, q) * 1000.0


def build_scenarios(store, s: Seed, args, cursors: dict) -> list[Scenario]:
    from models_db import db
    from utils.store import ConversationFilters
    from utils.store.sql_models import Conversation

    F = ConversationFilters
    ids = itertools.cycle(random.Random(7).sample(s.conversation_ids, len(s.conversation_ids)))
    o, n, fast, slow = s.owner_id, args.repeat, args.repeat, args.search_repeat
    return [
        Scenario(
            "pk",
            "pk lookup: session.get(Conversation, id)",
            lambda: db.session.get(Conversation, next(ids)),
            n,
        ),
        Scenario(
            "a",
            "(a) conversations, first page",
            lambda: store.list_conversations(o, F(), PAGE, None),
            fast,
            explain=True,
        ),
        Scenario(
            "b",
            f"(b) conversations, page {args.pages}",
            lambda: store.list_conversations(o, F(), PAGE, cursors["conv"]),
            fast,
            explain=True,
        ),
        Scenario(
            "c",
            "(c) messages of the biggest conversation, newest page",
            lambda: store.list_messages(o, s.big_conversation_id, PAGE, None),
            fast,
            explain=True,
        ),
        Scenario(
            "c2",
            f"(c) same conversation, messages page {args.pages}",
            lambda: store.list_messages(o, s.big_conversation_id, PAGE, cursors["msg"]),
            fast,
            explain=True,
        ),
        Scenario(
            "d1",
            "(d) conversations status=pending",
            lambda: store.list_conversations(o, F(status="pending"), PAGE, None),
            fast,
            explain=True,
        ),
        Scenario(
            "d2",
            "(d) conversations label=vip",
            lambda: store.list_conversations(o, F(label="vip"), PAGE, None),
            fast,
            explain=True,
        ),
        Scenario(
            "e1",
            f"(e) search q={FREQUENT_WORD} (~1% of messages)",
            lambda: store.list_conversations(o, F(q=FREQUENT_WORD), PAGE, None),
            slow,
            explain=True,
        ),
        Scenario(
            "e2",
            f"(e) search q={RARE_WORD} (no match: full scan)",
            lambda: store.list_conversations(o, F(q=RARE_WORD), PAGE, None),
            slow,
            explain=True,
        ),
    ]


def walk_cursor(fetch, pages: int) -> tuple[str | None, float]:
    """Follow next_cursor through `pages - 1` pages; the cursor of page `pages` and the time."""
    from models_db import db

    t0 = time.perf_counter()
    cursor = None
    for _ in range(pages - 1):
        page = fetch(cursor)
        db.session.expunge_all()
        cursor = page.next_cursor
        if cursor is None:
            break
    db.session.rollback()
    return cursor, time.perf_counter() - t0


def explain(statement: str, parameters) -> list[str]:
    from models_db import db

    conn = db.session.connection()
    rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
    db.session.rollback()
    return [r[0] for r in rows]


_INDEX = re.compile(r"(?:Index(?: Only)? Scan(?: Backward)? using|Bitmap Index Scan on) (\S+)")
_SEQ = re.compile(r"Seq Scan on (\S+)")


def plan_buffers(plan: list[str]) -> int | None:
    """Shared buffers (hit + read) of the top plan node: a machine-independent cost."""
    for line in plan:
        m = re.search(r"Buffers: shared ([^,\n]+)", line)
        if m:
            return sum(int(v) for v in re.findall(r"(?:hit|read)=(\d+)", m.group(1)))
    return None


def plan_summary(plan: list[str]) -> dict:
    text = "\n".join(plan)
    sorts = [
        ln.strip()
        for ln in plan
        if re.match(r"(?:->\s+)?(?:Incremental )?Sort\s+\(cost", ln.strip())
    ]
    sort_methods = re.findall(r"Sort Method: ([^\n]+)", text)
    removed = sum(int(x) for x in re.findall(r"Rows Removed by Filter: (\d+)", text))
    buffers = re.search(r"Buffers: ([^\n]+)", text)
    exec_ms = re.search(r"Execution Time: ([\d.]+) ms", text)
    return {
        "top": re.sub(r"\s+\(cost=.*", "", plan[0]).strip() if plan else "?",
        "indexes": sorted(set(_INDEX.findall(text))),
        "seq": sorted(set(_SEQ.findall(text))),
        "sorts": [re.sub(r"\s+\(cost=.*", "", s).lstrip("-> ").strip() for s in sorts],
        "sort_methods": sort_methods,
        "removed": removed,
        "buffers": buffers.group(1).strip() if buffers else "",
        "exec_ms": float(exec_ms.group(1)) if exec_ms else float("nan"),
    }


def measure(
    store,
    s: Seed,
    args,
    log: StatementLog,
    title: str,
    keyset_override=None,
    only: tuple[str, ...] | None = None,
) -> tuple[list[Scenario], dict]:
    """Run the scenarios (all, or the keys in `only` plus the pk baseline): one
    counted/explained call each, then interleaved timed rounds.
    """
    import utils.store.sql as sqlmod
    from models_db import db
    from utils.store import ConversationFilters

    original = sqlmod._keyset_after
    if keyset_override is not None:
        sqlmod._keyset_after = keyset_override
    try:
        cursors, walks = {}, {}
        cursors["conv"], walks["conv"] = walk_cursor(
            lambda c: store.list_conversations(s.owner_id, ConversationFilters(), PAGE, c),
            args.pages,
        )
        cursors["msg"], walks["msg"] = walk_cursor(
            lambda c: store.list_messages(s.owner_id, s.big_conversation_id, PAGE, c), args.pages
        )
        if cursors["conv"] is None or cursors["msg"] is None:
            raise SystemExit(f"bench: fewer than {args.pages} pages; seed more rows")
        scenarios = [
            sc
            for sc in build_scenarios(store, s, args, cursors)
            if only is None or sc.key == "pk" or sc.key in only
        ]
        for sc in scenarios:  # warm-up + statement count + plan capture
            sc.call()
            db.session.expunge_all()
            with log.record() as items:
                result = sc.call()
            sc.statements = len(items)
            sc.items = len(getattr(result, "items", [None]))
            db.session.expunge_all()
            db.session.rollback()
            if sc.explain and items:
                sc.captured = items[-1]
                sc.plan = explain(*sc.captured)
        rounds = max(1, args.rounds)
        for r in range(rounds):
            for sc in scenarios if r % 2 == 0 else scenarios[::-1]:
                n = sc.reps // rounds + (1 if r < sc.reps % rounds else 0)
                for _ in range(n):
                    if sum(sc.samples) > args.time_limit and len(sc.samples) >= 3:
                        break  # this scenario's time budget is spent
                    t0 = time.perf_counter()
                    sc.call()
                    sc.samples.append(time.perf_counter() - t0)
                    db.session.expunge_all()
                db.session.rollback()
        print(
            f"\n== {title}: walked {args.pages - 1} conversation pages in "
            f"{walks['conv']:.2f} s, {args.pages - 1} message pages in {walks['msg']:.2f} s",
            flush=True,
        )
        return scenarios, walks
    finally:
        sqlmod._keyset_after = original


def report(scenarios: list[Scenario], full_plans: bool) -> None:
    pk = next(sc for sc in scenarios if sc.key == "pk")
    base50, base99 = pk.p(50), pk.p(99)
    rows = []
    for sc in scenarios:
        rows.append(
            [
                sc.label,
                str(len(sc.samples)),
                f"{sc.p(50):.3f}",
                f"{sc.p(99):.3f}",
                f"{sc.p(50) / base50:.1f}",
                f"{sc.p(99) / base99:.1f}",
                str(sc.statements),
                str(sc.items),
            ]
        )
    print_table(
        ["scenario", "n", "p50 ms", "p99 ms", "p50/pk", "p99/pk", "SQL/call", "items"], rows
    )
    print(
        "(p50/pk, p99/pk = the scenario's percentile divided by the pk lookup's; SQL/call = "
        "statements sent by one call, counted by a before_cursor_execute listener)"
    )
    print("\nEXPLAIN (ANALYZE, BUFFERS) of the statement each call sends:")
    for sc in scenarios:
        if not sc.plan:
            continue
        ps = plan_summary(sc.plan)
        index = ", ".join(ps["indexes"]) or "NO INDEX"
        extra = []
        if ps["seq"]:
            extra.append("SEQ SCAN on " + ", ".join(ps["seq"]))
        if ps["sorts"]:
            extra.append(
                "sort: "
                + "; ".join(
                    f"{s} [{m}]"
                    for s, m in itertools.zip_longest(
                        ps["sorts"], ps["sort_methods"], fillvalue="?"
                    )
                )
            )
        if ps["removed"]:
            extra.append(f"rows removed by filter {ps['removed']}")
        print(f"  {sc.key:<3} top: {ps['top']}")
        print(
            f"      index: {index}; {'; '.join(extra) or 'no seq scan, no sort'}; "
            f"buffers {ps['buffers']}; {ps['exec_ms']:.3f} ms"
        )
        if full_plans or sc.key in ("a", "b", "c"):
            for line in sc.plan:
                if not line.strip().startswith(("Planning", "Buffers", "Execution")):
                    print("        | " + line)


# What-if schema changes, applied to the throw-away database only: (do, undo) statements.
DESC_INDEXES = (
    [
        "DROP INDEX ix_conversations_owner_last",
        "CREATE INDEX ix_conversations_owner_last ON conversations "
        "(owner_id, last_message_at DESC, id DESC)",
        "DROP INDEX ix_messages_conversation_created",
        "CREATE INDEX ix_messages_conversation_created ON messages "
        "(conversation_id, created_at DESC, id DESC)",
        "ANALYZE conversations",
        "ANALYZE messages",
    ],
    [
        "DROP INDEX ix_conversations_owner_last",
        "CREATE INDEX ix_conversations_owner_last ON conversations (owner_id, last_message_at, id)",
        "DROP INDEX ix_messages_conversation_created",
        "CREATE INDEX ix_messages_conversation_created ON messages "
        "(conversation_id, created_at, id)",
        "ANALYZE conversations",
        "ANALYZE messages",
    ],
)
TRIGRAM_INDEX = (
    [
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        "CREATE INDEX ix_bench_messages_text_trgm ON messages USING gin (lower(text) gin_trgm_ops)",
        "ANALYZE messages",
    ],
    ["DROP INDEX ix_bench_messages_text_trgm", "ANALYZE messages"],
)


@contextmanager
def temporary_ddl(statements: tuple[list[str], list[str]]):
    """Apply `do` statements (autocommit), yield their duration, then apply `undo`."""
    from models_db import db

    do, undo = statements
    db.session.remove()
    t0 = time.perf_counter()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("SET maintenance_work_mem = '256MB'")
        for sql in do:
            conn.exec_driver_sql(sql)
    try:
        yield time.perf_counter() - t0
    finally:
        db.session.remove()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("SET maintenance_work_mem = '256MB'")
            for sql in undo:
                conn.exec_driver_sql(sql)


def row_value_keyset(col_time, col_id, cursor, descending):
    """Proposed _keyset_after: (time, id) < (:t, :id) — one index range, not a filter."""
    from sqlalchemy import literal, true, tuple_

    from utils import pagination

    if not cursor:
        return true()
    if hasattr(pagination, "decode_time_cursor"):
        when, row_id = pagination.decode_time_cursor(cursor)
    else:
        when, row_id = pagination.decode_cursor(cursor, 2)
        when = datetime.fromisoformat(when)
    key = tuple_(col_time, col_id)
    bound = tuple_(literal(when, col_time.type), literal(row_id, col_id.type))
    return key < bound if descending else key > bound


# ---------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--database-url",
        default=DEFAULT_PG,
        help=f"PostgreSQL server on 127.0.0.1 (default {DEFAULT_PG}); a fresh "
        "database is created on it and dropped afterwards",
    )
    p.add_argument("--conversations", type=int, default=10_000)
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument(
        "--big-conversations",
        type=int,
        default=10,
        help="conversations holding --big-messages messages each (default 10)",
    )
    p.add_argument("--big-messages", type=int, default=10_000)
    p.add_argument("--other-owners", type=int, default=3)
    p.add_argument(
        "--other-conversations",
        type=int,
        default=5_000,
        help="conversations per other owner (default 5000)",
    )
    p.add_argument(
        "--other-messages",
        type=int,
        default=150_000,
        help="messages of the other owners in total (default 150000)",
    )
    p.add_argument("--pages", type=int, default=100, help="the deep page's number (default 100)")
    p.add_argument("--repeat", type=int, default=200, help="timed calls per scenario")
    p.add_argument("--search-repeat", type=int, default=20, help="timed calls per q= scenario")
    p.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    p.add_argument(
        "--time-limit",
        type=float,
        default=20.0,
        help="timed seconds per scenario per measurement pass (default 20)",
    )
    p.add_argument(
        "--what-if-row-keyset",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure with a row-value keyset condition (default on)",
    )
    p.add_argument(
        "--what-if-desc-index",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure with DESC composite indexes (default on)",
    )
    p.add_argument(
        "--what-if-trigram",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure q= with a pg_trgm GIN index (default on)",
    )
    p.add_argument("--full-plans", action="store_true", help="print every plan in full")
    args = p.parse_args(argv)
    if min(args.conversations, args.messages, args.pages, args.repeat, args.search_repeat) < 1:
        p.error("counts must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    raise_on_sigterm()
    started = time.perf_counter()
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("bench: --database-url must be a PostgreSQL URL")
    require_loopback_url(args.database_url, "--database-url")
    with temp_workdir("dana-bench-conv-") as work, database(work, args.database_url) as url:
        app = build_app(work, url)
        try:
            with app.app_context():
                from models_db import db
                from utils.store import get_store

                migrate_to("head")
                print(
                    f"dana conversation store bench: PostgreSQL, database "
                    f"{url.rsplit('/', 1)[1]}, schema head",
                    flush=True,
                )
                s = seed(args)
                c = s.counts
                print(
                    f"seeded in {s.seconds:.1f} s: {c['conversations']} conversations, "
                    f"{c['contacts']} contacts, {c['messages']} messages in total; the owner "
                    f"has {args.conversations} conversations and {c['owner_messages']} "
                    f"messages, the biggest conversation {c['big_conversation_messages']}; "
                    f"{args.other_owners} other owners",
                    flush=True,
                )
                store = get_store()
                log = StatementLog(db.engine)
                passes = []
                sc, _ = measure(store, s, args, log, "schema head")
                report(sc, args.full_plans)
                passes.append(("as is", sc))
                if args.what_if_desc_index:
                    title = "what-if: DESC composite indexes instead of the ASC ones"
                    with temporary_ddl(DESC_INDEXES):
                        sc, _ = measure(store, s, args, log, title, only=("a", "b", "c", "c2"))
                    report(sc, args.full_plans)
                    passes.append(("DESC indexes", sc))
                if args.what_if_row_keyset:
                    title = "what-if: row-value keyset condition in _keyset_after"
                    sc, _ = measure(
                        store,
                        s,
                        args,
                        log,
                        title,
                        keyset_override=row_value_keyset,
                        only=("a", "b", "c", "c2"),
                    )
                    report(sc, args.full_plans)
                    passes.append(("row keyset", sc))
                if args.what_if_trigram:
                    title = "what-if: pg_trgm GIN index on lower(messages.text)"
                    try:
                        with temporary_ddl(TRIGRAM_INDEX) as built:
                            print(f"\n(trigram index built in {built:.1f} s)")
                            sc, _ = measure(store, s, args, log, title, only=("e1", "e2"))
                        report(sc, args.full_plans)
                        passes.append(("trigram index", sc))
                    except Exception as exc:  # noqa: BLE001 - extension missing or not allowed
                        db.session.rollback()
                        print(
                            f"\n{title}: skipped ({type(exc).__name__}: {str(exc).splitlines()[0]})"
                        )
                log.close()
                if len(passes) > 1:
                    print(
                        "\np50 by pass: ms (ratio to that pass's own pk lookup, and the "
                        "buffers the statement touched in EXPLAIN ANALYZE). Compare ratios\n"
                        "and buffers: the machine's speed drifts between passes. '-' = not "
                        "measured in that pass."
                    )
                    rows = []
                    for first in passes[0][1]:
                        row = [first.label]
                        for _, scs in passes:
                            x = next((y for y in scs if y.key == first.key), None)
                            pk = next(y for y in scs if y.key == "pk")
                            if x is None:
                                row.append("-")
                                continue
                            buf = plan_buffers(x.plan)
                            row.append(
                                f"{x.p(50):.3f} ({x.p(50) / pk.p(50):.1f}x"
                                + (f", {buf} buf)" if buf is not None else ")")
                            )
                        rows.append(row)
                    print_table(["scenario"] + [t for t, _ in passes], rows)
                bad = [
                    (t, x.label, x.statements)
                    for t, scs in passes
                    for x in scs
                    if x.key != "pk" and not 1 <= (x.statements or 0) <= 2
                ]
                db.session.remove()
                db.engine.dispose()
        finally:
            with app.app_context():
                from models_db import db

                db.engine.dispose()
    print(f"\n[total {time.perf_counter() - started:.0f} s]")
    if bad:
        print(
            "bench: N+1 — list calls sending more than 2 statements: " + repr(bad), file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; database dropped", file=sys.stderr)
        sys.exit(130)
