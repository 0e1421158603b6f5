"""Provider rows updated in place: no index on ``last_heartbeat``, room in
each page (PostgreSQL).

Every report bumps its root's generation and heartbeat.  With
``last_heartbeat`` in an index no such update could be a heap-only (HOT)
update, so each one added an entry to every index of the table, and the
dead ones piled up until autovacuum's next round: over 30 s of reports the
compare-and-swap and the lookups by host grew slower and PostgreSQL's CPU per
report doubled (bench/bench_placement.py).  The candidate query reads every
root anyway; the index it kept is the one on ``parent_provider_id``.

Revision ID: 0003_provider_hot_updates
Revises: 0002_inventory_root
Create Date: 2026-11-21
"""

from alembic import op

revision = '0003_provider_hot_updates'
down_revision = '0002_inventory_root'
branch_labels = None
depends_on = None


def upgrade():
    # The new index first: MySQL refuses to drop the one its foreign key on
    # parent_provider_id is using until another can serve it.
    op.create_index('ix_resource_providers_parent', 'resource_providers',
                    ['parent_provider_id'])
    op.drop_index('ix_resource_providers_root_alive',
                  table_name='resource_providers')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE resource_providers SET (fillfactor = 50)')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE resource_providers RESET (fillfactor)')
    op.create_index('ix_resource_providers_root_alive', 'resource_providers',
                    ['parent_provider_id', 'last_heartbeat'])
    op.drop_index('ix_resource_providers_parent',
                  table_name='resource_providers')
