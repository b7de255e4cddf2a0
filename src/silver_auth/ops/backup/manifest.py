"""The manifest beside every dump: what the database held when it was dumped (per-table row counts and
checksums, schema revision, audit chain head) and the dump's own digest, sealed so that a backup edited
after it was made, dump or manifest, fails the restore drill (G24)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from silver_auth.audit.chain import HEAD_ID
from silver_auth.audit.models import AuditChainHead, AuditEvent
from silver_auth.db.migrations.env import target_metadata
from silver_auth.ops.backup.errors import BackupError

MANIFEST_NAME = "manifest.json"
FORMAT = 1
SEAL_CONTEXT = b"silver-auth backup manifest v1"
CHUNK = 1 << 20
ROW_BATCH = 1000


class TableDigest(msgspec.Struct, frozen=True):
    rows: int
    sha256: str
    """Of every row in primary-key order, each as canonical JSON: equal on a copy that holds the same rows."""


class ChainHead(msgspec.Struct, frozen=True):
    seq: int
    hash: str
    event_id: str | None
    """The newest sealed audit event."""
    unsealed: int
    """Events committed but not sealed yet when the dump was made."""


class DumpFile(msgspec.Struct, frozen=True):
    name: str
    format: str
    """`pg_dump-custom` (restore with `pg_restore`) or `sqlite` (the database file itself)."""
    bytes: int
    sha256: str


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    format: int = FORMAT
    backup_id: str
    created_at: datetime
    database: str
    """`postgresql` or `sqlite`."""
    server_version: str | None = None
    schema_revision: str
    software_version: str
    dump: DumpFile
    tables: dict[str, TableDigest]
    audit_chain: ChainHead | None
    seal: str = ""
    """HMAC-SHA256 of everything above, keyed from SILVER_KEY_PEPPER: the drill recomputes it."""

    @property
    def total_rows(self) -> int:
        return sum(table.rows for table in self.tables.values())


def _seal_key(pepper: bytes) -> bytes:
    return hmac.new(pepper, SEAL_CONTEXT, hashlib.sha256).digest()


def _unsealed_bytes(manifest: Manifest) -> bytes:
    return msgspec.json.encode(msgspec.structs.replace(manifest, seal=""), order="sorted")


def sealed(manifest: Manifest, pepper: bytes) -> Manifest:
    seal = hmac.new(_seal_key(pepper), _unsealed_bytes(manifest), hashlib.sha256).hexdigest()
    return msgspec.structs.replace(manifest, seal=seal)


def seal_holds(manifest: Manifest, pepper: bytes) -> bool:
    expected = hmac.new(_seal_key(pepper), _unsealed_bytes(manifest), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, manifest.seal)


def encode(manifest: Manifest) -> bytes:
    return msgspec.json.format(msgspec.json.encode(manifest, order="sorted"), indent=2) + b"\n"


def manifest_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def load(path: Path) -> tuple[Manifest, bytes]:
    """The manifest at `path` and its raw bytes; BackupError when it is not one."""
    try:
        raw = path.read_bytes()
        return msgspec.json.decode(raw, type=Manifest), raw
    except FileNotFoundError:
        raise BackupError(f"the backup holds no {MANIFEST_NAME}") from None
    except msgspec.ValidationError as exc:
        raise BackupError(f"{MANIFEST_NAME} is not a backup manifest: {exc}") from None
    except msgspec.DecodeError:
        raise BackupError(f"{MANIFEST_NAME} is not valid JSON: it was edited or cut short") from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


async def table_digests(connection: AsyncConnection) -> dict[str, TableDigest]:
    """Row count and checksum of every table of the schema, read on `connection` (one snapshot)."""
    digests = {}
    for table in sorted(target_metadata.sorted_tables, key=lambda table: table.name):
        order = list(table.primary_key.columns) or list(table.columns)
        digest = hashlib.sha256(json.dumps([column.name for column in table.columns]).encode() + b"\n")
        rows = 0
        result = await connection.stream(select(table).order_by(*order))
        async for batch in result.partitions(ROW_BATCH):
            for row in batch:
                line = json.dumps(list(row), default=_plain, sort_keys=True, separators=(",", ":"))
                digest.update(line.encode() + b"\n")
                rows += 1
        digests[table.name] = TableDigest(rows, digest.hexdigest())
    return digests


async def schema_revision(connection: AsyncConnection) -> str:
    revisions = (await connection.scalars(text("SELECT version_num FROM alembic_version"))).all()
    if not revisions:
        raise BackupError("the database has no schema revision: run `silver-auth migrate`")
    return ",".join(sorted(revisions))


async def chain_head(connection: AsyncConnection) -> ChainHead | None:
    head = (
        await connection.execute(
            select(AuditChainHead.seq, AuditChainHead.hash).where(AuditChainHead.id == HEAD_ID)
        )
    ).first()
    if head is None:
        return None
    event_id = await connection.scalar(select(AuditEvent.id).where(AuditEvent.seq == head.seq))
    unsealed = await connection.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.seq.is_(None))
    )
    return ChainHead(int(head.seq), str(head.hash), event_id, int(unsealed or 0))
