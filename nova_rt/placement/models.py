"""SQL schema of the placement service (SQLAlchemy 2 declarative).

Differences from OpenStack Placement, each for the candidate query's sake:

- ``inventories`` carries ``capacity`` (``int((total - reserved) *
  allocation_ratio)``, computed when written) and ``used`` (the sum of the
  provider's allocations of that class, recomputed in the same transaction as
  every allocation write), so that asking "who can take this" is one indexed
  join with no aggregation over allocations; and ``root_provider_id`` (its
  provider's root, migration 0002), so that the join finds a class on any
  provider of a tree.
- Resource classes are plain strings in inventories and allocations; the
  custom ones created through the REST API are listed in
  ``resource_classes`` (migration 0005); traits and aggregates have their
  own tables as in Placement.
- ``last_heartbeat`` lives on the root provider (placement's own clock, UTC).

MySQL/MariaDB: tables compare strings byte for byte (``utf8mb4_bin``), as
PostgreSQL and SQLite do, so that host ``Compute1`` is never the owner of
``compute1``'s providers; ratios are DOUBLE (MySQL's FLOAT is single
precision: 1.1 would read back as another number, and every report would
look like an inventory change); times keep their microseconds.

The alembic migrations in ``migrations/versions`` create exactly this schema
(a unit test compares the two).
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from sqlalchemy import (
    Boolean, DateTime, Float, ForeignKey, Index, Integer, String, UniqueConstraint)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Options of every table on MySQL/MariaDB (ignored elsewhere).
MYSQL_TABLE = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4',
               'mysql_collate': 'utf8mb4_bin'}
TIMESTAMP = DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql')
# asdecimal=False: SQLAlchemy's DOUBLE reads back a Decimal by default, which
# no JSON (and no signature) takes.
RATIO = Float().with_variant(mysql.DOUBLE(asdecimal=False), 'mysql')


class Base(DeclarativeBase):
    pass


class ResourceProvider(Base):
    __tablename__ = 'resource_providers'
    __table_args__ = (
        # Not last_heartbeat: every report updates it, and an indexed column
        # would make every such update leave an entry in every index
        # (migration 0003, which also leaves room in each page).
        Index('ix_resource_providers_parent', 'parent_provider_id'),
        UniqueConstraint('unique_name',
                         name='uniq_resource_providers0unique_name'),
        {'postgresql_with': {'fillfactor': 50}, **MYSQL_TABLE},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    # NULL: created through the REST API, owned by no host (migration 0005).
    host: Mapped[str | None] = mapped_column(String(255), index=True,
                                             nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    parent_provider_id: Mapped[int | None] = mapped_column(
        ForeignKey('resource_providers.id'), nullable=True)
    root_provider_id: Mapped[int | None] = mapped_column(
        ForeignKey('resource_providers.id'), nullable=True, index=True)
    last_heartbeat: Mapped[datetime.datetime | None] = mapped_column(
        TIMESTAMP, nullable=True)
    # The name of a provider no host owns, NULL for a host's (migration
    # 0005): unique, so that two REST creates of one name cannot both
    # commit, as Placement's unique name; a host's names are its own and
    # predate the REST API.  (A plain column, not a partial index, which
    # MySQL has not.)
    unique_name: Mapped[str | None] = mapped_column(
        String(200), nullable=True)


#: The columns of ``ix_inventories_candidates``.
CANDIDATE_COLUMNS = ('resource_class', 'root_provider_id', 'capacity', 'used',
                     'min_unit', 'max_unit', 'step_size',
                     'resource_provider_id')


class Inventory(Base):
    __tablename__ = 'inventories'
    __table_args__ = (
        UniqueConstraint('resource_provider_id', 'resource_class',
                         name='uniq_inventories0rp0rc'),
        Index('ix_inventories_rc_rp', 'resource_class',
              'resource_provider_id'),
        Index('ix_inventories_rc_root', 'resource_class', 'root_provider_id'),
        # MySQL/MariaDB only (migration 0004): every column the candidate
        # query reads of an inventory, so that its join per class is one
        # index lookup, not that and the row's.  PostgreSQL joins by
        # hashing whole tables and would only lose heap-only updates of
        # ``used`` to it.
        Index('ix_inventories_candidates', *CANDIDATE_COLUMNS).ddl_if(
            dialect='mysql'),
        MYSQL_TABLE,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_provider_id: Mapped[int] = mapped_column(
        ForeignKey('resource_providers.id', ondelete='CASCADE'))
    resource_class: Mapped[str] = mapped_column(String(255))
    total: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    min_unit: Mapped[int] = mapped_column(Integer, default=1)
    max_unit: Mapped[int] = mapped_column(Integer)
    step_size: Mapped[int] = mapped_column(Integer, default=1)
    allocation_ratio: Mapped[float] = mapped_column(RATIO, default=1.0)
    capacity: Mapped[int] = mapped_column(Integer)
    used: Mapped[int] = mapped_column(Integer, default=0)
    # The provider's root (no foreign key: set with the provider's, and gone
    # with the provider).
    root_provider_id: Mapped[int | None] = mapped_column(Integer,
                                                         nullable=True)


class Consumer(Base):
    __tablename__ = 'consumers'
    __table_args__ = MYSQL_TABLE

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    user_id: Mapped[str] = mapped_column(String(255))
    generation: Mapped[int] = mapped_column(Integer, default=0)
    # Microversion 1.38; NULL is Placement's "unknown" (migration 0005).
    consumer_type: Mapped[str | None] = mapped_column(String(255),
                                                      nullable=True)


class Allocation(Base):
    __tablename__ = 'allocations'
    __table_args__ = (
        Index('ix_allocations_rp_rc', 'resource_provider_id',
              'resource_class'),
        Index('ix_allocations_consumer', 'consumer_id'),
        MYSQL_TABLE,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_provider_id: Mapped[int] = mapped_column(
        ForeignKey('resource_providers.id'))
    consumer_id: Mapped[int] = mapped_column(ForeignKey('consumers.id'))
    resource_class: Mapped[str] = mapped_column(String(255))
    used: Mapped[int] = mapped_column(Integer)
    # Written through the REST API (a scheduler's claim) and not reported
    # since by the host whose tree it is in: no report of that host drops
    # it (doc/source/rest-api.rst, "Ownership"; migration 0005).
    rest_claim: Mapped[bool] = mapped_column(
        Boolean, server_default=sa.false())


class ResourceClass(Base):
    """A custom resource class (the standard ones are os-resource-classes'
    and not stored)."""
    __tablename__ = 'resource_classes'
    __table_args__ = (UniqueConstraint('name',
                                       name='uniq_resource_classes0name'),
                      MYSQL_TABLE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))


class Trait(Base):
    __tablename__ = 'traits'
    __table_args__ = MYSQL_TABLE

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)


class ProviderTrait(Base):
    __tablename__ = 'resource_provider_traits'
    __table_args__ = (Index('ix_rp_traits_trait', 'trait_id'), MYSQL_TABLE)

    resource_provider_id: Mapped[int] = mapped_column(
        ForeignKey('resource_providers.id', ondelete='CASCADE'),
        primary_key=True)
    trait_id: Mapped[int] = mapped_column(ForeignKey('traits.id'),
                                          primary_key=True)


class Aggregate(Base):
    __tablename__ = 'aggregates'
    __table_args__ = MYSQL_TABLE

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)


class ProviderAggregate(Base):
    __tablename__ = 'resource_provider_aggregates'
    __table_args__ = (Index('ix_rp_aggregates_aggregate', 'aggregate_id'),
                      MYSQL_TABLE)

    resource_provider_id: Mapped[int] = mapped_column(
        ForeignKey('resource_providers.id', ondelete='CASCADE'),
        primary_key=True)
    aggregate_id: Mapped[int] = mapped_column(ForeignKey('aggregates.id'),
                                              primary_key=True)
