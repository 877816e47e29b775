-- A nullable column: no table rewrite, a short ACCESS EXCLUSIVE lock.
ALTER TABLE stories ADD COLUMN IF NOT EXISTS word_count integer;
