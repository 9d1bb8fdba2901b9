"""Read-only views of sessions for a browsing UI: recent sessions, the check board, the next
check to run and why, failures and clusters found in findings, and curves hidden in tables.

Pure functions over `Session` and `Finding`; no Textual, no torch. The TUI renders these values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from detective.core.findings import FailureKind, Finding, Table, Verdict
from detective.core.ledger import LedgerEntry, session_ledger
from detective.core.playbook import Playbook
from detective.core.session import HypothesisStatus, Session, SessionError

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
    from detective.core.registry import all_checks

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
# Checks whose images are saliency overlays of failures (Grad-CAM), not the failures themselves.
OVERLAY_CHECKS = frozenset({"gradcam_failures"})


@dataclass(frozen=True)
class FailureItem:
    """A reviewable failure, from the typed references checks emit (`Finding.failures`)."""

    key: str  # review target id: "<split>:<index>" for an image, "<true>→<pred>" for a pair
    kind: FailureKind
    check_id: str
    true: str
    pred: str
    confidence: float | None
    count: int  # how many items a confusion pair stands for; 1 for an image
    image: str  # artifact path of the image that shows it, "" if none
    caption: str = ""

    @property
    def review_kind(self) -> str:
        """The review target kind it is stored under (`detective.workflows.review.TargetKind`)."""
        return REVIEW_KIND[self.kind]


# An image keeps the historical review kind "failure", so older sessions' reviews still count.
REVIEW_KIND = {FailureKind.IMAGE: "failure", FailureKind.PAIR: "pair"}


@dataclass(frozen=True)
class Gallery:
    check_id: str
    name: str
    path: str
    caption: str
    overlay: bool  # a Grad-CAM / saliency overlay rather than the plain images


def failure_items(session: Session) -> list[FailureItem]:
    """Every failure the latest findings name, each target once: images, then confusion pairs.
    Only what a check typed as a failure is listed — never rows guessed from table captions."""
    items: dict[tuple[FailureKind, str], FailureItem] = {}
    for stored in session.findings(fingerprint=session.latest_fingerprint()):
        for ref in stored.finding.failures:
            items.setdefault(
                (ref.kind, ref.target),
                FailureItem(
                    ref.target,
                    ref.kind,
                    stored.check_id,
                    ref.true,
                    ref.pred,
                    ref.confidence,
                    ref.count,
                    ref.artifact,
                    ref.caption,
                ),
            )
    order = {FailureKind.IMAGE: 0, FailureKind.PAIR: 1}
    return sorted(items.values(), key=lambda i: order[i.kind])


def galleries(session: Session) -> list[Gallery]:
    """Images of failures: those failures point to, cluster thumbnails, and overlays."""
    out = []
    for stored in session.findings(fingerprint=session.latest_fingerprint()):
        f = stored.finding
        shown = {r.artifact for r in f.failures if r.artifact}
        clusters = any(_is_cluster_table(t) for t in f.tables)
        overlay = f.check_id in OVERLAY_CHECKS
        for a in f.artifacts:
            if a.media_type.startswith("image/") and (overlay or clusters or a.path in shown):
                out.append(Gallery(stored.check_id, a.name, a.path, a.caption, overlay))
    return out


def _is_cluster_table(t: Table) -> bool:
    return "cluster" in t.name.lower() or bool(t.columns and "cluster" in t.columns[0].lower())


def cluster_target(table: Table, row: tuple[object, ...]) -> str:
    """The review target id of a cluster row: its "id" column (stable for the same members,
    as `detective.workflows.review` expects), else its first cell."""
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
