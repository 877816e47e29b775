-- atomic: false
-- CREATE INDEX CONCURRENTLY cannot run in a transaction (Django: atomic = False). A failed run leaves an
-- invalid index, so it is dropped first.
DROP INDEX CONCURRENTLY IF EXISTS stories_created_idx;
CREATE INDEX CONCURRENTLY stories_created_idx ON stories (created_at);
