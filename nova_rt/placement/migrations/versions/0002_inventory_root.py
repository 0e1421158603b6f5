"""Inventories carry their provider's root, so that the candidate query finds
a class on any provider of a tree (PCI devices on child providers) with the
same one join per class as before.

Revision ID: 0002_inventory_root
Revises: 0001_initial
Create Date: 2026-11-21
"""

from alembic import op
import sqlalchemy as sa

revision = '0002_inventory_root'
down_revision = '0001_initial'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('inventories',
                  sa.Column('root_provider_id', sa.Integer(), nullable=True))
    op.execute(
        'UPDATE inventories SET root_provider_id = ('
        'SELECT root_provider_id FROM resource_providers '
        'WHERE resource_providers.id = inventories.resource_provider_id)')
    op.create_index('ix_inventories_rc_root', 'inventories',
                    ['resource_class', 'root_provider_id'])


def downgrade():
    op.drop_index('ix_inventories_rc_root', table_name='inventories')
    op.drop_column('inventories', 'root_provider_id')
