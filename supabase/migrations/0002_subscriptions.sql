-- Dana subscriptions on Supabase (DATA_BACKEND=supabase): plans and each user's subscription.
--
-- Same columns and semantics as SubscriptionTier and UserSubscription in
-- utils/store/sql_models.py, and the same four default plans as the Alembic migration
-- migrations/versions/0003_subscriptions.py (same ids, names, prices and limits).
--
-- Who may do what (Row-Level Security plus privileges; see supabase/README.md):
--   subscription_tiers   everyone (anon and authenticated) reads every plan, archived ones
--                        included: a subscriber keeps an archived plan and must still see it.
--                        Nobody but service_role writes.
--   user_subscriptions   a user (authenticated, auth.uid() = user_id) reads their own row and
--                        nobody else's. Nobody but service_role writes: a user who could insert
--                        or update their own row could move to a paid plan without paying.
--                        Dana's server writes with the service key, after its own checks
--                        (services/subscriptions.py).
--
-- user_id has no foreign key to auth.users, for the reason given in 0001_store.sql: Dana's
-- users live in Dana's own database. Requires 0001_store.sql (public.set_updated_at).

-- ------------------------------------------------------------------------------- tables

create table public.subscription_tiers (
    -- the default plans have stable slugs (free, starter, ...); new plans get a uuid
    id                  text primary key default gen_random_uuid()::text,
    name                varchar(100) not null,
    description         text not null default '',
    price               numeric(10, 2) not null default 0,
    currency            varchar(3) not null default 'USD',
    billing_interval    varchar(8) not null default 'month',
    features            text[] not null default '{}',
    platforms           text[] not null default '{}',
    -- limits: null means unlimited
    monthly_ai_replies  integer,
    platform_accounts   integer,
    integrations        integer,
    knowledge_documents integer,
    is_active           boolean not null default true,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    constraint uq_subscription_tiers_name unique (name)
);

-- a user's current plan: one row per user, never card data
create table public.user_subscriptions (
    id                   uuid primary key default gen_random_uuid(),
    user_id              uuid not null,
    tier_id              text not null,
    status               varchar(12) not null default 'active',
    started_at           timestamptz not null default now(),
    current_period_end   timestamptz,
    cancel_at_period_end boolean not null default false,
    canceled_at          timestamptz,
    payment_reference    varchar(255),
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    constraint uq_user_subscriptions_user_id unique (user_id),
    constraint fk_user_subscriptions_tier foreign key (tier_id)
        references public.subscription_tiers (id)
);
create index ix_user_subscriptions_tier on public.user_subscriptions (tier_id);
-- the admin list: newest first, keyset on (created_at, id)
create index ix_user_subscriptions_created on public.user_subscriptions (created_at, id);

create trigger subscription_tiers_updated_at before update on public.subscription_tiers
    for each row execute function public.set_updated_at();
create trigger user_subscriptions_updated_at before update on public.user_subscriptions
    for each row execute function public.set_updated_at();

-- ------------------------------------------------------------------------ default plans

insert into public.subscription_tiers
    (id, name, description, price, features, platforms,
     monthly_ai_replies, platform_accounts, integrations, knowledge_documents)
select plan.*
from (select array['slack', 'email', 'hubspot', 'salesforce', 'google_analytics', 'zendesk',
                   'mysql', 'postgresql', 'mongodb', 'sqlserver'] as names) as every_integration,
lateral (values
    ('free', 'Free', 'Answer Facebook Messenger with AI.', 0,
     array['ai_replies', 'knowledge_base'], array['facebook'],
     100, 1, 0, 20),
    ('starter', 'Starter', 'Messenger and Instagram, with Slack and e-mail hand-offs.', 19,
     array['ai_replies', 'knowledge_base', 'workflows', 'slack', 'email'],
     array['facebook', 'instagram'],
     1000, 2, 2, 200),
    ('professional', 'Professional', 'All three platforms and every integration.', 49,
     array['ai_replies', 'knowledge_base', 'workflows'] || every_integration.names,
     array['facebook', 'instagram', 'whatsapp'],
     10000, 5, cardinality(every_integration.names), 2000),
    ('enterprise', 'Enterprise', 'Everything, unlimited.', 199,
     array['ai_replies', 'knowledge_base', 'workflows'] || every_integration.names,
     array['facebook', 'instagram', 'whatsapp'],
     null, null, null, null)
) as plan;

-- --------------------------------------------------------------------- row-level security

alter table public.subscription_tiers enable row level security;
alter table public.user_subscriptions enable row level security;

-- Read policies only. With RLS on and no insert/update/delete policy, those are refused to
-- every role that does not bypass RLS, on top of the missing privileges below.
create policy subscription_tiers_select on public.subscription_tiers for select
    to anon, authenticated using (true);
create policy user_subscriptions_select on public.user_subscriptions for select
    to authenticated using ((select auth.uid()) = user_id);

-- ------------------------------------------------------------------------------ privileges

-- Supabase grants everything in `public` to anon and authenticated by default: take it back,
-- then give each role only what the policies above are for.
revoke all on public.subscription_tiers, public.user_subscriptions from anon, authenticated;
grant select on public.subscription_tiers to anon, authenticated;
grant select on public.user_subscriptions to authenticated;
grant select, insert, update, delete
    on public.subscription_tiers, public.user_subscriptions to service_role;
