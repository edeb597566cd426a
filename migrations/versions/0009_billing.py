"""billing: trials and Stripe prices on plans, payment information on subscriptions,
processed Stripe events

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('subscription_tiers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trial_days', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('stripe_price_id', sa.String(length=255), nullable=True))

    with op.batch_alter_table('user_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('provider_customer_id', sa.String(length=255),
                                      nullable=True))
        batch_op.add_column(sa.Column('provider_subscription_id', sa.String(length=255),
                                      nullable=True))
        batch_op.add_column(sa.Column('past_due_since', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('trial_started_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index('ix_user_subscriptions_provider_customer',
                              ['provider_customer_id'], unique=False)

    op.create_table('stripe_events',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stripe_events'))
    )


def downgrade():
    op.drop_table('stripe_events')
    with op.batch_alter_table('user_subscriptions', schema=None) as batch_op:
        batch_op.drop_index('ix_user_subscriptions_provider_customer')
        for column in ('trial_started_at', 'past_due_since', 'provider_subscription_id',
                       'provider_customer_id', 'provider'):
            batch_op.drop_column(column)
    with op.batch_alter_table('subscription_tiers', schema=None) as batch_op:
        batch_op.drop_column('stripe_price_id')
        batch_op.drop_column('trial_days')
