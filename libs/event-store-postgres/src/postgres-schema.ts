// The tables and the append function of the PostgreSQL event store, created at connect when missing.
//
// The global order. A bigserial position is the known trap of PostgreSQL event stores: sequence
// values are handed out at insert and committed in any order, so a reader can see position 12
// while 11 is still uncommitted and skip it for ever. Marten answers with a "high water mark" (a
// daemon that waits for gaps to fill or time out), Emmett and Eventuous with transaction ids
// (readers stop at the oldest transaction still open). Here, as on EventStoreDB's leader, appends
// are serialised: every append locks the one `log_head` row first and takes its positions from it,
// and the row lock is held to the commit. A later append waits for the earlier one to commit
// (PostgreSQL makes a commit visible before it releases its locks), so positions are committed in
// their order and contiguous: a reader that sees position n sees every position below it. The cost
// is one append at a time per database — about what one EventStoreDB leader does, and measured in
// the benchmark; the checks and inserts run in one server-side function, one round trip each.
//
// Expected revisions: the stream's row holds its last revision; checked under the head lock, so no
// two appends can both pass the check. Idempotency: event ids are unique; an append whose first id
// is stored is a retry when all its ids sit at the expected place (then it writes nothing and
// answers the recorded positions), else EVENT_ID_CONFLICT — the rules of the SQLite store
// (libs/event-store-sqlite/src/write-batch.ts), checked with the same contract suite.
// Tags: (tag, key, position) rows written with their events; a condition is checked under the lock.

