"""business_profiles.answer_confidence: how bold the business wants its offline AI to be

Revision ID: 0016
Revises: 0015

Issue 19: the offline responder answers only when its decision model's probability reaches a
threshold, and which threshold is right is the business's call (a bike shop may take a few
wrong answers for many more answers; a dental clinic may not). `answer_confidence` names the
level the business chose: 'cautious', 'balanced' or 'bold' (automation.knowledge.decision.
LEVELS, each level's threshold in decision.json; the API validates the name). NULL — every
existing profile — means the default level (cautious, today's behaviour), so a business that
never chose follows the product's default if it ever changes.

A nullable column without a default: adding it changes the catalogue only, on PostgreSQL and
SQLite alike (no table rewrite); dropping it on SQLite (downgrade) recreates the small table
in batch mode.
"""
from alembic import op
import sqlalchemy as sa

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    """Add the nullable column (NULL: the default level)."""
    with op.batch_alter_table('business_profiles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answer_confidence', sa.String(length=16), nullable=True))


def downgrade():
    """Drop the column (every business is back at the default level)."""
    with op.batch_alter_table('business_profiles', schema=None) as batch_op:
        batch_op.drop_column('answer_confidence')
