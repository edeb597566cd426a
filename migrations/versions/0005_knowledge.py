"""knowledge base: documents, chunks and their full-text index

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 17:30:00.000000

The full-text objects are raw DDL, one branch per database. Their names all start with
`knowledge_chunks_fts`, which models_db.include_object leaves out of autogenerate/compare:

* SQLite: an FTS5 table `knowledge_chunks_fts` over knowledge_chunks.search_text (external
  content, rowid = knowledge_chunks.id) kept in sync by three triggers. A later batch
  migration that recreates knowledge_chunks drops those triggers and must recreate them
  (and run `INSERT INTO knowledge_chunks_fts(knowledge_chunks_fts) VALUES('rebuild')`).
* PostgreSQL: a table `knowledge_chunks_fts` (chunk_id, tsv tsvector) with a GIN index,
  filled by a trigger on knowledge_chunks with to_tsvector('simple', search_text) and
  emptied by its ON DELETE CASCADE foreign key.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE knowledge_chunks_fts USING fts5(search_text, "
    "content='knowledge_chunks', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER knowledge_chunks_fts_ai AFTER INSERT ON knowledge_chunks BEGIN "
    "INSERT INTO knowledge_chunks_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER knowledge_chunks_fts_ad AFTER DELETE ON knowledge_chunks BEGIN "
    "INSERT INTO knowledge_chunks_fts(knowledge_chunks_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER knowledge_chunks_fts_au AFTER UPDATE ON knowledge_chunks BEGIN "
    "INSERT INTO knowledge_chunks_fts(knowledge_chunks_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO knowledge_chunks_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
]
POSTGRES_FTS = [
    "CREATE TABLE knowledge_chunks_fts ("
    "chunk_id integer PRIMARY KEY REFERENCES knowledge_chunks(id) ON DELETE CASCADE, "
    "tsv tsvector NOT NULL)",
    "CREATE INDEX knowledge_chunks_fts_tsv ON knowledge_chunks_fts USING gin (tsv)",
    "CREATE FUNCTION knowledge_chunks_fts_sync() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN "
    "INSERT INTO knowledge_chunks_fts (chunk_id, tsv) "
    "VALUES (NEW.id, to_tsvector('simple', NEW.search_text)) "
    "ON CONFLICT (chunk_id) DO UPDATE SET tsv = EXCLUDED.tsv; "
    "RETURN NULL; "
    "END $$",
    "CREATE TRIGGER knowledge_chunks_fts_sync AFTER INSERT OR UPDATE OF search_text "
    "ON knowledge_chunks FOR EACH ROW EXECUTE FUNCTION knowledge_chunks_fts_sync()",
]


def upgrade():
    op.create_table('knowledge_documents',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('chunk_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_knowledge_documents_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_knowledge_documents'))
    )
    with op.batch_alter_table('knowledge_documents', schema=None) as batch_op:
        batch_op.create_index('ix_knowledge_documents_user_created', ['user_id', 'created_at', 'id'], unique=False)

    op.create_table('knowledge_chunks',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('document_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('heading', sa.String(length=500), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('question', sa.Text(), nullable=True),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['knowledge_documents.id'], name=op.f('fk_knowledge_chunks_document_id_knowledge_documents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_knowledge_chunks_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_knowledge_chunks'))
    )
    with op.batch_alter_table('knowledge_chunks', schema=None) as batch_op:
        batch_op.create_index('ix_knowledge_chunks_document_position', ['document_id', 'position'], unique=False)
        batch_op.create_index(batch_op.f('ix_knowledge_chunks_user_id'), ['user_id'], unique=False)

    dialect = op.get_bind().dialect.name
    for statement in SQLITE_FTS if dialect == 'sqlite' else POSTGRES_FTS if dialect == 'postgresql' else []:
        op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for trigger in ('knowledge_chunks_fts_ai', 'knowledge_chunks_fts_ad', 'knowledge_chunks_fts_au'):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS knowledge_chunks_fts")  # and its shadow tables
    elif dialect == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS knowledge_chunks_fts_sync ON knowledge_chunks")
        op.execute("DROP FUNCTION IF EXISTS knowledge_chunks_fts_sync()")
        op.execute("DROP TABLE IF EXISTS knowledge_chunks_fts")

    with op.batch_alter_table('knowledge_chunks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_knowledge_chunks_user_id'))
        batch_op.drop_index('ix_knowledge_chunks_document_position')

    op.drop_table('knowledge_chunks')
    with op.batch_alter_table('knowledge_documents', schema=None) as batch_op:
        batch_op.drop_index('ix_knowledge_documents_user_created')

    op.drop_table('knowledge_documents')
