-- atomic: false
DROP INDEX CONCURRENTLY IF EXISTS stories_created_idx;
