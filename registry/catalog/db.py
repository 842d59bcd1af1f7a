"""The catalog database: opens (and migrates) SQLite or PostgreSQL; every query the registry needs.

Migrations are applied on open (Alembic ``upgrade head``), serialised across processes by a PostgreSQL
advisory lock or a lock file beside the SQLite database. Any connection failure becomes
``CatalogUnavailable``; on PostgreSQL every call is bounded by ``timeout_s`` (``watchdog``; a schema upgrade
by MIGRATION_TIMEOUT_S).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from registry.catalog.watchdog import DEFAULT_TIMEOUT_S, Expired, Watchdog
from registry.errors import CatalogUnavailable, InvalidInput

F = TypeVar("F", bound=Callable[..., Any])
_MIGRATE_LOCK_ID = 0x7472_7462  # pg_advisory_lock key ("trtb")
GC_LOCK_ID = 0x7472_7467  # pg_advisory_lock key of the gc lock ("trtg"); see gc_lock()
PUSH_TTL_S = 24 * 3600.0  # a push registration older than this is from a killed push: it protects nothing
LOCK_POLL_S = 0.25
MIGRATION_TIMEOUT_S = 3600.0  # the schema upgrade itself (index builds on a large catalog) may take long
PING_IDLE_S = 2.0  # a pooled connection idle longer than this is pinged before use


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def manifest_blobs(manifest: Any) -> set[str] | None:
    """The blob digests a manifest object names, or None when it is not a manifest object at all."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        return None
    out: set[str] = set()
    for entry in manifest["files"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            return None
        out.add(entry["sha256"])
    return out


def _wrap_db_errors(fn: F) -> F:
    """Connection failures become CatalogUnavailable; on PostgreSQL the call runs under the watchdog's
    deadline (a frozen server fails it within TRTBUILD_DB_TIMEOUT seconds instead of hanging)."""

    @functools.wraps(fn)
    def inner(self: Catalog, *args: Any, **kwargs: Any) -> Any:
        from sqlalchemy.exc import DBAPIError, OperationalError

        try:
            with self._deadline():
                return fn(self, *args, **kwargs)
        except (OperationalError, DBAPIError, Expired) as exc:
            if (
                isinstance(exc, DBAPIError)
                and not exc.connection_invalidated
                and not isinstance(exc, OperationalError)
            ):
                raise
            raise self._unavailable(exc) from None

    return inner  # type: ignore[return-value]


def _check_sqlite_path(path: Path, url: str) -> None:
    """A SQLite catalog's file may be created, but not its directory: a typo in the URL is an error
    naming the path, never a new empty registry somewhere else."""
    import os

    fix = "fix TRTBUILD_DB_URL / --db-url (sqlite:////absolute/path/registry.db)"
    directory = path.parent
    if not directory.is_dir():
        raise InvalidInput(f"the directory {directory} of the catalog {url} does not exist", hint=fix)
    try:
        read_only = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:  # a fault of the machine (exit 1), not a wrong URL
        raise CatalogUnavailable(
            f"the catalog {url} cannot be written: the file system of {directory} is read-only",
            hint="remount it read-write, or fix TRTBUILD_DB_URL / --db-url",
        )
    if not os.access(directory, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InvalidInput(
            f"the catalog {url} cannot be written: {path if path.exists() else directory} is not writable "
            "(SQLite writes its journal beside the file)",
            hint=f"make it writable, or {fix}",
        )


class Catalog:
    """SQL catalog of artifacts, names, tags (with history), build leases and pushes in flight."""

    def __init__(self, url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """``timeout_s``: how long one PostgreSQL call may take (the watchdog; see module doc)."""
        from sqlalchemy import create_engine, event
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise InvalidInput(
                f"invalid database URL {url!r}",
                hint="e.g. sqlite:////path/registry.db or postgresql+psycopg://user@host/db",
            ) from exc
        self.safe_url = parsed.render_as_string(hide_password=True)
        self.dialect = parsed.get_backend_name()
        self.timeout_s = timeout_s if timeout_s > 0 else DEFAULT_TIMEOUT_S
        self._watchdog = Watchdog(self.timeout_s) if self.dialect == "postgresql" else None
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                _check_sqlite_path(Path(parsed.database).expanduser(), self.safe_url)
            kwargs["connect_args"] = {"timeout": 60}
        elif self.dialect == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": max(1, min(10, int(self.timeout_s)))}
        from sqlalchemy.exc import NoSuchModuleError

        try:
            self.engine = create_engine(parsed, **kwargs)
        except NoSuchModuleError:
            raise InvalidInput(
                f"the catalog URL {self.safe_url} names no database SQLAlchemy knows ({parsed.drivername})",
                hint="use sqlite:////path/registry.db or postgresql+psycopg://user@host/db",
            ) from None
        except ModuleNotFoundError as exc:
            raise CatalogUnavailable(
                f"the database driver for {self.safe_url} is not installed ({exc.name})",
                hint="pip install 'trtbuild[postgres]' for PostgreSQL (psycopg 3)",
            ) from None
        if self._watchdog is not None:
            self._watch_connections(self._watchdog)
        self._ping_when_idle()
        if self.dialect == "sqlite":

            @event.listens_for(self.engine, "connect")
            def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (IMMEDIATE for writes)
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=60000")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()

            @event.listens_for(self.engine, "begin")
            def _sqlite_begin(conn: Any) -> None:
                immediate = conn.get_execution_options().get("write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        self._migrate()

    def _watch_connections(self, watchdog: Watchdog) -> None:
        """PostgreSQL: the watchdog knows which thread holds which connection (registered before the idle
        ping, which may itself hang on a frozen server); every new connection gets the same deadline as
        the server's own ``statement_timeout``."""
        from sqlalchemy import event

        @event.listens_for(self.engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute(f"SET statement_timeout = {int(self.timeout_s * 1000)}")
            cur.close()
            dbapi_conn.commit()

        @event.listens_for(self.engine, "checkout")
        def _checkout(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
            watchdog.checkout(record)

        @event.listens_for(self.engine, "checkin")
        def _checkin(_dbapi_conn: Any, record: Any) -> None:
            watchdog.checkin(record)

    def _deadline(self) -> contextlib.AbstractContextManager[None]:
        return self._watchdog.deadline() if self._watchdog is not None else contextlib.nullcontext()

    def _extended(self, seconds: float) -> contextlib.AbstractContextManager[None]:
        return self._watchdog.extended(seconds) if self._watchdog is not None else contextlib.nullcontext()

    def _unavailable(self, exc: BaseException) -> CatalogUnavailable:
        if self._watchdog is not None and (isinstance(exc, Expired) or self._watchdog.expired()):
            return CatalogUnavailable(
                f"the catalog database {self.safe_url} did not answer within {self.timeout_s:g} s",
                hint="check that the database server is running and not overloaded; "
                "TRTBUILD_DB_TIMEOUT sets this limit (seconds)",
            )
        orig = getattr(exc, "orig", None) or exc
        first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        hint = "check that the database is running and reachable, and TRTBUILD_DB_URL / --db-url"
        if self.dialect == "sqlite":
            hint = (
                "the SQLite file and its directory must be writable, on a disk with free space "
                "(TRTBUILD_DB_URL / --db-url choose another)"
            )
        return CatalogUnavailable(f"cannot use the catalog database {self.safe_url}: {first}", hint=hint)

    def _ping_when_idle(self) -> None:
        """Like ``pool_pre_ping``, but only for connections idle longer than PING_IDLE_S: a connection the
        server dropped (restart, idle timeout) is replaced before use, and a busy caller (resolve in a loop)
        does not pay one extra round trip per query."""
        from sqlalchemy import event
        from sqlalchemy.exc import DisconnectionError

        dialect = self.engine.dialect

        @event.listens_for(self.engine, "checkout")
        def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
            last = record.info.get("trtbuild_last_used")
            if last is not None and time.monotonic() - last > PING_IDLE_S:
                try:
                    dialect.do_ping(dbapi_conn)
                except Exception as exc:  # noqa: BLE001 - any failure: let the pool reconnect
                    raise DisconnectionError(str(exc)) from exc

        @event.listens_for(self.engine, "checkin")
        def _checkin(_dbapi_conn: Any, record: Any) -> None:
            record.info["trtbuild_last_used"] = time.monotonic()

    # -- schema ------------------------------------------------------------------------------------------
    @staticmethod
    def _alembic_config() -> Any:
        from alembic.config import Config

        import registry.migrations

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(registry.migrations.__file__).parent))
        return cfg

    def _at_head(self) -> bool:
        """The schema is at HEAD_REVISION, read with plain SQL so opening a migrated catalog never imports
        Alembic (it costs ~0.1 s; a cache-hit build is budgeted at 0.5 s in all)."""
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError, ProgrammingError

        from registry.migrations import HEAD_REVISION

        try:
            with self.engine.connect() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION
        except DBAPIError as exc:  # no alembic_version table yet (an empty database); else: unreachable
            if isinstance(exc, ProgrammingError) or "no such table" in str(exc.orig):
                return False
            raise

    @_wrap_db_errors
    def _migrate(self) -> None:
        if self._at_head():
            return
        from alembic import command
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = self._alembic_config()
        scripts = ScriptDirectory.from_config(cfg)
        head = scripts.get_current_head()
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return
        if current is not None and current not in {rev.revision for rev in scripts.walk_revisions()}:
            raise CatalogUnavailable(
                f"the catalog at {self.engine.url.render_as_string(hide_password=True)} has schema revision "
                f"{current!r}, newer than this trtbuild knows (up to {head!r})",
                hint="upgrade trtbuild on this machine (pip install -U trtbuild); never downgrade a catalog",
            )
        with self._extended(MIGRATION_TIMEOUT_S), self._migration_lock() as conn:
            if MigrationContext.configure(conn).get_current_revision() != head:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[Any]:
        from sqlalchemy import text

        if self.dialect == "postgresql":
            with self.engine.connect() as conn:
                conn.execute(text("SET statement_timeout = 0"))  # index builds on a large catalog take time
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATE_LOCK_ID})
                conn.commit()
                try:
                    yield conn
                finally:
                    conn.rollback()
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATE_LOCK_ID})
                    conn.execute(text(f"SET statement_timeout = {int(self.timeout_s * 1000)}"))
                    conn.commit()
            return
        database = self.engine.url.database
        if self.dialect == "sqlite" and database and database != ":memory:":
            import fcntl

            with open(f"{database}.migrate.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                with self.engine.connect() as conn:
                    yield conn
            return
        with self.engine.connect() as conn:
            yield conn

    # -- sessions ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _read(self) -> Iterator[Any]:
        from sqlalchemy.orm import Session

        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    @contextlib.contextmanager
    def _write(self) -> Iterator[Any]:
        from sqlalchemy.orm import Session

        with self.engine.connect() as conn:
            conn = conn.execution_options(write=True)
            with Session(bind=conn, expire_on_commit=False) as s:
                try:
                    yield s
                    s.commit()
                except BaseException:
                    s.rollback()
                    raise

    def _insert(self, model: Any) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            return postgresql_insert(model)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(model)

    @_wrap_db_errors
    def now(self) -> float:
        """Epoch seconds from the database's clock (PostgreSQL) or this host (SQLite)."""
        if self.dialect == "postgresql":
            from sqlalchemy import text

            with self.engine.connect() as conn:
                return float(conn.execute(text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar_one())
        return time.time()

    # -- artifacts ---------------------------------------------------------------------------------------
    @_wrap_db_errors
    def get_row(self, hash_: str) -> Any | None:
        from registry.catalog.models import ArtifactRow

        with self._read() as s:
            return s.get(ArtifactRow, hash_)

    @functools.cached_property
    def _read_engine(self) -> Any:
        """The engine for single-purpose reads. PostgreSQL: autocommit (no BEGIN/ROLLBACK round trips; under
        READ COMMITTED every statement takes its own snapshot anyway). SQLite: a plain read transaction."""
        if self.dialect == "postgresql":
            return self.engine.execution_options(isolation_level="AUTOCOMMIT")
        return self.engine

    @functools.cached_property
    def _full_stmts(self) -> tuple[Any, Any]:
        """(the whole artifact row by hash, its names and tags in one UNION ALL), built once."""
        from sqlalchemy import CompoundSelect, bindparam, literal_column, select, union_all

        from registry.catalog.models import ArtifactName, ArtifactRow, TagRow

        row = select(ArtifactRow.__table__).where(ArtifactRow.hash == bindparam("hash"))
        refs: CompoundSelect[Any] = union_all(
            select(
                literal_column("'n'").label("k"),
                ArtifactName.name.label("a"),
                ArtifactName.name.label("b"),
                ArtifactName.created_at.label("t"),
            ).where(ArtifactName.hash == bindparam("hash")),
            select(literal_column("'t'"), TagRow.name, TagRow.tag, TagRow.updated_at).where(
                TagRow.hash == bindparam("hash")
            ),
        )
        return row, refs

    @_wrap_db_errors
    def get_full(self, hash_: str) -> tuple[Any, list[str], list[str]] | None:
        """(row, names, "name:tag" tags) of one artifact: two statements on one connection, or None.
        The row has the ORM model's attributes (``row.hash``, ``row.manifest`` ...)."""
        row_stmt, refs_stmt = self._full_stmts
        with self._read_engine.connect() as conn:
            row = conn.execute(row_stmt, {"hash": hash_}).first()
            if row is None:
                return None
            names: list[tuple[Any, str]] = []
            tags: list[tuple[str, str]] = []
            for k, a, b, t in conn.execute(refs_stmt, {"hash": hash_}):
                if k == "n":
                    names.append((as_utc(t), a))
                else:
                    tags.append((a, b))
        names.sort(key=lambda nt: nt[0])  # stable: order of first push under each name
        return row, [n for _, n in names], [f"{n}:{t}" for n, t in sorted(tags)]

    @_wrap_db_errors
    def names_of(self, hash_: str) -> list[str]:
        from sqlalchemy import select

        from registry.catalog.models import ArtifactName

        with self._read() as s:
            return list(
                s.scalars(
                    select(ArtifactName.name)
                    .where(ArtifactName.hash == hash_)
                    .order_by(ArtifactName.created_at)
                )
            )

    @_wrap_db_errors
    def tags_of(self, hash_: str) -> list[str]:
        from sqlalchemy import select

        from registry.catalog.models import TagRow

        with self._read() as s:
            rows = s.execute(
                select(TagRow.name, TagRow.tag).where(TagRow.hash == hash_).order_by(TagRow.name, TagRow.tag)
            )
            return [f"{n}:{t}" for n, t in rows]

    @_wrap_db_errors
    def hash_for_tag(self, name: str, tag: str) -> str | None:
        from registry.catalog.models import TagRow

        with self._read() as s:
            row = s.get(TagRow, (name, tag))
            return row.hash if row else None

    @_wrap_db_errors
    def hashes_with_prefix(self, prefix: str, *, name: str | None = None, limit: int = 11) -> list[str]:
        """Artifact hashes starting with ``prefix`` (``sha256:`` + hex digits), at most ``limit``, sorted;
        only those pushed under ``name`` when given."""
        from sqlalchemy import select

        from registry.catalog.models import ArtifactName, ArtifactRow

        if name:
            q = select(ArtifactName.hash).where(
                ArtifactName.name == name, ArtifactName.hash.startswith(prefix)
            )
        else:
            q = select(ArtifactRow.hash).where(ArtifactRow.hash.startswith(prefix))
        with self._read() as s:
            return list(s.scalars(q.order_by(q.selected_columns[0]).limit(limit)))

    @_wrap_db_errors
    def has_name(self, name: str, hash_: str) -> bool:
        from registry.catalog.models import ArtifactName

        with self._read() as s:
            return s.get(ArtifactName, (name, hash_)) is not None

    @_wrap_db_errors
    def publish(self, values: dict[str, Any], name: str, tag: str | None) -> bool:
        """Insert the artifact row (if new), its name and tag in one transaction. True if the row is new."""
        from registry.catalog.models import ArtifactName, ArtifactRow

        with self._write() as s:
            stmt = (
                self._insert(ArtifactRow)
                .values(**values)
                .on_conflict_do_nothing()
                .returning(ArtifactRow.hash)
            )
            created = s.connection().execute(stmt).first() is not None
            s.execute(
                self._insert(ArtifactName)
                .values(name=name, hash=values["hash"], created_at=values["created_at"])
                .on_conflict_do_nothing()
            )
            if tag:
                self._set_tag(s, name, tag, values["hash"])
        return created

    def _set_tag(self, s: Any, name: str, tag: str, hash_: str) -> None:
        from sqlalchemy import select

        from registry.catalog.models import TagEvent, TagRow

        now = utcnow()
        prev = s.scalar(select(TagRow.hash).where(TagRow.name == name, TagRow.tag == tag).with_for_update())
        if prev == hash_:
            return
        stmt = self._insert(TagRow).values(name=name, tag=tag, hash=hash_, updated_at=now)
        s.execute(
            stmt.on_conflict_do_update(
                index_elements=["name", "tag"], set_={"hash": hash_, "updated_at": now}
            )
        )
        s.add(TagEvent(name=name, tag=tag, hash=hash_, previous_hash=prev, changed_at=now))

    @_wrap_db_errors
    def set_tag(self, name: str, tag: str, hash_: str) -> None:
        from registry.catalog.models import ArtifactName

        with self._write() as s:
            s.execute(
                self._insert(ArtifactName)
                .values(name=name, hash=hash_, created_at=utcnow())
                .on_conflict_do_nothing()
            )
            self._set_tag(s, name, tag, hash_)

    @_wrap_db_errors
    def remove_tag(self, name: str, tag: str) -> str | None:
        """Delete ``name:tag`` (history records the removal); the hash it pointed to, or None if absent."""
        from sqlalchemy import delete, select

        from registry.catalog.models import TagEvent, TagRow

        with self._write() as s:
            prev = s.scalar(
                select(TagRow.hash).where(TagRow.name == name, TagRow.tag == tag).with_for_update()
            )
            if prev is None:
                return None
            s.execute(delete(TagRow).where(TagRow.name == name, TagRow.tag == tag))
            s.add(TagEvent(name=name, tag=tag, hash=None, previous_hash=prev, changed_at=utcnow()))
            return prev

    @_wrap_db_errors
    def leased(self, hashes: Sequence[str]) -> set[str]:
        """Those of ``hashes`` whose build key has a live lease (a build is publishing under it)."""
        from sqlalchemy import select

        from registry.catalog.models import ArtifactRow, LeaseRow

        if not hashes:
            return set()
        live = select(LeaseRow.build_key).where(LeaseRow.expires_at > self.now())
        with self._read() as s:
            return set(
                s.scalars(
                    select(ArtifactRow.hash).where(
                        ArtifactRow.hash.in_(hashes), ArtifactRow.build_key.in_(live)
                    )
                )
            )

    @_wrap_db_errors
    def all_hashes(self) -> list[str]:
        """Every artifact hash, newest first (no JSON columns loaded: one bad row cannot stop a scan)."""
        from sqlalchemy import select

        from registry.catalog.models import ArtifactRow

        with self._read() as s:
            return list(s.scalars(select(ArtifactRow.hash).order_by(ArtifactRow.created_at.desc())))

    @_wrap_db_errors
    def tag_history(self, name: str, tag: str) -> list[tuple[str | None, str | None, datetime]]:
        from sqlalchemy import select

        from registry.catalog.models import TagEvent

        with self._read() as s:
            rows = s.execute(
                select(TagEvent.hash, TagEvent.previous_hash, TagEvent.changed_at)
                .where(TagEvent.name == name, TagEvent.tag == tag)
                .order_by(TagEvent.id)
            )
            return [(h, p, as_utc(c)) for h, p, c in rows]

    @_wrap_db_errors
    def list_rows(
        self,
        name: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
        bad: list[tuple[str, str]] | None = None,
    ) -> list[Any]:
        """Rows newest first. With ``bad``, a row whose columns cannot be decoded (a buggy or hostile writer)
        is skipped and appended there as (hash, why) instead of failing the whole listing."""
        from sqlalchemy import select

        from registry.catalog.models import ArtifactName, ArtifactRow

        def query(what: Any) -> Any:
            q = select(what)
            if name:
                q = q.join(ArtifactName, ArtifactName.hash == ArtifactRow.hash).where(
                    ArtifactName.name == name
                )
            if kind:
                q = q.where(ArtifactRow.kind == kind)
            q = q.order_by(ArtifactRow.created_at.desc(), ArtifactRow.hash)
            return q.limit(limit) if limit else q

        with self._read() as s:
            try:
                return list(s.scalars(query(ArtifactRow)))
            except (ValueError, TypeError, LookupError, UnicodeError):
                if bad is None:
                    raise
                s.rollback()
            rows = []
            for (hash_,) in s.execute(query(ArtifactRow.hash)):  # one by one, to find the bad ones
                try:
                    rows.append(s.get(ArtifactRow, hash_))
                except (ValueError, TypeError, LookupError, UnicodeError) as exc:
                    s.rollback()
                    bad.append((str(hash_), f"a column cannot be read: {exc}"))
            return rows

    @_wrap_db_errors
    def find_by_build_key(self, build_key: str, kind: str) -> Any | None:
        from sqlalchemy import select

        from registry.catalog.models import ArtifactRow

        q = (
            select(ArtifactRow)
            .where(ArtifactRow.build_key == build_key, ArtifactRow.kind == kind)
            .order_by(ArtifactRow.created_at.desc())
            .limit(1)
        )
        with self._read() as s:
            return s.scalars(q).first()

    @functools.cached_property
    def _candidates_stmt(self) -> Any:
        """The resolve query, built once (bind parameters: name, kind, limit)."""
        from sqlalchemy import bindparam, select

        from registry.catalog.models import ArtifactName, ArtifactRow

        cols = (
            ArtifactRow.hash,
            ArtifactRow.name,
            ArtifactRow.kind,
            ArtifactRow.size,
            ArtifactRow.build_key,
            ArtifactRow.created_at,
            ArtifactRow.gpu_arch,
            ArtifactRow.trtllm_version,
            ArtifactRow.cuda_version,
            ArtifactRow.tp,
            ArtifactRow.pp,
            ArtifactRow.driver_version,
            ArtifactRow.gpu_name,
        )
        return (
            select(*cols)
            .join(ArtifactName, ArtifactName.hash == ArtifactRow.hash)
            .where(ArtifactName.name == bindparam("name"), ArtifactRow.kind == bindparam("kind"))
            .order_by(ArtifactName.created_at.desc())
            .limit(bindparam("limit"))
        )

    @_wrap_db_errors
    def candidates(self, name: str, kind: str, limit: int) -> list[Any]:
        """Rows for resolve: only the columns resolve needs, newest first (no JSON columns loaded)."""
        with self._read_engine.connect() as conn:
            return list(
                conn.execute(self._candidates_stmt, {"name": name, "kind": kind, "limit": limit}).mappings()
            )

    # -- leases ------------------------------------------------------------------------------------------
    @_wrap_db_errors
    def acquire_lease(self, build_key: str, holder: str, ttl_s: float) -> bool:
        from sqlalchemy import or_, update

        from registry.catalog.models import LeaseRow

        now = self.now()
        with self._write() as s:
            ins = self._insert(LeaseRow).values(
                build_key=build_key, holder=holder, acquired_at=now, expires_at=now + ttl_s
            )
            if (
                s.connection().execute(ins.on_conflict_do_nothing().returning(LeaseRow.build_key)).first()
                is not None
            ):
                return True
            res = s.connection().execute(
                update(LeaseRow)
                .where(
                    LeaseRow.build_key == build_key, or_(LeaseRow.expires_at < now, LeaseRow.holder == holder)
                )
                .values(holder=holder, acquired_at=now, expires_at=now + ttl_s)
                .returning(LeaseRow.build_key)
            )
            return res.first() is not None

    @_wrap_db_errors
    def renew_lease(self, build_key: str, holder: str, ttl_s: float) -> bool:
        from sqlalchemy import update

        from registry.catalog.models import LeaseRow

        now = self.now()
        with self._write() as s:
            res = s.connection().execute(
                update(LeaseRow)
                .where(LeaseRow.build_key == build_key, LeaseRow.holder == holder)
                .values(expires_at=now + ttl_s)
            )
            return res.rowcount == 1

    @_wrap_db_errors
    def release_lease(self, build_key: str, holder: str) -> None:
        from sqlalchemy import delete

        from registry.catalog.models import LeaseRow

        with self._write() as s:
            s.execute(delete(LeaseRow).where(LeaseRow.build_key == build_key, LeaseRow.holder == holder))

    # -- pushes in flight and the gc lock -----------------------------------------------------------------
    # gc holds the gc lock exclusively from reading what the catalog references until its last deletion;
    # a push registers the blobs it will rely on (a ``pushes`` row) holding the lock shared, and only then
    # asks the store which of them exist. So either gc read the registration and keeps those blobs, or gc
    # had finished deleting before the push looked, and the push uploads what is missing.
    # PostgreSQL: an advisory lock; SQLite: flock on a file beside the database.
    def begin_push(
        self, push_id: str, hash_: str, blobs: Sequence[str], on_wait: Callable[[], None] | None = None
    ) -> None:
        """Register a push (waiting while a gc sweeps). Its blobs are kept by every later gc until
        end_push (or for PUSH_TTL_S, should the pusher be killed)."""
        waited = False
        while not self._try_begin_push(push_id, hash_, list(blobs)):
            if not waited and on_wait is not None:
                on_wait()
            waited = True
            time.sleep(LOCK_POLL_S)

    @_wrap_db_errors
    def _try_begin_push(self, push_id: str, hash_: str, blobs: list[str]) -> bool:
        from sqlalchemy import text

        from registry.catalog.models import PushRow

        row = PushRow(id=push_id, hash=hash_, blobs=blobs, started_at=self.now())
        if self.dialect == "postgresql":
            with self._write() as s:
                shared = text("SELECT pg_try_advisory_xact_lock_shared(:k)")
                if not s.execute(shared, {"k": GC_LOCK_ID}).scalar():
                    return False
                s.add(row)  # the shared lock ends with this transaction: the row is visible to the next gc
            return True
        with self._gc_lock_file(shared=True, wait=False) as held:
            if not held:
                return False
            with self._write() as s:
                s.add(row)
        return True

    @_wrap_db_errors
    def end_push(self, push_id: str) -> None:
        from sqlalchemy import delete

        from registry.catalog.models import PushRow

        with self._write() as s:
            s.execute(delete(PushRow).where(PushRow.id == push_id))

    @contextlib.contextmanager
    def gc_lock(self, on_wait: Callable[[], None] | None = None) -> Iterator[Callable[[], None]]:
        """Hold the gc lock exclusively. Yields ``check()``, which raises CatalogUnavailable when the lock
        may have been lost (PostgreSQL: its connection broke); call it before every deletion."""
        if self.dialect != "postgresql":
            with self._gc_lock_file(shared=False, wait=True, on_wait=on_wait):
                yield lambda: None
            return
        conn = self._lock_connection()
        try:
            waited = False
            while not self._lock_statement(conn, "SELECT pg_try_advisory_lock(:k)"):
                if not waited and on_wait is not None:
                    on_wait()
                waited = True
                time.sleep(LOCK_POLL_S)

            def check() -> None:
                self._lock_statement(conn, "SELECT true")

            yield check
            self._lock_statement(conn, "SELECT pg_advisory_unlock(:k)")
        except BaseException:
            conn.invalidate()  # closing the session releases a lock we may still hold
            raise
        finally:
            conn.close()

    @_wrap_db_errors
    def _lock_connection(self) -> Any:
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    @_wrap_db_errors
    def _lock_statement(self, conn: Any, sql: str) -> bool:
        from sqlalchemy import text

        return bool(conn.execute(text(sql), {"k": GC_LOCK_ID}).scalar())

    @contextlib.contextmanager
    def _gc_lock_file(
        self, *, shared: bool, wait: bool, on_wait: Callable[[], None] | None = None
    ) -> Iterator[bool]:
        """SQLite: flock on ``<database>.gc.lock`` (an in-memory database has one process: no lock)."""
        import fcntl

        database = self.engine.url.database
        if not database or database == ":memory:":
            yield True
            return
        path = f"{database}.gc.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise CatalogUnavailable(
                f"cannot open the gc lock file {path}: {exc.strerror}",
                hint="the directory of the SQLite catalog must be writable",
            ) from None
        try:
            mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    yield False
                    return
                if on_wait is not None:
                    on_wait()
                fcntl.flock(fd, mode)
            yield True
        finally:
            os.close(fd)

    # -- gc ----------------------------------------------------------------------------------------------
    @_wrap_db_errors
    def gc_plan(self, keep_last: int | None) -> tuple[list[str], set[str]]:
        """(hashes to delete, hashes protected by tags or live leases). keep_last=None deletes no rows."""
        from sqlalchemy import select

        from registry.catalog.models import ArtifactName, ArtifactRow, LeaseRow, TagRow

        now = self.now()
        with self._read() as s:
            tagged = set(s.scalars(select(TagRow.hash)))
            leased_keys = set(s.scalars(select(LeaseRow.build_key).where(LeaseRow.expires_at > now)))
            leased = (
                set(s.scalars(select(ArtifactRow.hash).where(ArtifactRow.build_key.in_(leased_keys))))
                if leased_keys
                else set()
            )
            protected = tagged | leased
            if keep_last is None:
                return [], protected
            keep: set[str] = set()
            by_name: dict[str, int] = {}
            for name, hash_ in s.execute(
                select(ArtifactName.name, ArtifactName.hash).order_by(
                    ArtifactName.name, ArtifactName.created_at.desc()
                )
            ):
                by_name[name] = by_name.get(name, 0) + 1
                if by_name[name] <= keep_last:
                    keep.add(hash_)
            doomed = [  # hashes only: a row with an undecodable column never stops gc
                h for h in s.scalars(select(ArtifactRow.hash)) if h not in keep and h not in protected
            ]
            return doomed, protected

    @_wrap_db_errors
    def delete_rows(self, hashes: Sequence[str], *, force: bool = False) -> list[str]:
        """Delete artifact rows unless (re-checked in the transaction) tagged or leased. Returns deleted.
        ``force``: delete those too, their tags first (each removal recorded in the tag history)."""
        from sqlalchemy import delete, select

        from registry.catalog.models import ArtifactName, ArtifactRow, LeaseRow, TagEvent, TagRow

        if not hashes:
            return []
        now = self.now()
        with self._write() as s:
            tags = list(
                s.execute(select(TagRow.name, TagRow.tag, TagRow.hash).where(TagRow.hash.in_(hashes)))
            )
            live = select(LeaseRow.build_key).where(LeaseRow.expires_at > now)
            leased = set(
                s.scalars(
                    select(ArtifactRow.hash).where(
                        ArtifactRow.hash.in_(hashes), ArtifactRow.build_key.in_(live)
                    )
                )
            )
            if force:
                doomed = list(hashes)
                changed = utcnow()
                for name, tag, hash_ in tags:
                    s.execute(delete(TagRow).where(TagRow.name == name, TagRow.tag == tag))
                    s.add(TagEvent(name=name, tag=tag, hash=None, previous_hash=hash_, changed_at=changed))
                s.flush()
            else:
                tagged = {h for _, _, h in tags}
                doomed = [h for h in hashes if h not in tagged and h not in leased]
            if doomed:
                s.execute(delete(ArtifactName).where(ArtifactName.hash.in_(doomed)))
                s.execute(delete(ArtifactRow).where(ArtifactRow.hash.in_(doomed)))
            return doomed

    @_wrap_db_errors
    def referenced(self, without: Collection[str] = ()) -> tuple[set[str], set[str], list[tuple[str, str]]]:
        """(artifact hex digests, blob hex digests, bad rows) referenced by catalog rows (except the hashes
        in ``without``: a dry run's doomed rows) and by pushes registered within PUSH_TTL_S. A bad row is
        (hash, why) for a row whose manifest column cannot be read; gc takes its blobs from the store's
        manifest instead."""
        from sqlalchemy import select

        from registry.catalog.models import ArtifactRow, PushRow

        manifests: set[str] = set()
        blobs: set[str] = set()
        bad: list[tuple[str, str]] = []
        live = self.now() - PUSH_TTL_S
        with self._read() as s:
            # Registrations first: a push registered before gc took its lock may publish its row and drop
            # its registration meanwhile; read in this order, one of the two is always seen (PostgreSQL
            # reads each statement at its own snapshot).
            for hash_, pblobs in s.execute(
                select(PushRow.hash, PushRow.blobs).where(PushRow.started_at > live)
            ):
                manifests.add(str(hash_).removeprefix("sha256:"))
                blobs.update(b for b in (pblobs if isinstance(pblobs, list) else []) if isinstance(b, str))
            for hash_, manifest in s.execute(select(ArtifactRow.hash, ArtifactRow.manifest)):
                if hash_ in without:
                    continue
                manifests.add(str(hash_).removeprefix("sha256:"))
                digests = manifest_blobs(manifest)
                if digests is None:
                    bad.append((str(hash_), "its manifest column is not a manifest object"))
                else:
                    blobs.update(digests)
        return manifests, blobs, bad

    @_wrap_db_errors
    def forget_pushes(self) -> None:
        """Drop registrations of pushes that were killed (older than PUSH_TTL_S)."""
        from sqlalchemy import delete

        from registry.catalog.models import PushRow

        before = self.now() - PUSH_TTL_S
        with self._write() as s:
            s.execute(delete(PushRow).where(PushRow.started_at < before))

    def dispose(self) -> None:
        self.engine.dispose()
