"""What Placement's REST API needs: custom resource classes, providers that
no host owns, consumer types.

- ``resource_classes``: the custom classes (``CUSTOM_*``) created through
  ``/resource_classes``; the standard ones are os-resource-classes' and are
  not stored.
- ``resource_providers.host`` nullable: NULL is a provider created through
  the REST API, which no host's report ever touches
  (doc/source/rest-api.rst, "Ownership"); ``unique_name`` is the name
  of such a provider, NULL for a host's, and unique, as Placement's names.
- ``consumers.consumer_type`` (microversion 1.38): NULL is Placement's
  "unknown".
- ``allocations.rest_claim``: written through the REST API and not
  reported since by the host of the tree it is in, whose reports then keep
  it.

Revision ID: 0005_rest_api
Revises: 0004_mysql_candidates_index
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = '0005_rest_api'
down_revision = '0004_mysql_candidates_index'
branch_labels = None
depends_on = None

_MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4',
          'mysql_collate': 'utf8mb4_bin'}


def upgrade():
    op.create_table(
        'resource_classes',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(255), nullable=False),
        sa.UniqueConstraint('name', name='uniq_resource_classes0name'),
        **_MYSQL)
    with op.batch_alter_table('resource_providers') as batch:
        batch.alter_column('host', existing_type=sa.String(255),
                           nullable=True)
        batch.add_column(sa.Column('unique_name', sa.String(200),
                                   nullable=True))
        batch.create_unique_constraint(
            'uniq_resource_providers0unique_name', ['unique_name'])
    with op.batch_alter_table('consumers') as batch:
        batch.add_column(sa.Column('consumer_type', sa.String(255),
                                   nullable=True))
    op.add_column('allocations', sa.Column(
        'rest_claim', sa.Boolean(), nullable=False,
        server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('allocations') as batch:
        batch.drop_column('rest_claim')
    with op.batch_alter_table('consumers') as batch:
        batch.drop_column('consumer_type')
    op.execute('DELETE FROM resource_providers WHERE host IS NULL')
    with op.batch_alter_table('resource_providers') as batch:
        batch.drop_constraint('uniq_resource_providers0unique_name',
                              type_='unique')
        batch.drop_column('unique_name')
        batch.alter_column('host', existing_type=sa.String(255),
                           nullable=False)
    op.drop_table('resource_classes')
