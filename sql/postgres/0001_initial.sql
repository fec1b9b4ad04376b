-- enrichd PostgreSQL schema, version 1: the property graph and its task queue.
-- Applied by the store on open (embedded in the binary at build time), inside one
-- transaction holding an advisory lock; the table schema_version is created by the
-- migrator itself and records every version applied. Times are Unix milliseconds.

-- Identifiers compare bytewise (COLLATE "C"): the same order on every server locale,
-- and much cheaper comparisons in the unique indexes that ingest and planning hit.

-- Source nodes (label, key) and enrichment nodes (label 'enrichment',
-- key '<provider>/<source node id>/<claim_seq>').
CREATE TABLE nodes (
  id    bigserial PRIMARY KEY,
  label text COLLATE "C" NOT NULL,
  key   text COLLATE "C" NOT NULL,
  props jsonb NOT NULL DEFAULT '{}'::jsonb,
  CONSTRAINT nodes_label_key UNIQUE (label, key)
);

-- ENRICHED_BY: source node -> enrichment node. Nodes are never deleted, and edges are
-- only written together with both ends (one statement), so no foreign keys are checked
-- on the hot completion path.
CREATE TABLE edges (
  id    bigserial PRIMARY KEY,
  type  text COLLATE "C" NOT NULL,
  src   bigint NOT NULL,
  dst   bigint NOT NULL,
  props jsonb  NOT NULL DEFAULT '{}'::jsonb
);
-- GetNode and superseding look up a source node's enrichments.
CREATE INDEX edges_src ON edges (src);

-- One task per (source node, provider). expires_at is the expiry of the current
-- enrichment (set when the task is done / no_data); claim_seq counts claims.
CREATE TABLE tasks (
  id               bigserial PRIMARY KEY,
  node_id          bigint  NOT NULL,
  provider         text COLLATE "C" NOT NULL,
  status           text    NOT NULL
    CHECK (status IN ('pending', 'running', 'done', 'no_data', 'skipped', 'dead')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  bigint  NOT NULL,
  lease_owner      text,
  lease_expires_at bigint,
  claim_seq        bigint  NOT NULL DEFAULT 0,
  last_error       text,
  expires_at       bigint,
  updated_at       bigint  NOT NULL,
  CONSTRAINT tasks_node_provider UNIQUE (node_id, provider)
);
-- Claiming: a provider's due pending tasks, oldest first (the engine claims per
-- provider; a claim for any provider walks the providers present in this index).
CREATE INDEX tasks_claim ON tasks (provider, next_attempt_at, id) WHERE status = 'pending';
-- Lease housekeeping (reclaiming; releasing by owner scans the running tasks through it).
-- Every index here costs each claim and completion an index insertion (a status change
-- is never a HOT update), so there are no more of them than the queue needs.
CREATE INDEX tasks_running_lease ON tasks (lease_expires_at) WHERE status = 'running';
-- Planning refreshes: answered tasks by expiry.
CREATE INDEX tasks_answered_expiry ON tasks (expires_at) WHERE status IN ('done', 'no_data');
