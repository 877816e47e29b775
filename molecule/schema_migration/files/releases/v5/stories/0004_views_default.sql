-- Needs an ACCESS EXCLUSIVE lock on stories (the lock test holds a conflicting one).
ALTER TABLE stories ALTER COLUMN views SET DEFAULT 1;
