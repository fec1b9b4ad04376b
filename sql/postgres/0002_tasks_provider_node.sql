-- enrichd PostgreSQL schema, version 2: the uniqueness of (node, provider) tasks is
-- indexed provider first.
--
-- Planning inserts one provider's tasks in node id order. With (node_id, provider) the
-- second provider's entries land between the first one's, on every leaf page of the
-- index (page splits all over, and twice the index pages touched); provider first, each
-- provider's entries are appended at the end of its own range, and two providers can be
-- planned concurrently without touching the same leaf pages. Measured on 1M nodes: the
-- second provider's INSERT 11.2 s -> 7.4 s. Lookups name both columns (planning's
-- NOT EXISTS, ON CONFLICT (node_id, provider) infers this index as well), and no query
-- looks tasks up by node alone.
ALTER TABLE tasks DROP CONSTRAINT tasks_node_provider;
ALTER TABLE tasks ADD CONSTRAINT tasks_provider_node UNIQUE (provider, node_id);
