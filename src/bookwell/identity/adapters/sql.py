"""Identity's tables and repositories on SQLAlchemy Core; rows are translated to domain objects here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON
from sqlalchemy import Column
from sqlalchemy import Connection
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import select

from bookwell.identity.domain import ApiKey
from bookwell.identity.domain import Organization
from bookwell.platform.db import SqlUnitOfWork
from bookwell.platform.db import UtcDateTime
from bookwell.platform.db import fetch_page
from bookwell.platform.db import metadata
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest

organizations = Table(
    "organizations",
    metadata,
    Column("id", String(30), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(30), primary_key=True),
    Column("organization_id", String(30), ForeignKey("organizations.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
    Index("ix_api_keys_organization_id_id", "organization_id", "id"),
)


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        scopes=frozenset(row.scopes),
        prefix=row.prefix,
        secret_hash=row.secret_hash,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class SqlOrganizationRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, organization: Organization) -> None:
        self._connection.execute(
            organizations.insert().values(
                id=organization.id,
                name=organization.name,
                created_at=organization.created_at,
            )
        )

    def get(self, organization_id: str) -> Organization | None:
        row = self._connection.execute(select(organizations).where(organizations.c.id == organization_id)).first()
        return None if row is None else Organization(id=row.id, name=row.name, created_at=row.created_at)

    def lock(self, organization_id: str) -> None:
        self._connection.execute(
            select(organizations.c.id).where(organizations.c.id == organization_id).with_for_update()
        )


class SqlApiKeyRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, key: ApiKey) -> None:
        self._connection.execute(
            api_keys.insert().values(
                id=key.id,
                organization_id=key.organization_id,
                name=key.name,
                scopes=sorted(key.scopes),
                prefix=key.prefix,
                secret_hash=key.secret_hash,
                created_at=key.created_at,
                last_used_at=key.last_used_at,
                revoked_at=key.revoked_at,
            )
        )

    def get(self, organization_id: str, key_id: str) -> ApiKey | None:
        query = select(api_keys).where(api_keys.c.organization_id == organization_id, api_keys.c.id == key_id)
        row = self._connection.execute(query).first()
        return None if row is None else _key(row)

    def by_prefix(self, prefix: str) -> ApiKey | None:
        row = self._connection.execute(select(api_keys).where(api_keys.c.prefix == prefix)).first()
        return None if row is None else _key(row)

    def list(self, organization_id: str, page: PageRequest) -> Page[ApiKey]:
        query = select(api_keys).where(api_keys.c.organization_id == organization_id)
        return fetch_page(self._connection, query, api_keys.c.id, page, _key)

    def count_active_with_scope(self, organization_id: str, scope: str) -> int:
        query = select(api_keys.c.scopes).where(
            api_keys.c.organization_id == organization_id,
            api_keys.c.revoked_at.is_(None),
        )
        return sum(1 for (scopes,) in self._connection.execute(query) if scope in scopes)

    def save_usage(self, key: ApiKey) -> None:
        self._connection.execute(
            api_keys.update()
            .where(api_keys.c.id == key.id)
            .values(last_used_at=key.last_used_at, revoked_at=key.revoked_at)
        )


class SqlIdentityUnitOfWork(SqlUnitOfWork):
    organizations: SqlOrganizationRepository
    api_keys: SqlApiKeyRepository

    def _open_repositories(self, connection: Connection) -> None:
        self.organizations = SqlOrganizationRepository(connection)
        self.api_keys = SqlApiKeyRepository(connection)
