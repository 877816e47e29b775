-- Lab sample data shaped like the runbook's database: users and stories with random text.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE IF NOT EXISTS users (
    id bigint PRIMARY KEY,
    username text NOT NULL,
    email text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS stories (
    id bigint PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    title text NOT NULL,
    body text NOT NULL,
    views integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS stories_user_id_idx ON stories (user_id);
INSERT INTO users (id, username, email)
SELECT g, 'user_' || g, 'user_' || g || '@example.com'
  FROM generate_series(1, %s) AS g
ON CONFLICT DO NOTHING;
INSERT INTO stories (id, user_id, title, body, views)
SELECT g, 1 + mod(g, 1000), md5(random()::text), repeat(md5(random()::text), 8), (random() * 5000)::int
  FROM generate_series(1, (SELECT count(*) FROM users)) AS g
ON CONFLICT DO NOTHING;
ANALYZE users;
ANALYZE stories;
