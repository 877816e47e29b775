-- Applies, then the application fails: it reads stories.title.
ALTER TABLE stories RENAME COLUMN title TO headline;