/** The schema's tables; `s` is a checked identifier. */
export function schemaSql(s: string): string {
  return `
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.log_head (
  id smallint PRIMARY KEY CHECK (id = 1),
  position bigint NOT NULL
);
INSERT INTO ${s}.log_head (id, position) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS ${s}.streams (
  stream_id text PRIMARY KEY,
  revision integer NOT NULL
);
CREATE TABLE IF NOT EXISTS ${s}.events (
  position bigint PRIMARY KEY,
  stream_id text NOT NULL,
  revision integer NOT NULL,
  event_id text NOT NULL UNIQUE,
  type text NOT NULL,
  data text NOT NULL,
  metadata text,
  created_ms bigint NOT NULL,
  UNIQUE (stream_id, revision)
);
CREATE TABLE IF NOT EXISTS ${s}.tags (
  tag text NOT NULL,
  key text NOT NULL,
  position bigint NOT NULL,
  PRIMARY KEY (tag, key, position)
);
-- The index (0-based, as text) of the first condition that does not hold: an event with its tag
-- and key after its position. NULL when all hold.
CREATE OR REPLACE FUNCTION ${s}.failed_condition(p_tags text[], p_keys text[], p_afters bigint[])
RETURNS text LANGUAGE sql STABLE AS $fc$
  SELECT (c.ord - 1)::text FROM unnest(p_tags, p_keys, p_afters) WITH ORDINALITY AS c(tag, key, after, ord)
  WHERE EXISTS (SELECT 1 FROM ${s}.tags t WHERE t.tag = c.tag AND t.key = c.key AND t.position > c.after)
  ORDER BY c.ord LIMIT 1
$fc$;
DROP FUNCTION IF EXISTS ${s}.append(text, text, text[], text[], text[], text[], integer[], text[], text[], text, text, bigint, bigint);
CREATE OR REPLACE FUNCTION ${s}.append(
  p_stream text, p_expected text, p_ids text[], p_types text[], p_data text[], p_metadata text[],
  p_tag_events integer[], p_tags text[], p_keys text[],
  p_condition_tags text[], p_condition_keys text[], p_condition_afters bigint[], p_created_ms bigint,
  OUT outcome text, OUT next_revision integer, OUT last_position bigint, OUT detail text)
LANGUAGE plpgsql AS $fn$
DECLARE
  head bigint;
  current_revision integer;
  n integer := cardinality(p_ids);
  start_revision integer;
  found_row record;
  i integer;
BEGIN
  -- the one lock every append takes first, held to the commit: positions are committed in order
  SELECT h.position INTO head FROM ${s}.log_head h WHERE h.id = 1 FOR UPDATE;
  SELECT st.revision INTO current_revision FROM ${s}.streams st WHERE st.stream_id = p_stream;
  current_revision := coalesce(current_revision, -1);

  SELECT e.stream_id, e.revision, e.position, e.type INTO found_row FROM ${s}.events e WHERE e.event_id = p_ids[1];
  IF FOUND THEN
    -- the first id is stored: a retry if every id sits at the expected place
    start_revision := CASE
      WHEN p_expected ~ '^[0-9]+$' THEN p_expected::integer + 1
      WHEN p_expected = 'no_stream' THEN 0
      ELSE found_row.revision END;
    FOR i IN 1..n LOOP
      IF i > 1 THEN
        SELECT e.stream_id, e.revision, e.position, e.type INTO found_row FROM ${s}.events e WHERE e.event_id = p_ids[i];
      END IF;
      IF NOT FOUND OR found_row.stream_id <> p_stream OR found_row.revision <> start_revision + i - 1
         OR found_row.type <> p_types[i] THEN
        -- not a retry, and what it was decided on has changed: that is what the caller must hear
        detail := ${s}.failed_condition(p_condition_tags, p_condition_keys, p_condition_afters);
        IF detail IS NOT NULL THEN outcome := 'condition'; RETURN; END IF;
        outcome := 'event_id'; detail := p_ids[i]; RETURN;
      END IF;
      last_position := found_row.position;
    END LOOP;
    outcome := 'retried'; next_revision := start_revision + n - 1; RETURN;
  END IF;

  IF NOT (p_expected = 'any'
       OR (p_expected = 'no_stream' AND current_revision < 0)
       OR (p_expected = 'stream_exists' AND current_revision >= 0)
       OR (p_expected ~ '^[0-9]+$' AND p_expected::bigint = current_revision)) THEN
    outcome := 'revision'; next_revision := current_revision; RETURN;
  END IF;
  -- probed before writing, so that a conflict leaves no partial append
  IF n > 1 THEN
    SELECT e.event_id INTO detail FROM ${s}.events e WHERE e.event_id = ANY (p_ids[2:n]) LIMIT 1;
    IF FOUND THEN outcome := 'event_id'; RETURN; END IF;
  END IF;
  detail := ${s}.failed_condition(p_condition_tags, p_condition_keys, p_condition_afters);
  IF detail IS NOT NULL THEN outcome := 'condition'; RETURN; END IF;

  INSERT INTO ${s}.events (position, stream_id, revision, event_id, type, data, metadata, created_ms)
    SELECT head + x.ord, p_stream, current_revision + x.ord::integer, x.id, x.type, x.data, x.metadata, p_created_ms
    FROM unnest(p_ids, p_types, p_data, p_metadata) WITH ORDINALITY AS x(id, type, data, metadata, ord);
  INSERT INTO ${s}.tags (tag, key, position)
    SELECT y.tag, y.key, head + y.event FROM unnest(p_tag_events, p_tags, p_keys) AS y(event, tag, key)
    ON CONFLICT DO NOTHING;
  INSERT INTO ${s}.streams (stream_id, revision) VALUES (p_stream, current_revision + n)
    ON CONFLICT (stream_id) DO UPDATE SET revision = EXCLUDED.revision;
  UPDATE ${s}.log_head SET position = head + n WHERE id = 1;
  -- delivered at the commit, to every instance listening: a wake-up, not the data
  PERFORM pg_notify('${s}_appended', (head + n)::text);
  outcome := 'written'; next_revision := current_revision + n; last_position := head + n;
END
$fn$;
-- Group commit: several appends in one transaction, each checked and written (or refused) on its
-- own exactly as append() does — a refused one writes nothing and the others go on — and one
-- commit (one WAL flush) for all. The events of all appends come as one set of arrays; p_counts
-- says how many belong to each append, tags name their event by its index in the whole set,
-- conditions their append by its index.
CREATE OR REPLACE FUNCTION ${s}.append_batch(
  p_streams text[], p_expected text[], p_counts integer[],
  p_ids text[], p_types text[], p_data text[], p_metadata text[],
  p_tag_events integer[], p_tags text[], p_keys text[],
  p_condition_appends integer[], p_condition_tags text[], p_condition_keys text[], p_condition_afters bigint[],
  p_created_ms bigint)
RETURNS TABLE (idx integer, outcome text, next_revision integer, last_position bigint, detail text)
LANGUAGE plpgsql AS $fb$
DECLARE
  i integer;
  off integer := 0;
  n integer;
  r record;
BEGIN
  FOR i IN 1..cardinality(p_streams) LOOP
    n := p_counts[i];
    SELECT * INTO r FROM ${s}.append(
      p_streams[i], p_expected[i], p_ids[off + 1 : off + n], p_types[off + 1 : off + n],
      p_data[off + 1 : off + n], p_metadata[off + 1 : off + n],
      coalesce(ARRAY(SELECT t.e - off FROM unnest(p_tag_events) WITH ORDINALITY AS t(e, o) WHERE t.e > off AND t.e <= off + n ORDER BY t.o), '{}'),
      coalesce(ARRAY(SELECT t.tag FROM unnest(p_tag_events, p_tags) WITH ORDINALITY AS t(e, tag, o) WHERE t.e > off AND t.e <= off + n ORDER BY t.o), '{}'),
      coalesce(ARRAY(SELECT t.key FROM unnest(p_tag_events, p_keys) WITH ORDINALITY AS t(e, key, o) WHERE t.e > off AND t.e <= off + n ORDER BY t.o), '{}'),
      coalesce(ARRAY(SELECT c.tag FROM unnest(p_condition_appends, p_condition_tags) WITH ORDINALITY AS c(a, tag, o) WHERE c.a = i ORDER BY c.o), '{}'),
      coalesce(ARRAY(SELECT c.key FROM unnest(p_condition_appends, p_condition_keys) WITH ORDINALITY AS c(a, key, o) WHERE c.a = i ORDER BY c.o), '{}'),
      coalesce(ARRAY(SELECT c.after FROM unnest(p_condition_appends, p_condition_afters) WITH ORDINALITY AS c(a, after, o) WHERE c.a = i ORDER BY c.o), '{}'),
      p_created_ms);
    idx := i; outcome := r.outcome; next_revision := r.next_revision; last_position := r.last_position; detail := r.detail;
    RETURN NEXT;
    off := off + n;
  END LOOP;
END
$fb$;`;
}
