-- Dana billing on Supabase (DATA_BACKEND=supabase): the same columns as Alembic migration
-- migrations/versions/0009_billing.py adds to SubscriptionTier and UserSubscription
-- (utils/store/sql_models.py). Requires 0002_subscriptions.sql.
--
-- The row-level security of 0002 is unchanged: a user still reads only their own
-- subscription (payment information included: only the provider's ids, never card data)
-- and writes none of it; Dana's server writes with the service key after its own checks
-- (services/plans.py, services/billing.py). The processed Stripe events live in Dana's own
-- database (table stripe_events), like every inbound webhook delivery.

alter table public.subscription_tiers
    -- days of free trial a user may start once (0 = no trial)
    add column trial_days      integer not null default 0,
    -- the Stripe Price that bills this plan (Checkout and webhooks map plans by it)
    add column stripe_price_id varchar(255);

alter table public.user_subscriptions
    -- 'stripe', 'admin' (a grant) or null (the user's own free plan or trial)
    add column provider                 varchar(16),
    add column provider_customer_id     varchar(255),
    add column provider_subscription_id varchar(255),
    -- since when a payment is overdue (status past_due): the grace period counts from here
    add column past_due_since           timestamptz,
    -- when the user's one trial started; a trial is never offered again once set
    add column trial_started_at         timestamptz;

-- webhooks find the subscription by the provider's customer id
create index ix_user_subscriptions_provider_customer
    on public.user_subscriptions (provider_customer_id);
