"""MySQL/MariaDB: an index that covers the candidate query's inventory joins.

MariaDB joins the candidate query's inventories one provider at a time, by
``ix_inventories_rc_root``, and then reads each row for its capacity and
usage: over 10,000 providers (three classes) that second read was a third of
the query (EXPLAIN ANALYZE, bench/bench_placement.py).  With every column it
reads in the index it reads the index only.  PostgreSQL hashes whole
tables for this query and is left as it is: there the index would only take
heap-only updates of ``used`` away from every allocation write.

Revision ID: 0004_mysql_candidates_index
Revises: 0003_provider_hot_updates
Create Date: 2026-12-07
"""

from alembic import op

revision = '0004_mysql_candidates_index'
down_revision = '0003_provider_hot_updates'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'mysql':
        # Written out, not models.CANDIDATE_COLUMNS: a migration keeps
        # building what it built when it was written.
        op.create_index('ix_inventories_candidates', 'inventories',
                        ['resource_class', 'root_provider_id', 'capacity',
                         'used', 'min_unit', 'max_unit', 'step_size',
                         'resource_provider_id'])


def downgrade():
    if op.get_bind().dialect.name == 'mysql':
        op.drop_index('ix_inventories_candidates', table_name='inventories')
