r"""Benchmark: the conversation store (utils.store.sql.SqlStore) on SQLite and PostgreSQL with
one big owner — 10,000 conversations and 1,000,000 messages by default — plus other owners'
rows interleaved in time.

    .venv/bin/python bench/conversations.py                      # SQLite file in a temp dir
    .venv/bin/python bench/conversations.py \
        --database-url postgresql://postgres@127.0.0.1:5432/test --messages 1000000

SQLite: a file in a temp dir; PostgreSQL: a fresh database next to --database-url's
(127.0.0.1 only), dropped at the end. Either is migrated to head with the app's Alembic
migrations, seeded in SQL (a recursive CTE on SQLite, generate_series on PostgreSQL; search
indexes maintained as in production), analyzed, and measured in-process through the real
store inside an app context.

Every figure is a p99 over --repeat calls (scenarios interleaved round by round) and is
compared with a primary-key lookup (`db.session.get(Conversation, id)` on an empty identity
map) measured in the same run:
  list      conversation list, first page (limit 50)           goal p99 <= 3x pk
  deep      conversation list, page --pages (keyset cursor)     goal p99 <= 3x pk
  newest    newest page of messages of the biggest conversation goal p99 <= 3x pk
  older     that conversation's page --pages                    goal p99 <= 3x pk
  search    q= a word in ~1% of the messages, a case-different substring, and a word in no
            message (the worst case of a scan)                  goal p99 <= 10 ms
  insert    store.add_message (one message, committed): ms per message; on SQLite also without
            the full-text triggers, so the search index's insert cost shows as a ratio
It also counts the SQL statements each list call sends (no N+1: 1). rows() gives the figures
to bench/run.py.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import random
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
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
    temp_workdir,
)

PAGE = 50
FREQUENT_WORD = "refund"  # in ~1% of the messages
CASED_SUBSTRING = "RDER #12"  # a case-different substring of some of those messages
RARE_WORD = "zyxwvut"  # in no message: the worst case for a search
LIST_GOAL = 3.0  # p99 <= 3x the pk lookup's p99
SEARCH_GOAL_MS = 10.0


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
    """Run the app's Alembic migrations up to `revision`."""
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
    conversation_ids: list[str]  # the main owner's, any order
    big_conversation_id: str  # the main owner's conversation with the most messages
    seconds: float = 0.0
    counts: dict = field(default_factory=dict)


def _owners(n: int) -> list[str]:
    from models_db import User, db

    owners = [User(email=f"owner{i}@bench.example", password_hash="!", name=f"Owner {i}")
              for i in range(n)]
    db.session.add_all(owners)
    db.session.commit()
    return [u.id for u in owners]


def _check_sizes(args) -> None:
    if args.big_conversations * args.big_messages >= args.messages or \
            args.big_conversations >= args.conversations:
        raise SystemExit("bench: --big-conversations x --big-messages must be < --messages")


def message_text(g: str, concat: str) -> str:
    """SQL for the seeded text of message number g: ~1% mention a refund and an order."""
    return (f"CASE WHEN {g} % 101 = 0 THEN 'I would like a refund for order #' {concat} {g} "
            f"ELSE 'Hello, where is my parcel ' {concat} {g} {concat} '? Thanks a lot' END")


