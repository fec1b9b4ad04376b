-- enrichd graph schema for SQLite, version 1 (see docs/DESIGN.md: data model, task lifecycle).
-- Applied inside one transaction by the migration runner, which records the version in
-- schema_version. Times are Unix milliseconds (INTEGER); props are JSON object text.

CREATE TABLE schema_version (
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_at INTEGER NOT NULL  -- Unix ms
);

-- Source nodes (label "ip", "domain", ...) and enrichment nodes (label "enrichment").
CREATE TABLE nodes (
  id    INTEGER PRIMARY KEY,
  label TEXT NOT NULL,
  key   TEXT NOT NULL,
  props TEXT NOT NULL DEFAULT '{}',
  UNIQUE (label, key)
);

CREATE TABLE edges (
  id    INTEGER PRIMARY KEY,
  type  TEXT NOT NULL,  -- "ENRICHED_BY"
  src   INTEGER NOT NULL REFERENCES nodes (id),
  dst   INTEGER NOT NULL REFERENCES nodes (id),
  props TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX edges_src ON edges (src, type);

-- The work queue: one row per (source node, provider).
CREATE TABLE tasks (
  id               INTEGER PRIMARY KEY,
  node_id          INTEGER NOT NULL REFERENCES nodes (id),
  provider         TEXT NOT NULL,
  -- 'pending' | 'running' | 'done' | 'no_data' | 'skipped' | 'dead'. Deliberately no CHECK
  -- constraint: it would make every single-row UPDATE open a statement journal (measured:
  -- +5 us per status change); the store only ever writes these values.
  status           TEXT NOT NULL DEFAULT 'pending',
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER NOT NULL DEFAULT 0,   -- Unix ms; due when <= now
  lease_owner      TEXT,                         -- set while running
  lease_expires_at INTEGER,                      -- Unix ms; set while running
  claim_seq        INTEGER NOT NULL DEFAULT 0,   -- +1 per claim; writes name the claim
  last_error       TEXT,
  expires_at       INTEGER,                      -- Unix ms; of the current answer (done/no_data)
  enrichment_id    INTEGER REFERENCES nodes (id),-- the current answer's enrichment node
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  UNIQUE (node_id, provider)
);
-- Every index below is paid for on each status change, so there are only those the hot
-- paths need. Claim: pending and due, oldest first.
CREATE INDEX tasks_due ON tasks (next_attempt_at, id) WHERE status = 'pending';
-- Lease expiry, renewal and release (few rows: only running tasks).
CREATE INDEX tasks_lease ON tasks (lease_expires_at) WHERE status = 'running';
-- Planning: answers whose TTL ran out.
CREATE INDEX tasks_expiry ON tasks (provider, expires_at) WHERE status IN ('done', 'no_data');

-- Planning watermark: every node of `label` with id <= max_node_id already has its task
-- for `provider`. Node ids only grow (INTEGER PRIMARY KEY, rows are never deleted), and
-- planning runs under the write lock, so a later plan only looks at newer nodes.
CREATE TABLE plan_marks (
  provider    TEXT NOT NULL,
  label       TEXT NOT NULL,
  max_node_id INTEGER NOT NULL,
  PRIMARY KEY (provider, label)
) WITHOUT ROWID;
