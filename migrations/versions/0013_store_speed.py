"""store speed: full-text indexes of messages and contact names on SQLite, trigram search of
contact names on PostgreSQL

Revision ID: 0013
Revises: 0012

The inbox's `q=` filter is a case-insensitive substring match over the contact's name and
every message of the conversation (utils.store.sql._searched).

* SQLite: FTS5 tables with the trigram tokenizer, where a phrase query of 3+ characters is
  exactly a case-insensitive substring match:
  - `messages_fts` over messages.text, contentless (the text is not stored twice), whose rowid
    is (conversations.rowid << 32) | messages.rowid: a search reads the matching
    conversations straight from the index, without visiting one message row per match (at
    a million messages that visit was most of the time). Triggers keep it in step with
    INSERT, UPDATE OF text and DELETE of messages, and with the DELETE of a conversation
    (before its messages cascade away); status updates do not touch it.
  - `contacts_fts` over contacts.name (external content on contacts' rowid).
  messages and contacts have no INTEGER PRIMARY KEY, so a VACUUM may renumber rowids: after a
  VACUUM run the statements of REBUILD below (`flask shell`, or sqlite3).
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

REBUILD = [
    "INSERT INTO messages_fts(messages_fts) VALUES ('delete-all')",
    "INSERT INTO messages_fts(rowid, text) SELECT (c.rowid << 32) | m.rowid, m.text "
    "FROM messages m JOIN conversations c ON c.id = m.conversation_id",
    "INSERT INTO contacts_fts(contacts_fts) VALUES ('rebuild')",
]
SQLITE_FTS = [
    "CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='', tokenize='trigram')",
    "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts(rowid, text) SELECT (c.rowid << 32) | new.rowid, new.text "
    "FROM conversations c WHERE c.id = new.conversation_id; END",
    # A contentless table forgets a row given its exact old text. When a conversation is
    # deleted, its BEFORE trigger forgets its messages; the cascade that follows finds no
    # conversation row, so messages_fts_ad then does nothing.
    "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, text) "
    "SELECT 'delete', (c.rowid << 32) | old.rowid, old.text "
    "FROM conversations c WHERE c.id = old.conversation_id; END",
    "CREATE TRIGGER messages_fts_au AFTER UPDATE OF text ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, text) "
    "SELECT 'delete', (c.rowid << 32) | old.rowid, old.text "
    "FROM conversations c WHERE c.id = old.conversation_id; "
    "INSERT INTO messages_fts(rowid, text) SELECT (c.rowid << 32) | new.rowid, new.text "
    "FROM conversations c WHERE c.id = new.conversation_id; END",
    "CREATE TRIGGER conversations_fts_bd BEFORE DELETE ON conversations BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, text) "
    "SELECT 'delete', (old.rowid << 32) | m.rowid, m.text "
    "FROM messages m WHERE m.conversation_id = old.id; END",
    "CREATE VIRTUAL TABLE contacts_fts USING fts5(name, content='contacts', "
    "content_rowid='rowid', tokenize='trigram')",
    "CREATE TRIGGER contacts_fts_ai AFTER INSERT ON contacts BEGIN "
    "INSERT INTO contacts_fts(rowid, name) VALUES (new.rowid, new.name); END",
    "CREATE TRIGGER contacts_fts_ad AFTER DELETE ON contacts BEGIN "
    "INSERT INTO contacts_fts(contacts_fts, rowid, name) VALUES ('delete', old.rowid, old.name); "
    "END",
    "CREATE TRIGGER contacts_fts_au AFTER UPDATE OF name ON contacts BEGIN "
    "INSERT INTO contacts_fts(contacts_fts, rowid, name) VALUES ('delete', old.rowid, old.name); "
    "INSERT INTO contacts_fts(rowid, name) VALUES (new.rowid, new.name); END",
    *REBUILD[1:],
]
SQLITE_TRIGGERS = ["messages_fts_ai", "messages_fts_ad", "messages_fts_au",
                   "conversations_fts_bd", "contacts_fts_ai", "contacts_fts_ad",
                   "contacts_fts_au"]
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
        for trigger in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS messages_fts")
        op.execute("DROP TABLE IF EXISTS contacts_fts")
    elif bind.dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {CONTACT_INDEX}")
