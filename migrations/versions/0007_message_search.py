"""trigram index for conversation text search (PostgreSQL)

Revision ID: 0007
Revises: 0006

The inbox's `q=` filter matches `lower(messages.text) LIKE '%term%'`, which no B-tree index
can serve; at a million messages that is a scan of every message of the owner. A pg_trgm GIN
index on lower(text) serves it. Creating the extension needs a privileged role: when it is
not available the index is skipped with a notice and search still works (just slower).
SQLite has no such index (the laptop setup holds far fewer messages).
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

INDEX = "ix_messages_text_trgm"


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    available = bind.execute(sa.text(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).scalar()
    if not available:
        print("0007: pg_trgm is not available; conversation search runs without its index")
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON messages USING gin (lower(text) gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
