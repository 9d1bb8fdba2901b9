"""Read-only views of sessions for a browsing UI: recent sessions, the check board, the next
check to run and why, failures and clusters found in findings, and curves hidden in tables.

Pure functions over `Session` and `Finding`; no Textual, no torch. The TUI renders these values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from detective.findings import Finding, Table, Verdict
from detective.ledger import LedgerEntry, session_ledger
from detective.playbook import Playbook
from detective.session import HypothesisStatus, Session, SessionError

PENDING = "pending"


# --- recent sessions --------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionSummary:
    path: Path
    name: str
    symptom: str | None
    case_name: str
    last_step: str  # "preprocessing_parity: fail", "no check run yet"
    top_hypothesis: str  # title of the top supported/inconclusive hypothesis, or ""
    top_status: str
    problem: str = ""  # why the session cannot be read, if it cannot


def summarize(path: Path) -> SessionSummary:
    try:
        with Session.open(path) as s:
            info = s.info
            findings = s.findings(fingerprint=s.latest_fingerprint())
            last = findings[-1] if findings else None
            moved = [
                h for h in session_ledger(s) if h.status is not HypothesisStatus.OPEN or h.manual
            ]
            top = next((h for h in moved if h.status is not HypothesisStatus.REFUTED), None)
            return SessionSummary(
                path,
                path.name,
                info.symptom,
                Path(info.case_path).name,
                f"{last.check_id}: {last.finding.verdict.value}" if last else "no check run yet",
                top.title if top else "",
                top.status.value if top else "",
            )
    except SessionError as e:
        return SessionSummary(path, path.name, None, "", "", "", "", problem=str(e))


def recent_sessions(root: str | Path = "sessions", limit: int = 20) -> list[SessionSummary]:
    """Sessions under `root` (and `root` itself if it is one), most recently used first."""
    root = Path(root)
    if not root.is_dir():
        return []
    dbs = [root / "session.sqlite"] if (root / "session.sqlite").is_file() else []
    dbs += [p / "session.sqlite" for p in root.iterdir() if (p / "session.sqlite").is_file()]

    def used(db: Path) -> float:
        wal = db.with_name(db.name + "-wal")
        return max(db.stat().st_mtime, wal.stat().st_mtime if wal.exists() else 0.0)

    dbs.sort(key=lambda db: (-used(db), db.parent.name))
    return [summarize(db.parent) for db in dbs[:limit]]


# --- the check board --------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckRow:
    stage: str
    check_id: str
    title: str
    status: str  # a Verdict value, or PENDING
    summary: str
    finding_id: int | None
    hypotheses: tuple[str, ...]


def check_board(session: Session, playbook: Playbook) -> list[CheckRow]:
    """Every check of the playbook, in the order the session's symptom runs them, with the
    latest finding for the session's current fingerprint."""
    from detective.registry import all_checks

    registry = all_checks()
    latest = {f.check_id: f for f in session.findings(fingerprint=session.latest_fingerprint())}
    rows = []
    for stage, check_id in playbook.plan(session.info.symptom):
        cls = registry.get(check_id)
        stored = latest.get(check_id)
        rows.append(
            CheckRow(
                stage.value,
                check_id,
                cls.title if cls else check_id,
                stored.finding.verdict.value if stored else PENDING,
                stored.finding.summary if stored else "",
                stored.id if stored else None,
                tuple(cls.hypotheses) if cls else (),
            )
        )
    return rows


@dataclass(frozen=True)
class Recommendation:
    check_id: str
    reason: str


def recommend(
    rows: list[CheckRow], ledger: list[LedgerEntry], playbook: Playbook
) -> Recommendation | None:
    """The next check worth running: one that can settle a hypothesis already in doubt, else
    the first pending check whose prerequisites ran, in the symptom's order."""
    done = {r.check_id for r in rows if r.status != PENDING}
    ready = [
        r
        for r in rows
        if r.status == PENDING and all(d in done for d in playbook.after.get(r.check_id, ()))
    ]
    if not ready:
        return None
    doubtful = [
        h
        for h in ledger
        if h.status in (HypothesisStatus.INCONCLUSIVE, HypothesisStatus.SUPPORTED) and not h.manual
    ]
    for h in doubtful:
        for r in ready:
            if h.hypothesis_id in r.hypotheses:
                return Recommendation(
                    r.check_id,
                    f"it tests “{h.title}”, which the evidence so far leaves {h.status.value}.",
                )
    first = ready[0]
    position = "the first check" if not done else "next"
    return Recommendation(
        first.check_id,
        f"{position} in the {first.stage.replace('_', ' ')} stage, in the order your symptom "
        "suggests" + (f"; it tests {', '.join(first.hypotheses)}." if first.hypotheses else "."),
    )


# --- failures and clusters --------------------------------------------------------------------
_TRUE = ("true", "label", "given", "target", "actual")
_PRED = ("pred", "predicted", "prediction")
_CONF = ("confidence", "conf", "prob", "p(pred)", "probability")
_INDEX = ("index", "idx", "item", "id", "example")


