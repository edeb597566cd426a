"""store search: on PostgreSQL, a conversation's messages can be searched from its thread index
alone (messages.search_head in ix_messages_conversation_created)

Revision ID: 0015
Revises: 0014

The inbox search `q=` for a frequent word walks the inbox newest first and checks one
conversation at a time (utils.store.sql._searched). Reading each message row for that check
visits one table page per message. Instead the thread index (conversation_id, created_at, id)
carries `search_head`: lower(text) for a text of up to 500 characters, '' for no text, NULL
for a longer text (only those rows are read from the table). The check is then an index-only
scan of the conversation's entries.

* search_head is a stored generated column: PostgreSQL keeps it in step with every INSERT and
  UPDATE of text, whoever writes. Adding it rewrites the messages table (about a minute per
  million messages on 2 cores, under an exclusive lock: run it when the inbox may pause).
* ix_messages_conversation_created keeps its name and key columns and gains
  INCLUDE (search_head): the thread's pages read it as before.
* SQLite: nothing (its full-text index answers the same question, migration 0013).

models_db.include_object leaves the column out of autogenerate (the models do not map it).
"""
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

INDEX = "ix_messages_conversation_created"
# Longest text kept in the index: 500 characters are at most 2,000 bytes in UTF-8, under
# the 2,704-byte limit of a B-tree entry.
HEAD_CHARS = 500


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE messages ADD COLUMN search_head text GENERATED ALWAYS AS ("
               f"CASE WHEN text IS NULL THEN '' WHEN length(text) <= {HEAD_CHARS} "
               "THEN lower(text) END) STORED")
    op.execute(f"DROP INDEX {INDEX}")
    op.execute(f"CREATE INDEX {INDEX} ON messages (conversation_id, created_at, id) "
               "INCLUDE (search_head)")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP INDEX {INDEX}")
    op.execute(f"CREATE INDEX {INDEX} ON messages (conversation_id, created_at, id)")
    op.execute("ALTER TABLE messages DROP COLUMN search_head")