def seed_sqlite(args) -> Seed:
    """The same shape as seed_postgresql, with recursive CTEs (SQLite has no generate_series
    in Python's build); the messages' full-text triggers fire as in production.
    """
    from sqlalchemy import text

    from models_db import db

    started = time.perf_counter()
    ids = _owners(1 + args.other_owners)
    main, others = ids[0], ids[1:]
    C, M, B, per_big = args.conversations, args.messages, args.big_conversations, args.big_messages
    OC, OM = args.other_conversations, args.other_messages
    other_total = OC * len(others)
    conn = db.session.connection()
    ex = lambda sql, **p: conn.execute(text(sql), p)  # noqa: E731
    ex("CREATE TEMP TABLE bench_owner (k INTEGER PRIMARY KEY, id TEXT)")
    for k, o in enumerate(others):
        ex("INSERT INTO bench_owner VALUES (:k, :o)", k=k, o=o)
    ex("""CREATE TEMP TABLE bench_conv (n INTEGER PRIMARY KEY, owner_id TEXT, conv_id TEXT,
                                        contact_id TEXT, created TEXT)""")
    ex("""WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :total)
          INSERT INTO bench_conv
          SELECT n, CASE WHEN n <= :c THEN :main
                         ELSE (SELECT id FROM bench_owner WHERE k = (n - :c - 1) % :n_others) END,
                 lower(hex(randomblob(16))), lower(hex(randomblob(16))),
                 strftime('%Y-%m-%d %H:%M:%S', 'now', '-400 days', '+' || n || ' seconds')
                   || '.000000'
          FROM s""", total=C + other_total, c=C, main=main, n_others=max(1, len(others)))
    ex("""INSERT INTO contacts (id, owner_id, platform, platform_user_id, name, first_name,
                                last_name, profile, created_at, updated_at)
          SELECT contact_id, owner_id, 'facebook', 'psid_' || n, 'Customer ' || n, 'Customer',
                 n, '{}', created, created FROM bench_conv""")
    ex("""INSERT INTO conversations (id, owner_id, platform, platform_account_id, contact_id,
                                     status, labels, ai_enabled, last_message_at, unread_count,
                                     message_count, created_at, updated_at)
          SELECT conv_id, owner_id, 'facebook', 'page_' || owner_id, contact_id,
                 CASE WHEN n % 10 = 3 THEN 'pending' WHEN n % 10 IN (5, 6, 7) THEN 'resolved'
                      ELSE 'open' END,
                 CASE WHEN n % 20 = 1 THEN '["vip"]' WHEN n % 7 = 2
                      THEN '["billing", "returning"]' ELSE '[]' END,
                 1, created, 0, 0, created, created FROM bench_conv""")
    ex(f"""WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < :total)
          INSERT INTO messages (id, owner_id, conversation_id, direction, sender_type, text,
                                attachments, platform, platform_message_id, status, is_note,
                                metadata, created_at, updated_at)
          SELECT lower(hex(randomblob(16))), c.owner_id, c.conv_id,
                 CASE WHEN g % 2 = 0 THEN 'inbound' ELSE 'outbound' END,
                 CASE WHEN g % 2 = 0 THEN 'contact' ELSE 'ai' END,
                 {message_text('g', '||')},
                 '[]', 'facebook', 'm_bench_' || g,
                 CASE WHEN g % 2 = 0 THEN 'received' ELSE 'delivered' END, 0, '{{}}', t.ts, t.ts
          FROM (SELECT g, CASE WHEN g <= :big_total THEN (g - 1) / :per_big + 1
                               WHEN g <= :m THEN :b + 1 + (g - :big_total - 1) % (:c - :b)
                               ELSE :c + 1 + (g - :m - 1) % :other_total END AS n,
                       strftime('%Y-%m-%d %H:%M:%S', 'now',
                                '-' || (abs(random()) % 31536000) || ' seconds')
                         || '.' || printf('%06d', abs(random()) % 1000000) AS ts
                FROM s) AS t
          JOIN bench_conv c ON c.n = t.n""",
       total=M + (OM if other_total else 0), big_total=B * per_big, per_big=per_big, m=M, b=B,
       c=C, other_total=max(1, other_total))
    ex("""UPDATE conversations AS cv
          SET last_message_at = a.last_at, last_inbound_at = a.last_in, message_count = a.cnt,
              unread_count = a.cnt_in % 4, updated_at = a.last_at,
              last_message_preview = (SELECT substr(m.text, 1, 200) FROM messages m
                                      WHERE m.conversation_id = cv.id
                                      ORDER BY m.created_at DESC, m.id DESC LIMIT 1)
          FROM (SELECT conversation_id, max(created_at) AS last_at,
                       max(CASE WHEN direction = 'inbound' THEN created_at END) AS last_in,
                       count(*) AS cnt, sum(direction = 'inbound') AS cnt_in
                FROM messages GROUP BY conversation_id) AS a
          WHERE a.conversation_id = cv.id""")
    big = ex("SELECT conv_id FROM bench_conv WHERE n = 1").scalar_one()
    conv_ids = list(ex("SELECT conv_id FROM bench_conv WHERE n <= :c", c=C).scalars())
    ex("DROP TABLE bench_conv")
    ex("DROP TABLE bench_owner")
    db.session.commit()
    with db.engine.connect() as c:
        c.exec_driver_sql("ANALYZE")  # writes sqlite_stat1: a transaction of its own (app.py)
        c.commit()
    with db.engine.connect() as c:  # a checkpoint cannot run inside a write transaction
        c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return Seed(main, conv_ids, big, time.perf_counter() - started, _counts(main, big))


