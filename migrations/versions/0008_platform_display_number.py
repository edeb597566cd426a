"""platform_accounts.display_phone_number: the WhatsApp number customers see

Revision ID: 0008
Revises: 0007

Connecting a WhatsApp number now asks Graph who it is (the ownership check) and keeps the
`display_phone_number` Graph answers, so the console can show "+1 555-078-3881" rather
than the phone_number_id. Empty for Pages and Instagram accounts.
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    """Add the nullable column (existing accounts get it on their next token update)."""
    with op.batch_alter_table('platform_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('display_phone_number', sa.String(length=32), nullable=True))


def downgrade():
    """Drop the column."""
    with op.batch_alter_table('platform_accounts', schema=None) as batch_op:
        batch_op.drop_column('display_phone_number')
