-- Irreversible (no reverse file): drops a column the application reads.
ALTER TABLE stories DROP COLUMN views;
