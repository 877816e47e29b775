-- Fails half way: the first statement works, the second names a column that does not exist.
ALTER TABLE stories ADD COLUMN summary text;
UPDATE stories SET summary = no_such_column;
