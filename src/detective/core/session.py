"""The session store: `sessions/<name>/session.sqlite` plus `artifacts/` and `cache/`.

Every write is its own transaction, so a process killed mid-check loses at most the check in
flight. Findings are kept with the fingerprint (case file + model weights) they were measured on;
`resume` skips checks already done for the current fingerprint.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detective import __version__
from detective.core.context import RunOptions
from detective.core.findings import Finding
from detective.core.serde import from_jsonable, to_jsonable

if TYPE_CHECKING:
    from detective.core.sessionlock import SessionLock

SCHEMA_VERSION = 1
DB_NAME = "session.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS findings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    check_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    verdict TEXT NOT NULL,
    finding TEXT NOT NULL,
    measurement TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_check ON findings (check_id, fingerprint);
CREATE TABLE IF NOT EXISTS user_hypotheses (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, explanation TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS status_overrides (
    hypothesis_id TEXT PRIMARY KEY, status TEXT NOT NULL, reason TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, hypothesis_id TEXT NOT NULL, text TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, record TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT, target_kind TEXT NOT NULL, target_id TEXT NOT NULL,
    verdict TEXT NOT NULL, note TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at REAL NOT NULL);
"""


class SessionError(Exception):
    """The session cannot be created or opened; the message says why, for the user."""


class SessionReadOnly(SessionError):
    """The session's files cannot be written (permissions, a read-only mount); reads still work."""


class HypothesisStatus(StrEnum):
    OPEN = "open"
    SUPPORTED = "supported"
    REFUTED = "refuted"
    INCONCLUSIVE = "inconclusive"


class ReviewVerdict(StrEnum):
    AGREE = "agree"
    DISAGREE = "disagree"
    SKIP = "skip"


@dataclass(frozen=True)
class SessionInfo:
    name: str
    case_path: str
    case_hash: str
    symptom: str | None
    playbook: str
    options: RunOptions
    created_at: float
    app_version: str = __version__
    only: tuple[str, ...] = ()  # the checks `run --only` selected; `resume` keeps the selection
    # The device the last run resolved and used ("cpu", "cuda:0 (NVIDIA A100)"); options.device
    # keeps what was asked for ("auto"), so `resume` on another machine resolves it afresh.
    device: str = ""


@dataclass(frozen=True)
class StoredFinding:
    id: int
    check_id: str
    fingerprint: str
    finding: Finding
    measurement: Any  # JSON-friendly measurement (see Check.measurement_type)
    created_at: float


@dataclass(frozen=True)
class UserHypothesis:
    id: str
    title: str
    explanation: str


@dataclass(frozen=True)
class StatusOverride:
    hypothesis_id: str
    status: HypothesisStatus
    reason: str


@dataclass(frozen=True)
class Note:
    id: int
    hypothesis_id: str
    text: str
    created_at: float


@dataclass(frozen=True)
class Experiment:
    """One change to the case, the metric before and after, and what it produced."""

    name: str
    changes: tuple[str, ...]  # what was changed; more than one means confounded
    metric: str
    before: float
    after: float
    seeds: tuple[int, ...] = ()
    after_spread: float | None = None  # std of `after` over seeds, when re-run with several
    duration_s: float = 0.0
    finding_ids: tuple[int, ...] = ()
    confounded: bool = False
    verdict: str = ""  # e.g. "improved", "worse", "within noise"
    notes: str = ""
    id: int = 0
    created_at: float = 0.0
    before_spread: float | None = None  # std of `before` over seeds
    gap_before: float | None = None  # train − val accuracy of the probes, before / after
    gap_after: float | None = None

    @property
    def delta(self) -> float:
        return self.after - self.before


@dataclass(frozen=True)
class Review:
    id: int
    target_kind: str  # "cluster" | "failure" | "hypothesis"
    target_id: str
    verdict: ReviewVerdict
    note: str
    created_at: float


