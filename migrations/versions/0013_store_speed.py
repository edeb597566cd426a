"""store speed: a full-text index of messages on SQLite, trigram search of contact names on
PostgreSQL

Revision ID: 0013
Revises: 0012

The inbox's `q=` filter is a case-insensitive substring match over the contact's name and
every message of the conversation (utils.store.sql._text_search).

* SQLite: `messages_fts`, an FTS5 table with the trigram tokenizer over messages.text
  (external content: the text is not stored twice; the rowid is messages' rowid). A phrase
  query of 3+ characters is exactly a case-insensitive substring match. Triggers keep it in
  step with INSERT, DELETE (also the cascade from a conversation or user) and UPDATE OF text;
  status updates do not touch it. messages has no INTEGER PRIMARY KEY, so a VACUUM may
  renumber its rowids: after a VACUUM run
  `INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')`.
* PostgreSQL: the messages' pg_trgm index exists (0007); contacts get the same on
  lower(name), so neither half of a search scans the owner's rows. Skipped with a notice
  when pg_trgm is not available (search still works, just slower).

models_db.include_object leaves these structures out of autogenerate.
"""
from alembic import op
import sqlalchemy as sa

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages', "
    "content_rowid='rowid', tokenize='trigram')",
    "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts(rowid, text) VALUES (new.rowid, new.text); END",
    "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text); "
    "END",
    "CREATE TRIGGER messages_fts_au AFTER UPDATE OF text ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text); "
    "INSERT INTO messages_fts(rowid, text) VALUES (new.rowid, new.text); END",
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
]
CONTACT_INDEX = "ix_contacts_name_trgm"


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
        return
    if bind.dialect.name != "postgresql":
        return
    available = bind.execute(sa.text(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).scalar()
    if not available:
        print("0013: pg_trgm is not available; contact name search runs without its index")
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(f"CREATE INDEX IF NOT EXISTS {CONTACT_INDEX} ON contacts "
               "USING gin (lower(name) gin_trgm_ops)")


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for trigger in ("messages_fts_ai", "messages_fts_ad", "messages_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS messages_fts")
    elif bind.dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {CONTACT_INDEX}")
