ALTER TABLE stories RENAME COLUMN headline TO title;