class Session:
    def __init__(self, path: Path, conn: sqlite3.Connection, readonly: bool = False) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.RLock()
        self.readonly = readonly
        self._writer: SessionLock | None = None  # the one-writer lock, when this process holds it
        # Each stored finding is parsed once (rebuilding the dataclasses is what costs when a
        # screen re-reads the session on every event of a run); kept with its text, so a row
        # rewritten in place is parsed again.
        self._parsed: dict[int, tuple[str, Finding]] = {}

    # --- lifecycle --------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def artifacts_dir(self) -> Path:
        return self.path / "artifacts"

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    @classmethod
    def create(cls, path: str | Path, info: SessionInfo) -> Session:
        path = Path(path)
        _not_a_file(path)
        if (path / DB_NAME).exists():
            raise SessionError(
                f"a session already exists at {path} (use `detective resume {path}`)"
            )
        try:
            path.mkdir(parents=True, exist_ok=True)
            session = cls(path, _connect(path / DB_NAME))
            with session._tx() as c:
                c.executescript(_SCHEMA)
                c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                c.execute("INSERT INTO meta VALUES ('info', ?)", (json.dumps(to_jsonable(info)),))
        except (OSError, sqlite3.OperationalError) as e:
            raise SessionError(f"cannot create a session at {path}: {_reason(e)}") from e
        return session

    @classmethod
    def open(cls, path: str | Path, *, readonly: bool = False) -> Session:
        """Open a session; `readonly` for readers (ledger, export): it writes nothing and works
        in a read-only folder. A damaged or newer file is refused before anything is written."""
        path = Path(path)
        _not_a_file(path)
        db = path / DB_NAME
        if not db.is_file():
            raise SessionError(f"no session at {path} (expected {db})")
        _check_header(db)
        conn = None
        try:
            conn = _connect_readonly(db)
            rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as e:
            if conn is not None:
                conn.close()
            raise SessionError(
                f"{db} is not a readable session database ({e}); it may be corrupted. "
                "Its artifacts/ folder is untouched."
            ) from e
        raw_version = str(rows.get("schema_version", "0"))
        version = int(raw_version) if raw_version.isdigit() else 0
        problem = ""
        if version > SCHEMA_VERSION:
            problem = (
                f"{path} was written by a newer detective (session schema {version}; this "
                f"version reads up to {SCHEMA_VERSION}). Upgrade detective to open it."
            )
        elif version < 1 or "info" not in rows:
            problem = f"{db} is not a detective session (no schema version)"
        if problem:
            conn.close()
            raise SessionError(problem)
        if readonly:
            session = cls(path, conn, readonly=True)
        else:
            conn.close()
            session = cls(path, _open_writable(path, db))
        try:
            session.info  # noqa: B018 - fail now, clearly, if the info record is unreadable
        except SessionError:
            session.close()
            raise
        return session

    def hold(self, lock: SessionLock) -> None:
        """Keep the one-writer lock for as long as this session is open."""
        self._writer = lock

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            if self._writer is not None:
                self._writer.release()
                self._writer = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._conn:
            yield self._conn

    # --- info -------------------------------------------------------------------------------
    @property
    def info(self) -> SessionInfo:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key='info'").fetchone()
        try:
            return from_jsonable(SessionInfo, json.loads(row[0]))
        except (TypeError, ValueError, KeyError) as e:
            raise SessionError(f"{self.path}: unreadable session info ({e})") from e

    def update_info(self, **changes: Any) -> SessionInfo:
        info = replace(self.info, **changes)
        with self._tx() as c:
            c.execute("UPDATE meta SET value=? WHERE key='info'", (json.dumps(to_jsonable(info)),))
        return info

    # --- findings ---------------------------------------------------------------------------
    def save_finding(self, finding: Finding, fingerprint: str, measurement: Any = None) -> int:
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO findings (check_id, fingerprint, verdict, finding, measurement, "
                "created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    finding.check_id,
                    fingerprint,
                    finding.verdict.value,
                    json.dumps(to_jsonable(finding)),
                    json.dumps(to_jsonable(measurement)) if measurement is not None else None,
                    time.time(),
                ),
            )
            return int(cur.lastrowid or 0)

    def findings(self, fingerprint: str | None = None, latest: bool = True) -> list[StoredFinding]:
        """Stored findings in the order they were made; with `latest`, one per check."""
        query = "SELECT id, check_id, fingerprint, finding, measurement, created_at FROM findings"
        args: tuple[Any, ...] = ()
        if fingerprint is not None:
            query += " WHERE fingerprint=?"
            args = (fingerprint,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY id", args).fetchall()
        out = [
            StoredFinding(
                r[0],
                r[1],
                r[2],
                self._finding(r[0], r[3]),
                json.loads(r[4]) if r[4] else None,
                r[5],
            )
            for r in rows
        ]
        if latest:
            last = {f.check_id: f for f in out}
            out = sorted(last.values(), key=lambda f: f.id)
        return out

    def _finding(self, row_id: int, text: str) -> Finding:
        cached = self._parsed.get(row_id)
        if cached is not None and cached[0] == text:
            return cached[1]
        finding = from_jsonable(Finding, json.loads(text))
        self._parsed[row_id] = (text, finding)
        return finding

    def done_checks(self, fingerprint: str) -> set[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT DISTINCT check_id FROM findings WHERE fingerprint=?", (fingerprint,)
            ).fetchall()
        return {r[0] for r in rows}

    def latest_fingerprint(self) -> str | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT fingerprint FROM findings ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return row[0] if row else None

    def revision(self) -> tuple[object, ...]:
        """Changes whenever anything a view shows changes (findings, the user's ledger, reviews,
        experiments, the session's info) — whoever wrote it; not the UI's own key/value notes.
        One cheap query: a view re-reads the session only when this differs."""
        with self._lock:
            row = self._conn.execute(
                "SELECT (SELECT COALESCE(MAX(id), 0) FROM findings),"
                " (SELECT COUNT(*) FROM user_hypotheses),"
                " (SELECT COUNT(*) || ':' || COALESCE(MAX(created_at), 0) FROM status_overrides),"
                " (SELECT COALESCE(MAX(id), 0) FROM notes),"
                " (SELECT COALESCE(MAX(id), 0) FROM reviews),"
                " (SELECT COALESCE(MAX(id), 0) FROM experiments),"
                " (SELECT value FROM meta WHERE key='info')"
            ).fetchone()
        return tuple(row)

    # --- the user's side of the ledger ------------------------------------------------------
    def add_hypothesis(self, title: str, explanation: str = "") -> str:
        slug = "".join(ch if ch.isalnum() else "_" for ch in title.lower()).strip("_")[:40] or "h"
        hid = f"user:{slug}"
        with self._tx() as c:
            n = 1
            while c.execute("SELECT 1 FROM user_hypotheses WHERE id=?", (hid,)).fetchone():
                n += 1
                hid = f"user:{slug}_{n}"
            c.execute(
                "INSERT INTO user_hypotheses VALUES (?, ?, ?, ?)",
                (hid, title, explanation, time.time()),
            )
        return hid

    def user_hypotheses(self) -> list[UserHypothesis]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, title, explanation FROM user_hypotheses ORDER BY created_at"
            ).fetchall()
        return [UserHypothesis(*r) for r in rows]

    def set_status(
        self, hypothesis_id: str, status: HypothesisStatus | None, reason: str = ""
    ) -> None:
        """Set a hypothesis's status by hand (None clears the override)."""
        with self._tx() as c:
            if status is None:
                c.execute("DELETE FROM status_overrides WHERE hypothesis_id=?", (hypothesis_id,))
            else:
                c.execute(
                    "INSERT OR REPLACE INTO status_overrides VALUES (?, ?, ?, ?)",
                    (hypothesis_id, HypothesisStatus(status).value, reason, time.time()),
                )

    def status_overrides(self) -> dict[str, StatusOverride]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT hypothesis_id, status, reason FROM status_overrides"
            ).fetchall()
        return {r[0]: StatusOverride(r[0], HypothesisStatus(r[1]), r[2]) for r in rows}

    def add_note(self, hypothesis_id: str, text: str) -> int:
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO notes (hypothesis_id, text, created_at) VALUES (?, ?, ?)",
                (hypothesis_id, text, time.time()),
            )
            return int(cur.lastrowid or 0)

    def notes(self) -> list[Note]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, hypothesis_id, text, created_at FROM notes ORDER BY id"
            ).fetchall()
        return [Note(*r) for r in rows]

    # --- experiments and reviews ------------------------------------------------------------
    def add_experiment(self, experiment: Experiment) -> int:
        with self._tx() as c:
            now = time.time()
            cur = c.execute(
                "INSERT INTO experiments (name, record, created_at) VALUES (?, ?, ?)",
                (
                    experiment.name,
                    json.dumps(to_jsonable(replace(experiment, created_at=now))),
                    now,
                ),
            )
            return int(cur.lastrowid or 0)

    def experiments(self) -> list[Experiment]:
        with self._lock:
            rows = self._conn.execute("SELECT id, record FROM experiments ORDER BY id").fetchall()
        return [replace(from_jsonable(Experiment, json.loads(r[1])), id=r[0]) for r in rows]

    def add_review(
        self, target_kind: str, target_id: str, verdict: ReviewVerdict, note: str = ""
    ) -> int:
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO reviews (target_kind, target_id, verdict, note, created_at) VALUES "
                "(?, ?, ?, ?, ?)",
                (target_kind, target_id, ReviewVerdict(verdict).value, note, time.time()),
            )
            return int(cur.lastrowid or 0)

    def reviews(self) -> list[Review]:
        """Every review; a later review of the same target supersedes earlier ones."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, target_kind, target_id, verdict, note, created_at FROM reviews ORDER "
                "BY id"
            ).fetchall()
        latest = {
            (r[1], r[2]): Review(r[0], r[1], r[2], ReviewVerdict(r[3]), r[4], r[5]) for r in rows
        }
        return sorted(latest.values(), key=lambda r: r.id)

    # --- small key/value store: caches (LLM outputs), UI state --------------------------------
    def kv_get(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def kv_set(self, key: str, value: str) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)", (key, value, time.time()))


def _not_a_file(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise SessionError(f"{path} is a file, not a session folder; choose another --session")


def _reason(e: BaseException) -> str:
    return (e.strerror if isinstance(e, OSError) and e.strerror else str(e)) or type(e).__name__


def _check_header(db: Path) -> None:
    """Refuse an empty file before SQLite touches it (it would initialise an empty file as a new
    database, writing to it); any other file is read by SQLite read-only first, which refuses a
    file that is not SQLite. Never opened here with a file descriptor of its own: closing one
    would drop the POSIX locks SQLite holds on the file for this process's other connections,
    and a child process's writer could then delete the WAL under them (their reads go stale)."""
    try:
        size = db.stat().st_size
    except OSError as e:
        raise SessionError(f"{db} cannot be read: {_reason(e)}") from e
    if size == 0:
        raise SessionError(
            f"{db} is not a readable session database (the file is empty); it may be "
            "corrupted. Its artifacts/ folder is untouched."
        )


