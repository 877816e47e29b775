ALTER TABLE stories DROP COLUMN summary;