def _counts(main: str, big: str) -> dict:
    from sqlalchemy import text

    from models_db import db

    one = lambda sql, **p: db.session.execute(text(sql), p).scalar_one()  # noqa: E731
    counts = {t: one(f"SELECT count(*) FROM {t}") for t in ("contacts", "conversations",
                                                             "messages")}
    counts["owner_messages"] = one("SELECT count(*) FROM messages WHERE owner_id = :o", o=main)
    counts["big_conversation_messages"] = one(
        "SELECT message_count FROM conversations WHERE id = :i", i=big)
    bad = one("""SELECT count(*) FROM conversations cv
                 WHERE message_count <> (SELECT count(*) FROM messages m
                                         WHERE m.conversation_id = cv.id)
                    OR last_message_at <> (SELECT max(created_at) FROM messages m
                                           WHERE m.conversation_id = cv.id)""")
    db.session.commit()
    if bad:
        raise RuntimeError(f"seeding left {bad} conversations inconsistent")
    return counts


def seed_postgresql(args) -> Seed:
    """One owner with args.conversations conversations and args.messages messages, other
    owners with their own rows interleaved in time; every derived column consistent.
    """
    from sqlalchemy import text

    from models_db import db

    started = time.perf_counter()
    ids = _owners(1 + args.other_owners)
    main, others = ids[0], ids[1:]
    C, M, B, per_big = args.conversations, args.messages, args.big_conversations, args.big_messages
    OC, OM = args.other_conversations, args.other_messages
    other_total = OC * len(others)
    conn = db.session.connection()
    ex = lambda sql, **p: conn.execute(text(sql), p)  # noqa: E731
    ex("SET LOCAL synchronous_commit = off")
    ex("SET LOCAL maintenance_work_mem = '256MB'")
    ex("SELECT setseed(0.42)")
    # n = 1..C: the main owner's conversations (1..B are the big ones); then the others'.
    ex("""CREATE TEMP TABLE bench_conv ON COMMIT DROP AS
          SELECT n,
                 CASE WHEN n <= :c THEN :main
                      ELSE ((:others)::text[])[1 + (n - :c - 1) % :n_others] END AS owner_id,
                 gen_random_uuid()::text AS conv_id, gen_random_uuid()::text AS contact_id,
                 now() - interval '400 days' + n * interval '1 second' AS created
          FROM generate_series(1, :total) AS n""",
       c=C, main=main, others=others or [main], n_others=max(1, len(others)),
       total=C + other_total)
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
                 (CASE WHEN n % 20 = 1 THEN '["vip"]' WHEN n % 7 = 2
                       THEN '["billing", "returning"]' ELSE '[]' END)::json,
                 true, created, 0, 0, created, created
          FROM bench_conv""")
    # Messages: g = 1..M for the main owner (the first B*per_big in the big conversations,
    # the rest round-robin over the others), then M+1..M+OM round-robin over other owners'.
    # Timestamps are spread at random over the past year, so owners interleave in time.
    ex(f"""INSERT INTO messages (id, owner_id, conversation_id, direction, sender_type, text,
                                attachments, platform, platform_message_id, status, is_note,
                                metadata, created_at, updated_at)
          SELECT gen_random_uuid()::text, c.owner_id, c.conv_id,
                 CASE WHEN g % 2 = 0 THEN 'inbound' ELSE 'outbound' END,
                 CASE WHEN g % 2 = 0 THEN 'contact' ELSE 'ai' END,
                 {message_text('g', '||')},
                 '[]', 'facebook', 'm_bench_' || g,
                 CASE WHEN g % 2 = 0 THEN 'received' ELSE 'delivered' END, false, '{{}}',
                 t.ts, t.ts
          FROM (SELECT g,
                       CASE WHEN g <= :big_total THEN (g - 1) / :per_big + 1
                            WHEN g <= :m THEN :b + 1 + (g - :big_total - 1) % (:c - :b)
                            ELSE :c + 1 + (g - :m - 1) % :other_total END AS n
                FROM generate_series(1, :m + :om) AS g) AS s
          JOIN bench_conv c ON c.n = s.n
          CROSS JOIN LATERAL (SELECT now() - random() * interval '365 days'
                                     - (g % 1000) * interval '1 microsecond' AS ts) AS t""",
       big_total=B * per_big, per_big=per_big, m=M, b=B, c=C, other_total=max(1, other_total),
       om=OM if other_total else 0)
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
    big = ex("SELECT conv_id FROM bench_conv WHERE n = 1").scalar_one()
    conv_ids = list(ex("SELECT conv_id FROM bench_conv WHERE n <= :c", c=C).scalars())
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        for table in ("users", "contacts", "conversations", "messages"):
            c.execute(text(f"VACUUM ANALYZE {table}"))
        c.execute(text("CHECKPOINT"))  # no seeding write-back during the measurements
    return Seed(main, conv_ids, big, time.perf_counter() - started, _counts(main, big))


# ---------------------------------------------------------------------------- measuring


class StatementLog:
    """Counts the statements sent to the database while `recording` (a
    before_cursor_execute listener): a list call that sends more than one is an N+1.
    """

    def __init__(self, engine):
        from sqlalchemy import event

        self.recording = False
        self.count = 0
        self.engine = engine
        event.listen(engine, "before_cursor_execute", self._on)

    def _on(self, *_args):
        if self.recording:
            self.count += 1

    @contextmanager
    def record(self):
        self.count, self.recording = 0, True
        try:
            yield self
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
    goal: str = ""  # "ratio" (p99 <= LIST_GOAL x pk) or "ms" (p99 <= SEARCH_GOAL_MS)
    samples: list[float] = field(default_factory=list)
    statements: int | None = None
    items: int | None = None

    def p(self, q: float) -> float:
        return percentile(self.samples, q) * 1000.0


def build_scenarios(store, s: Seed, args, cursors: dict) -> list[Scenario]:
    from models_db import db
    from utils.store import ConversationFilters
    from utils.store.sql_models import Conversation

    F = ConversationFilters
    ids = itertools.cycle(random.Random(7).sample(s.conversation_ids, len(s.conversation_ids)))
    o, n, slow = s.owner_id, args.repeat, args.search_repeat
    big = s.big_conversation_id
    return [
        Scenario("pk", "pk lookup: session.get(Conversation, id)",
                 lambda: db.session.get(Conversation, next(ids)), n),
        Scenario("list", "conversation list, first page",
                 lambda: store.list_conversations(o, F(), PAGE, None), n, "ratio"),
        Scenario("deep", f"conversation list, page {args.pages}",
                 lambda: store.list_conversations(o, F(), PAGE, cursors["conv"]), n, "ratio"),
        Scenario("newest", "newest messages of the biggest conversation",
                 lambda: store.list_messages(o, big, PAGE, None), n, "ratio"),
        Scenario("older", f"that conversation's message page {args.pages}",
                 lambda: store.list_messages(o, big, PAGE, cursors["msg"]), n, "ratio"),
        Scenario("pending", "conversation list, status=pending",
                 lambda: store.list_conversations(o, F(status="pending"), PAGE, None), n),
        Scenario("search", f"search q={FREQUENT_WORD} (~1% of messages)",
                 lambda: store.list_conversations(o, F(q=FREQUENT_WORD), PAGE, None), slow,
                 "ms"),
        Scenario("cased", f"search q={CASED_SUBSTRING} (case-different substring)",
                 lambda: store.list_conversations(o, F(q=CASED_SUBSTRING), PAGE, None), slow,
                 "ms"),
        Scenario("rare", f"search q={RARE_WORD} (no match)",
                 lambda: store.list_conversations(o, F(q=RARE_WORD), PAGE, None), slow, "ms"),
    ]


def walk_cursor(fetch, pages: int) -> str | None:
    """Follow next_cursor through `pages - 1` pages: the cursor of page `pages`."""
    from models_db import db

    cursor = None
    for _ in range(pages - 1):
        cursor = fetch(cursor).next_cursor
        db.session.expunge_all()
        if cursor is None:
            break
    db.session.rollback()
    return cursor


def measure(store, s: Seed, args, log: StatementLog) -> list[Scenario]:
    """One counted call per scenario, then interleaved timed rounds (each scenario within
    its time budget).
    """
    from models_db import db
    from utils.store import ConversationFilters

    cursors = {
        "conv": walk_cursor(lambda c: store.list_conversations(
            s.owner_id, ConversationFilters(), PAGE, c), args.pages),
        "msg": walk_cursor(lambda c: store.list_messages(
            s.owner_id, s.big_conversation_id, PAGE, c), args.pages),
    }
    if cursors["conv"] is None or cursors["msg"] is None:
        raise SystemExit(f"bench: fewer than {args.pages} pages; seed more rows")
    scenarios = build_scenarios(store, s, args, cursors)
    for sc in scenarios:  # warm-up + statement count
        sc.call()
        db.session.expunge_all()
        with log.record():
            result = sc.call()
        sc.statements = log.count
        sc.items = len(getattr(result, "items", [None]))
        db.session.expunge_all()
        db.session.rollback()
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
    return scenarios


def insert_cost(store, s: Seed, n: int) -> dict:
    """Milliseconds per store.add_message (committed) into a small conversation; on SQLite
    also with the messages' triggers (the full-text index) dropped for the time of the
    measurement, run in alternating blocks so both see the same machine load.
    """
    from sqlalchemy import text

    from models_db import db
    from utils.store import NewMessage

    conv = s.conversation_ids[-1]
    counter = itertools.count()

    def add() -> float:
        k = next(counter)
        msg = NewMessage(conversation_id=conv, direction="inbound", sender_type="contact",
                         text=f"Bench insert {k}: is my order #{k} refundable?",
                         platform_message_id=f"m_insert_{k}")
        t0 = time.perf_counter()
        store.add_message(s.owner_id, msg)
        took = time.perf_counter() - t0
        db.session.expunge_all()
        return took

    with_index: list[float] = []
    without: list[float] = []
    sqlite = db.engine.dialect.name == "sqlite"
    triggers = []
    if sqlite:
        triggers = list(db.session.execute(text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
            "AND tbl_name = 'messages'")).all())
        db.session.commit()
    add()  # warm-up
    blocks = 4
    for _ in range(blocks):
        with_index += [add() for _ in range(n // blocks)]
        if triggers:
            for name, _sql in triggers:
                db.session.execute(text(f'DROP TRIGGER "{name}"'))
            db.session.commit()
            try:
                without += [add() for _ in range(n // blocks)]
            finally:
                for _name, sql in triggers:
                    db.session.execute(text(sql))
                db.session.commit()
    out = {"with": percentile(with_index, 50) * 1000, "triggers": len(triggers)}
    if without:
        out["without"] = percentile(without, 50) * 1000
    # (the rows added without the triggers are missing from the index; the database is
    # thrown away next)
    return out


# ---------------------------------------------------------------------------- running


@dataclass
class Result:
    dialect: str
    seed: Seed
    scenarios: list[Scenario]
    insert: dict
    load: float

    def sc(self, key: str) -> Scenario:
        return next(x for x in self.scenarios if x.key == key)


def run(args) -> Result:
    """Seed a fresh database and measure; the database is dropped afterwards."""
    pg = bool(args.database_url) and args.database_url.startswith("postgresql")
    with temp_workdir("dana-bench-conv-") as work, \
            database(work, args.database_url if pg else None) as url:
        app = build_app(work, url)
        try:
            with app.app_context():
                from models_db import db
                from utils.store import get_store

                _check_sizes(args)
                migrate_to("head")
                s = seed_postgresql(args) if pg else seed_sqlite(args)
                store = get_store()
                log = StatementLog(db.engine)
                load = os.getloadavg()[0]
                scenarios = measure(store, s, args, log)
                log.close()
                ins = insert_cost(store, s, args.inserts)
                db.session.remove()
                return Result("postgresql" if pg else "sqlite", s, scenarios, ins, load)
        finally:
            with app.app_context():
                from models_db import db

                db.engine.dispose()


def report(res: Result, out=sys.stdout) -> None:
    """The per-scenario table of one run."""
    pk = res.sc("pk")
    rows = [[sc.label, str(len(sc.samples)), f"{sc.p(50):.3f}", f"{sc.p(99):.3f}",
             f"{sc.p(50) / pk.p(50):.1f}", f"{sc.p(99) / pk.p(99):.1f}", str(sc.statements),
             str(sc.items)] for sc in res.scenarios]
    c = res.seed.counts
    print(f"\n== {res.dialect}: seeded in {res.seed.seconds:.0f} s — {c['conversations']} "
          f"conversations, {c['messages']} messages; the owner has "
          f"{c['owner_messages']} messages, the biggest conversation "
          f"{c['big_conversation_messages']}; load average {res.load:.2f}", file=out)
    print_table(["scenario", "n", "p50 ms", "p99 ms", "p50/pk", "p99/pk", "SQL/call", "items"],
                rows, out=out)
    ins = res.insert
    line = f"insert: store.add_message p50 {ins['with']:.3f} ms"
    if "without" in ins:
        line += (f"; without the full-text triggers {ins['without']:.3f} ms "
                 f"(x{ins['with'] / ins['without']:.2f})")
    print(line, file=out)


def rows_of(res: Result) -> list[dict]:
    """The figures of one run in bench/run.py's row shape."""
    pk = res.sc("pk")
    base = pk.p(99)
    size = f"{res.seed.counts['conversations'] // 1000}k conv / " \
           f"{res.seed.counts['messages'] / 1e6:.2g}M msg"
    out = []
    for sc in res.scenarios:
        if sc.goal == "ratio":
            ratio = sc.p(99) / base
            out.append(dict(figure=f"{sc.label} p99 ({size})", dana=round(sc.p(99), 3),
                            baseline=round(base, 3), unit="ms", ratio=round(ratio, 2),
                            goal=f"<= {LIST_GOAL:g}x pk lookup",
                            passed=ratio <= LIST_GOAL and sc.statements == 1))
        elif sc.goal == "ms":
            out.append(dict(figure=f"{sc.label} p99 ({size})", dana=round(sc.p(99), 3),
                            baseline=round(base, 3), unit="ms", ratio=round(sc.p(99) / base, 2),
                            goal=f"<= {SEARCH_GOAL_MS:g} ms", passed=sc.p(99) <= SEARCH_GOAL_MS))
    ins = res.insert
    if "without" in ins:
        out.append(dict(figure="message insert with full-text index (p50)",
                        dana=round(ins["with"], 3), baseline=round(ins["without"], 3), unit="ms",
                        ratio=round(ins["with"] / ins["without"], 2), goal="report",
                        passed=None))
    return out


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--database-url", default="",
                   help="a PostgreSQL server on 127.0.0.1 (a fresh database is created on it "
                        "and dropped afterwards); empty or sqlite: a SQLite file in a temp dir")
    p.add_argument("--conversations", type=int, default=10_000)
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--big-conversations", type=int, default=10,
                   help="conversations holding --big-messages messages each (default 10)")
    p.add_argument("--big-messages", type=int, default=10_000)
    p.add_argument("--other-owners", type=int, default=3)
    p.add_argument("--other-conversations", type=int, default=5_000,
                   help="conversations per other owner (default 5000)")
    p.add_argument("--other-messages", type=int, default=150_000,
                   help="messages of the other owners in total (default 150000)")
    p.add_argument("--pages", type=int, default=100, help="the deep page's number (default 100)")
    p.add_argument("--repeat", type=int, default=400, help="timed calls per list scenario")
    p.add_argument("--search-repeat", type=int, default=200, help="timed calls per q= scenario")
    p.add_argument("--inserts", type=int, default=400, help="timed message inserts")
    p.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    p.add_argument("--time-limit", type=float, default=20.0,
                   help="timed seconds per scenario (default 20)")
    args = p.parse_args(argv)
    if min(args.conversations, args.messages, args.pages, args.repeat, args.search_repeat) < 1:
        p.error("counts must be positive")
    return args


def rows(database_url: str, argv: list[str] | None = None) -> list[dict]:
    """Run the bench on `database_url` (empty or sqlite: a temp SQLite file; postgresql: a
    fresh database next to it), print its table, and return bench/run.py's rows.
    """
    args = parse_args(["--database-url", database_url or "", *(argv or [])])
    res = run(args)
    report(res)
    return rows_of(res)


def main(argv=None) -> int:
    args = parse_args(argv)
    raise_on_sigterm()
    started = time.perf_counter()
    res = run(args)
    report(res)
    failed = [r["figure"] for r in rows_of(res) if r["passed"] is False]
    print(f"\n[total {time.perf_counter() - started:.0f} s]"
          + (f"; goal missed: {', '.join(failed)}" if failed else "; every goal met"))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; database dropped", file=sys.stderr)
        sys.exit(130)