def _column(columns: tuple[str, ...], names: tuple[str, ...]) -> int | None:
    lowered = [c.strip().lower() for c in columns]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    for i, c in enumerate(lowered):
        if any(c.startswith(n) for n in names):
            return i
    return None


@dataclass(frozen=True)
class FailureItem:
    key: str  # review target id, "<split>:<index>" as `detective.review` reads it
    check_id: str
    index: str
    true: str
    pred: str
    confidence: float | None
    image: str  # artifact path of the gallery it appears in, "" if none


@dataclass(frozen=True)
class Gallery:
    check_id: str
    name: str
    path: str
    caption: str
    overlay: bool  # a Grad-CAM / saliency overlay rather than the plain images


def failure_items(session: Session) -> list[FailureItem]:
    """Failure rows that checks reported in tables with a true and a predicted column."""
    items: list[FailureItem] = []
    seen: set[str] = set()
    for stored in session.findings(fingerprint=session.latest_fingerprint()):
        f = stored.finding
        images = [a.path for a in f.artifacts if a.media_type.startswith("image/")]
        measured = stored.measurement if isinstance(stored.measurement, dict) else {}
        split = str(measured.get("split") or "val")
        for table in f.tables:
            ti, pi = _column(table.columns, _TRUE), _column(table.columns, _PRED)
            if ti is None or pi is None or ti == pi:
                continue
            ci, ii = _column(table.columns, _CONF), _column(table.columns, _INDEX)
            for n, row in enumerate(table.rows):
                if len(row) != len(table.columns) or str(row[ti]) == str(row[pi]):
                    continue
                index = str(row[ii]) if ii is not None else str(n)
                key = f"{split}:{index}"
                if key in seen:
                    continue
                seen.add(key)
                conf = row[ci] if ci is not None else None
                items.append(
                    FailureItem(
                        key,
                        f.check_id,
                        index,
                        str(row[ti]),
                        str(row[pi]),
                        float(conf) if isinstance(conf, int | float) else None,
                        images[0] if images else "",
                    )
                )
    return items


def galleries(session: Session) -> list[Gallery]:
    """Images of failures: from findings that list failures or clusters, and overlays."""
    out = []
    for stored in session.findings(fingerprint=session.latest_fingerprint()):
        f = stored.finding
        about_failures = any(_is_cluster_table(t) for t in f.tables) or any(
            _column(t.columns, _TRUE) is not None and _column(t.columns, _PRED) is not None
            for t in f.tables
        )
        for a in f.artifacts:
            if not a.media_type.startswith("image/"):
                continue
            name = f"{a.name} {a.path} {a.caption} {f.check_id}".lower()
            overlay = any(k in name for k in ("cam", "saliency", "attribution", "overlay"))
            if about_failures or overlay:
                out.append(Gallery(stored.check_id, a.name, a.path, a.caption, overlay))
    return out


def _is_cluster_table(t: Table) -> bool:
    return "cluster" in t.name.lower() or bool(t.columns and "cluster" in t.columns[0].lower())


def cluster_target(table: Table, row: tuple[object, ...]) -> str:
    """The review target id of a cluster row: its "id" column (stable for the same members,
    as `detective.review` expects), else its first cell."""
    i = next((k for k, c in enumerate(table.columns) if c.strip().lower() == "id"), 0)
    return str(row[i]) if i < len(row) else ""


def cluster_tables(session: Session) -> list[tuple[str, Table]]:
    """Tables that describe clusters of failures, with the check that made them."""
    return [
        (stored.check_id, t)
        for stored in session.findings(fingerprint=session.latest_fingerprint())
        for t in stored.finding.tables
        if _is_cluster_table(t)
    ]


# --- curves hidden in tables ------------------------------------------------------------------
@dataclass(frozen=True)
class Curve:
    title: str
    x_label: str
    x: tuple[float, ...]
    series: tuple[tuple[str, tuple[float, ...]], ...]


def _numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def curves(finding: Finding, min_points: int = 4) -> list[Curve]:
    """Tables whose first column is an increasing number (epoch, step, lr, threshold) and that
    have other numeric columns: those numbers form curves worth plotting."""
    out = []
    for t in finding.tables:
        if len(t.rows) < min_points or len(t.columns) < 2:
            continue
        if not all(len(r) == len(t.columns) and _numeric(r[0]) for r in t.rows):
            continue
        xs = [float(r[0]) for r in t.rows]  # type: ignore[arg-type]
        if any(b <= a for a, b in zip(xs, xs[1:], strict=False)):
            continue
        series = tuple(
            (t.columns[j], tuple(float(r[j]) for r in t.rows))  # type: ignore[arg-type]
            for j in range(1, len(t.columns))
            if all(_numeric(r[j]) for r in t.rows)
        )
        if series:
            out.append(Curve(t.name, t.columns[0], tuple(xs), series))
    return out


def verdict_counts(rows: list[CheckRow]) -> dict[str, int]:
    counts = {v.value: 0 for v in Verdict} | {PENDING: 0}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    return counts
