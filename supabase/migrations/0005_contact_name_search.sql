-- Trigram index for the other half of the inbox search: search_conversations also matches
-- lower(contacts.name) LIKE '%term%' (the SQL backend's migration 0013 adds the same index).
create index if not exists ix_contacts_name_trgm
    on public.contacts using gin (lower(name) extensions.gin_trgm_ops);
