-- Trigram index for the inbox search (search_conversations matches lower(messages.text)
-- LIKE '%term%', which no B-tree index can serve). Supabase ships pg_trgm; it lives in the
-- `extensions` schema there.
create schema if not exists extensions;
create extension if not exists pg_trgm with schema extensions;
create index if not exists ix_messages_text_trgm
    on public.messages using gin (lower(text) extensions.gin_trgm_ops);
