"""Initial placement schema: providers, inventories, consumers, allocations,
traits, aggregates, and the indexes the candidate query uses.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-21
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# MySQL/MariaDB only (models.py says why): byte-wise string comparison,
# double-precision ratios, microseconds kept.
_MYSQL_TABLE = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4',
                'mysql_collate': 'utf8mb4_bin'}
_TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql')
_RATIO = sa.Float().with_variant(mysql.DOUBLE(asdecimal=False), 'mysql')

revision = '0001_initial'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'resource_providers',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('uuid', sa.String(36), nullable=False, unique=True),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.Column('parent_provider_id', sa.Integer(),
                  sa.ForeignKey('resource_providers.id'), nullable=True),
        sa.Column('root_provider_id', sa.Integer(),
                  sa.ForeignKey('resource_providers.id'), nullable=True),
        sa.Column('last_heartbeat', _TIMESTAMP, nullable=True),
        **_MYSQL_TABLE,
    )
    op.create_index('ix_resource_providers_name', 'resource_providers',
                    ['name'])
    op.create_index('ix_resource_providers_host', 'resource_providers',
                    ['host'])
    op.create_index('ix_resource_providers_root_provider_id',
                    'resource_providers', ['root_provider_id'])
    op.create_index('ix_resource_providers_root_alive', 'resource_providers',
                    ['parent_provider_id', 'last_heartbeat'])

    op.create_table(
        'inventories',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('resource_provider_id', sa.Integer(),
                  sa.ForeignKey('resource_providers.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('resource_class', sa.String(255), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('reserved', sa.Integer(), nullable=False),
        sa.Column('min_unit', sa.Integer(), nullable=False),
        sa.Column('max_unit', sa.Integer(), nullable=False),
        sa.Column('step_size', sa.Integer(), nullable=False),
        sa.Column('allocation_ratio', _RATIO, nullable=False),
        sa.Column('capacity', sa.Integer(), nullable=False),
        sa.Column('used', sa.Integer(), nullable=False),
        sa.UniqueConstraint('resource_provider_id', 'resource_class',
                            name='uniq_inventories0rp0rc'),
        **_MYSQL_TABLE,
    )
    op.create_index('ix_inventories_rc_rp', 'inventories',
                    ['resource_class', 'resource_provider_id'])

    op.create_table(
        'consumers',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('uuid', sa.String(36), nullable=False, unique=True),
        sa.Column('project_id', sa.String(255), nullable=False),
        sa.Column('user_id', sa.String(255), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        **_MYSQL_TABLE,
    )
    op.create_index('ix_consumers_project_id', 'consumers', ['project_id'])

    op.create_table(
        'allocations',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('resource_provider_id', sa.Integer(),
                  sa.ForeignKey('resource_providers.id'), nullable=False),
        sa.Column('consumer_id', sa.Integer(), sa.ForeignKey('consumers.id'),
                  nullable=False),
        sa.Column('resource_class', sa.String(255), nullable=False),
        sa.Column('used', sa.Integer(), nullable=False),
        **_MYSQL_TABLE,
    )
    op.create_index('ix_allocations_rp_rc', 'allocations',
                    ['resource_provider_id', 'resource_class'])
    op.create_index('ix_allocations_consumer', 'allocations', ['consumer_id'])

    op.create_table(
        'traits',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(255), nullable=False, unique=True),
        **_MYSQL_TABLE,
    )
    op.create_table(
        'resource_provider_traits',
        sa.Column('resource_provider_id', sa.Integer(),
                  sa.ForeignKey('resource_providers.id', ondelete='CASCADE'),
                  primary_key=True),
        sa.Column('trait_id', sa.Integer(), sa.ForeignKey('traits.id'),
                  primary_key=True),
        **_MYSQL_TABLE,
    )
    op.create_index('ix_rp_traits_trait', 'resource_provider_traits',
                    ['trait_id'])

    op.create_table(
        'aggregates',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('uuid', sa.String(36), nullable=False, unique=True),
        **_MYSQL_TABLE,
    )
    op.create_table(
        'resource_provider_aggregates',
        sa.Column('resource_provider_id', sa.Integer(),
                  sa.ForeignKey('resource_providers.id', ondelete='CASCADE'),
                  primary_key=True),
        sa.Column('aggregate_id', sa.Integer(), sa.ForeignKey('aggregates.id'),
                  primary_key=True),
        **_MYSQL_TABLE,
    )
    op.create_index('ix_rp_aggregates_aggregate',
                    'resource_provider_aggregates', ['aggregate_id'])
