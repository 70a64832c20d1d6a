"""Subscription positions as one vector row per (leader, follower symbol), plus a small table of
per-subscription corrections; ``subscription_position`` becomes a view of the two.

A fill fanned out to N followers upserted N rows of subscription_position in its transaction:
N index probes, N heap updates and their WAL. It now rewrites one row per (leader, symbol): the
subscriptions' ids (uuid[], only rewritten when one is appended, so its TOAST value is kept
as it is otherwise) and their quantities (numeric[], the same order), merged under the row's
lock by ``subscription_position_merge`` (docs/measurements.md).

Executor reports and drift corrections move one subscription's position at a time, from
other transactions: rewriting a whole vector for each would cost as much as a fill. They go
to ``subscription_position_correction`` (one row per subscription and symbol, as before), and
the view adds the two.

The view reads one subscription's positions by its leader's vectors (array_position): what
the API and the dashboard ask. A whole book is read from the vectors directly
(fills.load_book), not through the view, which would scan each vector once per subscription.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08 00:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# ``added``: the subscriptions not in ``ids`` yet (their quantities are appended to
# ``merged``), empty when none are, so that the caller keeps the ids' stored value as it is.
# The joins are hash joins (a nested loop would compare every pair); a subscription moved
# twice in one call is summed once.
MERGE = """
CREATE FUNCTION subscription_position_merge(
    ids uuid[], qtys numeric[], moved uuid[], deltas numeric[],
    OUT added uuid[], OUT merged numeric[])
LANGUAGE plpgsql IMMUTABLE SET enable_nestloop = off AS $$
DECLARE
    matched bigint;
    added_deltas numeric[];
BEGIN
    SELECT array_agg(CASE WHEN d.sid IS NULL THEN e.qty ELSE e.qty + d.delta END ORDER BY e.i),
           count(d.sid)
      INTO merged, matched
      FROM unnest(ids, qtys) WITH ORDINALITY AS e(sid, qty, i)
      LEFT JOIN unnest(moved, deltas) AS d(sid, delta) ON d.sid = e.sid;
    merged := coalesce(merged, '{}');
    IF cardinality(merged) <> coalesce(cardinality(ids), 0) THEN
        RAISE EXCEPTION 'a subscription moved twice in one call';
    END IF;
    IF matched = coalesce(cardinality(moved), 0) THEN
        added := '{}';
        RETURN;
    END IF;
    SELECT array_agg(n.sid ORDER BY n.i), array_agg(n.delta ORDER BY n.i)
      INTO added, added_deltas
      FROM (SELECT d.sid, min(d.i) AS i, sum(d.delta) AS delta
              FROM unnest(moved, deltas) WITH ORDINALITY AS d(sid, delta, i)
             WHERE NOT EXISTS (SELECT FROM unnest(ids) AS e(sid) WHERE e.sid = d.sid)
             GROUP BY d.sid) n;
    merged := merged || added_deltas;
END $$
"""

# Per subscription: the symbol's quantity in its leader's vector, plus its correction.
VIEW = """
CREATE VIEW subscription_position AS
SELECT s.id AS subscription_id, k.symbol, k.qty, k.updated_at
  FROM subscription s
 CROSS JOIN LATERAL (
        SELECT u.symbol, sum(u.qty) AS qty, max(u.updated_at) AS updated_at
          FROM (SELECT v.symbol, v.qtys[v.i] AS qty, v.updated_at
                  FROM (SELECT symbol, qtys, updated_at,
                               array_position(subscription_ids, s.id) AS i
                          FROM subscription_position_vector
                         WHERE leader_id = s.leader_id OFFSET 0) v
                 WHERE v.i IS NOT NULL
                UNION ALL
                SELECT c.symbol, c.qty, c.updated_at
                  FROM subscription_position_correction c
                 WHERE c.subscription_id = s.id) u
         GROUP BY u.symbol) k
"""


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE subscription_position_vector (
            leader_id uuid NOT NULL,
            symbol varchar(48) NOT NULL,
            subscription_ids uuid[] NOT NULL,
            qtys numeric[] NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_subscription_position_vector PRIMARY KEY (leader_id, symbol),
            CONSTRAINT fk_subscription_position_vector_leader_id_leader
                FOREIGN KEY (leader_id) REFERENCES leader (id),
            CONSTRAINT ck_subscription_position_vector_aligned
                CHECK (cardinality(subscription_ids) = cardinality(qtys))
        ) WITH (fillfactor = 50)
        """
    )
    # No foreign key to subscription (see follower_order): subscriptions are never deleted.
    op.execute(
        """
        CREATE TABLE subscription_position_correction (
            subscription_id uuid NOT NULL,
            symbol varchar(48) NOT NULL,
            qty numeric NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_subscription_position_correction
                PRIMARY KEY (subscription_id, symbol)
        ) WITH (fillfactor = 50)
        """
    )
    op.execute(MERGE)
    # Every existing position moves into its leader's vector (a row whose subscription is
    # gone has no leader to go under, and no reader could see it).
    op.execute(
        """
        INSERT INTO subscription_position_vector (leader_id, symbol, subscription_ids, qtys,
                                                  updated_at)
        SELECT s.leader_id, p.symbol, array_agg(p.subscription_id ORDER BY p.subscription_id),
               array_agg(p.qty ORDER BY p.subscription_id), max(p.updated_at)
          FROM subscription_position p JOIN subscription s ON s.id = p.subscription_id
         GROUP BY s.leader_id, p.symbol
        """
    )
    op.execute("DROP TABLE subscription_position")
    op.execute(VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW subscription_position")
    op.execute(
        """
        CREATE TABLE subscription_position (
            subscription_id uuid NOT NULL,
            symbol varchar(48) NOT NULL,
            qty numeric NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_subscription_position PRIMARY KEY (subscription_id, symbol)
        ) WITH (fillfactor = 50)
        """
    )
    op.execute(
        """
        INSERT INTO subscription_position (subscription_id, symbol, qty, updated_at)
        SELECT subscription_id, symbol, sum(qty), max(updated_at)
          FROM (SELECT u.sid AS subscription_id, v.symbol, u.qty, v.updated_at
                  FROM subscription_position_vector v
                 CROSS JOIN LATERAL unnest(v.subscription_ids, v.qtys) AS u(sid, qty)
                UNION ALL
                SELECT subscription_id, symbol, qty, updated_at
                  FROM subscription_position_correction) p
         GROUP BY subscription_id, symbol
        """
    )
    op.execute("DROP TABLE subscription_position_correction")
    op.execute("DROP TABLE subscription_position_vector")
    op.execute(
        "DROP FUNCTION subscription_position_merge(uuid[], numeric[], uuid[], numeric[])"
    )