def _connect_readonly(db: Path) -> sqlite3.Connection:
    """A connection that cannot write. A WAL database in a read-only folder cannot create its
    shared-memory file; then it is opened as immutable (nothing can be writing it anyway)."""
    uri = db.resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False, timeout=30)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.OperationalError:
        conn.close()
        if os.access(db.parent, os.W_OK):
            raise
        conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)
    return conn


def _read_only(db: Path) -> SessionReadOnly:
    return SessionReadOnly(
        f"session is read-only: {db} (its file or folder cannot be written; `detective ledger` "
        "and `detective export` still read it)"
    )


def ensure_writable(path: str | Path) -> None:
    """Raise SessionReadOnly when the session's database or folder cannot be written (cheap:
    lets a writer refuse before it loads the case)."""
    path = Path(path)
    db = path / DB_NAME
    if not (os.access(db, os.W_OK) and os.access(path, os.W_OK)):
        raise _read_only(db)


def _open_writable(path: Path, db: Path) -> sqlite3.Connection:
    readonly = _read_only(db)
    ensure_writable(path)
    try:
        conn = _connect(db)
        with conn:  # older schemas gain the tables they lack
            conn.executescript(_SCHEMA)
    except sqlite3.OperationalError as e:
        if "readonly" in str(e) or "read-only" in str(e):
            raise readonly from e
        raise SessionError(f"{db} cannot be opened for writing: {e}") from e
    return conn


def _connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn
