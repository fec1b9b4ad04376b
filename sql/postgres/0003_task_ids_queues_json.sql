-- enrichd PostgreSQL schema, version 3: cheaper planning, claims and completions.
--
-- 1. Task ids name their (provider, node): id = slot << 48 | node_id, where `slot` is
--    the provider's small number in the new table `providers`. The primary key on id
--    then also keeps (provider, node) unique, and the unique index tasks_provider_node
--    goes: one index insertion less per planned task, and no text comparisons (planning
--    1M nodes x 2 providers: 18.1 -> 14.0 s of server time). Provider-major ids keep each provider's tasks in a range
--    of their own, appended in node order (what 0002 bought for the old index). Node ids
--    stay below 2^48.
-- 2. Status changes become HOT updates. Until version 2 every claim and completion
--    rewrote the task row in each of its indexes: the partial indexes tasks_claim /
--    tasks_running_lease / tasks_answered_expiry name `status` in their predicates, and a
--    change to an indexed column (predicates included) is never HOT: three index
--    insertions per update, two updates per task. Now `tasks` is indexed only by its id,
--    keeps room on its pages (fillfactor 45: a claim updates every task of a page in one
--    statement, and the old versions cannot be pruned before it commits), and the queues
--    live in side tables that the store keeps in step with `tasks` in the same statement
--    (tasks.status stays the truth; a side-table row is a hint the store re-checks):
--      task_queue   the pending tasks, up to 200 ids a row that share a provider and a
--                   next_attempt_at, in the order claims take them; a claim takes ids
--                   from the front of the oldest rows (deleting a row it empties), a
--                   retry / reclaim / plan inserts rows (a row is named by its serial
--                   qid: its ctid changes with each take). One row per 200 planned tasks
--                   (planning 1M x 2 with a row per task: 14.0 s of server time; 9.4 s so).
--      task_leases  one row per claimed batch (owner, earliest lease expiry, <= 200 task
--                   ids), for reclaiming and releasing; reclaiming drops the rows whose
--                   tasks moved on and files again those still running under a renewal.
--      task_expiry  one row per completed batch and provider (earliest expiry, <= 200
--                   task ids), for planning refreshes, which drops or re-files them.
--    (200 ids keep a row below the size from which PostgreSQL compresses it.)
-- 3. Props are json, not jsonb: the store writes them from C++ (checked JSON objects),
--    reads them back whole and re-serialises them itself (sorted keys) for export and
--    GetNode; jsonb's conversion to its binary form was the largest single cost of
--    storing an answer (~6 us for the ~600 bytes of an enrichment's props; json's check
--    ~1.5 us). The operators used (->, ->>) exist for json too.
-- 4. Edges lose their primary key index: nothing looks an edge up by id (GetNode goes by
--    src, export sorts), and ids stay unique by their sequence.

CREATE TABLE providers (
  slot smallint PRIMARY KEY CHECK (slot > 0),
  name text COLLATE "C" NOT NULL UNIQUE
);
INSERT INTO providers (slot, name)
SELECT row_number() OVER (ORDER BY provider), provider FROM (SELECT DISTINCT provider FROM tasks) p;

ALTER TABLE tasks DROP CONSTRAINT tasks_provider_node;
DROP INDEX tasks_claim;
DROP INDEX tasks_running_lease;
DROP INDEX tasks_answered_expiry;
ALTER TABLE tasks ALTER COLUMN id DROP DEFAULT;
DROP SEQUENCE tasks_id_seq;
ALTER TABLE tasks SET (fillfactor = 45);
-- New ids are >= 2^48, old ones were below: no transient clash in the primary key.
UPDATE tasks t SET id = (p.slot::bigint << 48) | t.node_id FROM providers p WHERE p.name = t.provider;

CREATE TABLE task_queue (
  qid             bigserial NOT NULL,
  slot            smallint NOT NULL,
  next_attempt_at bigint   NOT NULL,
  first_id        bigint   NOT NULL,
  task_ids        bigint[] NOT NULL
);
CREATE INDEX task_queue_due ON task_queue (slot, next_attempt_at, first_id);
-- Claims name the rows they take ids from by qid (a row's ctid changes with each take).
CREATE INDEX task_queue_qid ON task_queue (qid);
-- No statistics of the id arrays: nothing filters on them, and collecting their element
-- frequencies made an ANALYZE of the queue after planning 2M tasks take 0.8 s, not 0.03 s.
ALTER TABLE task_queue ALTER COLUMN task_ids SET STATISTICS 0;
INSERT INTO task_queue (slot, next_attempt_at, first_id, task_ids)
SELECT slot, next_attempt_at, min(id), array_agg(id ORDER BY id)
FROM (SELECT (id >> 48)::smallint AS slot, next_attempt_at, id,
             row_number() OVER (PARTITION BY id >> 48, next_attempt_at ORDER BY id) - 1 AS i
      FROM tasks WHERE status = 'pending') p
GROUP BY slot, next_attempt_at, i / 200;

CREATE TABLE task_leases (
  lease_expires_at bigint   NOT NULL,
  lease_owner      text     NOT NULL,
  task_ids         bigint[] NOT NULL
);
CREATE INDEX task_leases_expiry ON task_leases (lease_expires_at);
ALTER TABLE task_leases ALTER COLUMN task_ids SET STATISTICS 0;
INSERT INTO task_leases (lease_expires_at, lease_owner, task_ids)
SELECT min(coalesce(lease_expires_at, 0)), coalesce(lease_owner, ''), array_agg(id)
FROM (SELECT id, lease_owner, lease_expires_at,
             row_number() OVER (PARTITION BY coalesce(lease_owner, '')) - 1 AS i
      FROM tasks WHERE status = 'running') r
GROUP BY coalesce(lease_owner, ''), i / 200;

CREATE TABLE task_expiry (
  provider   text     COLLATE "C" NOT NULL,
  expires_at bigint   NOT NULL,
  task_ids   bigint[] NOT NULL
);
CREATE INDEX task_expiry_due ON task_expiry (provider, expires_at);
ALTER TABLE task_expiry ALTER COLUMN task_ids SET STATISTICS 0;
INSERT INTO task_expiry (provider, expires_at, task_ids)
SELECT provider, min(expires_at), array_agg(id)
FROM (SELECT id, provider, expires_at, row_number() OVER (PARTITION BY provider) - 1 AS i
      FROM tasks WHERE status IN ('done', 'no_data') AND expires_at IS NOT NULL) a
GROUP BY provider, i / 200;

ALTER TABLE nodes ALTER COLUMN props DROP DEFAULT;
ALTER TABLE nodes ALTER COLUMN props TYPE json USING props::json;
ALTER TABLE nodes ALTER COLUMN props SET DEFAULT '{}'::json;
ALTER TABLE edges ALTER COLUMN props DROP DEFAULT;
ALTER TABLE edges ALTER COLUMN props TYPE json USING props::json;
ALTER TABLE edges ALTER COLUMN props SET DEFAULT '{}'::json;
ALTER TABLE edges DROP CONSTRAINT edges_pkey;
