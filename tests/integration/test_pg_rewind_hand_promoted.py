"""The rewind step after a promotion done by hand (``SELECT pg_promote()``, not the collection's pg_promote).

Nothing has checkpointed the new primary's timeline when the rewind starts right after such a promotion, so
module pg_rewind must do it (pg_rewind before 16 reads the source's timeline from its control file and would
answer "no rewind required" for a server that diverged). Runs on every suite.
"""

from __future__ import annotations

from test_pg_rewind import PASSWORD, quote, rewind


def test_a_hand_promoted_primary_is_checkpointed_and_the_diverged_old_primary_rewound(pg_pair):
    pg_pair.sql("pg1", "CREATE ROLE it_rewinder LOGIN SUPERUSER PASSWORD %s" % quote(PASSWORD))
    pg_pair.sql("pg1", "CREATE TABLE it_common (n int); INSERT INTO it_common VALUES (1)")
    pg_pair.wait_for(lambda: pg_pair.sql("pg2", "SELECT count(*) FROM pg_tables WHERE tablename = 'it_common'")
                     [0][0] == 1, what="pg2 to replay the common table")
    assert pg_pair.sql("pg2", "SELECT pg_promote(true, 60)")[0][0] is True
    pg_pair.sql("pg1", "CREATE TABLE it_diverged AS SELECT generate_series(1, 1000) AS n")
    pg_pair.sql("pg1", "CHECKPOINT")

    done = rewind(pg_pair)
    out = done.stdout
    assert done.returncode == 0, out[-4000:]
    assert "pg_rewind from pg2: rewound" in out, out[-4000:]
    # Whichever came first, the module's CHECKPOINT or the server's own, the control file is on timeline 2 now.
    assert pg_pair.sql("pg2", "SELECT timeline_id FROM pg_control_checkpoint()")[0][0] == 2
    assert PASSWORD not in out
