-- Dana store on Supabase (DATA_BACKEND=supabase): contacts, conversations, messages, tasks.
--
-- Same columns and semantics as utils/store/sql_models.py (the SQL backend), plus Row-Level
-- Security: the app calls PostgREST with a JWT it mints per owner (role `authenticated`,
-- `sub` = the owner's user id), and every policy below compares auth.uid() with owner_id, so a
-- query that forgets its owner filter still only sees, changes or deletes that owner's rows.
--
-- owner_id has no foreign key to auth.users on purpose: Dana's users live in the app's own
-- database (table `users`), not in Supabase Auth. The owner id is the Dana user id that the app
-- puts in the JWT's `sub`. Deleting a Dana user does not cascade here; the app removes the rows.
--
-- Plain PostgreSQL 15+ except for auth.uid() and the roles anon/authenticated/service_role
-- that every Supabase project has.

-- ------------------------------------------------------------------------------- tables

create table public.contacts (
    id               uuid primary key default gen_random_uuid(),
    owner_id         uuid not null,
    platform         varchar(16) not null,
    platform_user_id varchar(128) not null,
    name             varchar(200),
    first_name       varchar(100),
    last_name        varchar(100),
    username         varchar(100),
    profile_pic      text,
    locale           varchar(16),
    phone            varchar(32),
    email            varchar(320),
    notes            text,
    profile          jsonb not null default '{}'::jsonb,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    constraint uq_contacts_owner_platform_user unique (owner_id, platform, platform_user_id),
    -- target of the (id, owner_id) foreign keys below: a child row can only point at a parent
    -- of the same owner, even when the writer forgot to check (FK checks ignore RLS).
    constraint uq_contacts_id_owner unique (id, owner_id)
);
create index ix_contacts_owner_created on public.contacts (owner_id, created_at, id);

create table public.conversations (
    id                   uuid primary key default gen_random_uuid(),
    owner_id             uuid not null,
    platform             varchar(16) not null,
    platform_account_id  varchar(128) not null,
    contact_id           uuid not null,
    status               varchar(16) not null default 'open',
    assignee_id          varchar(36),
    labels               text[] not null default '{}',
    ai_enabled           boolean not null default true,
    last_message_at      timestamptz not null default now(),
    last_inbound_at      timestamptz,
    last_message_preview varchar(200),
    unread_count         integer not null default 0,
    message_count        integer not null default 0,
    snoozed_until        timestamptz,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    constraint uq_conversations_owner_account_contact
        unique (owner_id, platform_account_id, contact_id),
    constraint uq_conversations_id_owner unique (id, owner_id),
    constraint fk_conversations_contact foreign key (contact_id, owner_id)
        references public.contacts (id, owner_id) on delete cascade
);
-- the inbox: newest activity first, keyset on (last_message_at, id)
create index ix_conversations_owner_last on public.conversations (owner_id, last_message_at, id);
create index ix_conversations_owner_status_last
    on public.conversations (owner_id, status, last_message_at, id);
create index ix_conversations_contact_id on public.conversations (contact_id);

create table public.messages (
    id                  uuid primary key default gen_random_uuid(),
    owner_id            uuid not null,
    conversation_id     uuid not null,
    direction           varchar(8) not null,
    sender_type         varchar(8) not null,
    text                text,
    attachments         jsonb not null default '[]'::jsonb,
    platform            varchar(16),
    platform_message_id varchar(255),
    status              varchar(12) not null default 'received',
    error               text,
    reply_to            varchar(255),
    is_note             boolean not null default false,
    -- makes automated sends idempotent: one reply per inbound message, whoever retries
    idempotency_key     varchar(128),
    metadata            jsonb not null default '{}'::jsonb,
    -- the platform's timestamp for inbound messages; server time otherwise. Orders the thread.
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    -- Meta redelivers webhooks for days: a platform message is stored once, whoever asks.
    constraint uq_messages_platform_mid unique (platform, platform_message_id),
    constraint uq_messages_idempotency_key unique (idempotency_key),
    constraint fk_messages_conversation foreign key (conversation_id, owner_id)
        references public.conversations (id, owner_id) on delete cascade
);
-- newest page of a conversation, keyset on (created_at, id)
create index ix_messages_conversation_created
    on public.messages (conversation_id, created_at, id);
create index ix_messages_owner_id on public.messages (owner_id);

create table public.tasks (
    id              uuid primary key default gen_random_uuid(),
    owner_id        uuid not null,
    title           varchar(300) not null,
    description     text,
    conversation_id uuid,
    status          varchar(12) not null default 'open',
    priority        varchar(8) not null default 'normal',
    due_at          timestamptz,
    assignee_id     varchar(36),
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    -- deleting the conversation keeps the task and clears only conversation_id (PostgreSQL 15+)
    constraint fk_tasks_conversation foreign key (conversation_id, owner_id)
        references public.conversations (id, owner_id) on delete set null (conversation_id)
);
create index ix_tasks_owner_created on public.tasks (owner_id, created_at, id);
create index ix_tasks_conversation_id on public.tasks (conversation_id);

-- updated_at follows every UPDATE, whoever issues it (the SQL backend does this in the ORM).
create function public.set_updated_at() returns trigger
language plpgsql set search_path = '' as $$
begin
    new.updated_at := now();
    return new;
end;
$$;

create trigger contacts_updated_at before update on public.contacts
    for each row execute function public.set_updated_at();
create trigger conversations_updated_at before update on public.conversations
    for each row execute function public.set_updated_at();
create trigger messages_updated_at before update on public.messages
    for each row execute function public.set_updated_at();
create trigger tasks_updated_at before update on public.tasks
    for each row execute function public.set_updated_at();

-- ------------------------------------------------------------------------- inbox search

-- GET /api/conversations?q=: the contact's name or any message text contains q, ignoring case,
-- with q taken literally (\, % and _ escaped), exactly like the SQL backend. PostgREST calls it
-- as POST /rest/v1/rpc/search_conversations and applies the caller's filters, order, limit and
-- embedding to its rows. SECURITY INVOKER (the default): RLS applies to every table it reads.
-- No `set search_path` (names are schema-qualified): it would stop PostgreSQL from inlining
-- the function, and inlining is what lets the caller's filters and limit use the indexes.
create function public.search_conversations(q text) returns setof public.conversations
language sql stable as $$
    select c.*
    from public.conversations c,
         lateral (select '%' || replace(replace(replace(lower(q), '\', '\\'), '%', '\%'),
                                        '_', '\_') || '%' as pattern) p
    where exists (select 1 from public.contacts ct
                  where ct.id = c.contact_id and ct.owner_id = c.owner_id
                    and lower(ct.name) like p.pattern)
       or exists (select 1 from public.messages m
                  where m.conversation_id = c.id and m.owner_id = c.owner_id
                    and lower(m.text) like p.pattern)
$$;

-- --------------------------------------------------------------------- row-level security

alter table public.contacts enable row level security;
alter table public.conversations enable row level security;
alter table public.messages enable row level security;
alter table public.tasks enable row level security;

-- `(select auth.uid())` instead of `auth.uid()`: same meaning, evaluated once per statement
-- instead of once per row (Supabase's RLS performance advice).
create policy contacts_select on public.contacts for select to authenticated
    using ((select auth.uid()) = owner_id);
create policy contacts_insert on public.contacts for insert to authenticated
    with check ((select auth.uid()) = owner_id);
create policy contacts_update on public.contacts for update to authenticated
    using ((select auth.uid()) = owner_id) with check ((select auth.uid()) = owner_id);
create policy contacts_delete on public.contacts for delete to authenticated
    using ((select auth.uid()) = owner_id);

create policy conversations_select on public.conversations for select to authenticated
    using ((select auth.uid()) = owner_id);
create policy conversations_insert on public.conversations for insert to authenticated
    with check ((select auth.uid()) = owner_id);
create policy conversations_update on public.conversations for update to authenticated
    using ((select auth.uid()) = owner_id) with check ((select auth.uid()) = owner_id);
create policy conversations_delete on public.conversations for delete to authenticated
    using ((select auth.uid()) = owner_id);

create policy messages_select on public.messages for select to authenticated
    using ((select auth.uid()) = owner_id);
create policy messages_insert on public.messages for insert to authenticated
    with check ((select auth.uid()) = owner_id);
create policy messages_update on public.messages for update to authenticated
    using ((select auth.uid()) = owner_id) with check ((select auth.uid()) = owner_id);
create policy messages_delete on public.messages for delete to authenticated
    using ((select auth.uid()) = owner_id);

create policy tasks_select on public.tasks for select to authenticated
    using ((select auth.uid()) = owner_id);
create policy tasks_insert on public.tasks for insert to authenticated
    with check ((select auth.uid()) = owner_id);
create policy tasks_update on public.tasks for update to authenticated
    using ((select auth.uid()) = owner_id) with check ((select auth.uid()) = owner_id);
create policy tasks_delete on public.tasks for delete to authenticated
    using ((select auth.uid()) = owner_id);

-- ------------------------------------------------------------------------------ privileges

-- Supabase grants everything in `public` to anon by default; the store is never public, so
-- anon gets nothing (RLS would return no rows to it anyway: it has no policy).
revoke all on public.contacts, public.conversations, public.messages, public.tasks from anon;
grant select, insert, update, delete
    on public.contacts, public.conversations, public.messages, public.tasks
    to authenticated, service_role;

revoke all on function public.search_conversations(text) from public, anon;
grant execute on function public.search_conversations(text) to authenticated, service_role;
revoke all on function public.set_updated_at() from public, anon, authenticated;
