"""Markdown report. Everything from user data goes through md_escape."""

from __future__ import annotations

from urllib.parse import quote

from detective.core.report import Report
from detective.ui.export.text import fmt_number, md_code, md_escape, md_span


def render_markdown(report: Report, artifact_prefix: str = "artifacts/") -> str:
    """`artifact_prefix`: how the report's folder reaches the session's artifacts."""
    s = report.session
    out = [
        f"# Findings: {md_escape(s.name)}",
        "",
        f"- Case: {md_span(s.case_path)} (hash {md_span(s.case_hash)})",
        f"- Symptom: {md_escape(s.symptom or 'not given')}",
        *([f"- Model / config: {md_escape(s.model_notes)}"] if s.model_notes else []),
        *([f"- Already tried: {md_escape(s.tried)}"] if s.tried else []),
        f"- Playbook: {md_escape(s.playbook)}",
        *([f"- Device: {md_escape(s.device)}"] if s.device else []),
        f"- Generated: {report.generated_at} by detective {report.detective_version}",
        "",
        "## Verdict",
        "",
    ]
    if report.supported:
        out.append(
            "Causes proven by intervention, by the share of the gap their intervention recovers:"
        )
        out.append("")
        for n, h in enumerate(report.supported, 1):
            reasons = "; ".join(
                md_escape(e.reason) for e in h.evidence
                if e.direction == "supports" and e.check_id != "interventions"
            )
            out.append(
                f"{n}. **{md_escape(h.title)}** ({md_span(h.hypothesis_id)}, score "
                f"{h.score:+.2f}): {reasons}"
            )
            if h.proof is not None:
                out.append(
                    f"   - What moved the metric: {md_escape(h.proof.sentence)} (replay: "
                    f"{md_code('detective experiment CASE --set ' + h.proof.label)})"
                )
    else:
        out.append("Nothing is supported: no intervention on a suspected cause moved the metric.")
    out += [
        "",
        "## Hypotheses",
        "",
        "| hypothesis | status | score | evidence |",
        "|---|---|---|---|",
    ]
    for h in report.hypotheses:
        if not h.evidence and not h.manual and not h.notes and not h.user_defined:
            continue
        status = h.status.value + (" (set by hand)" if h.manual else "")
        ev = "<br>".join(
            f"{md_escape(e.direction.value)} ({md_escape(e.strength.value)}) by "
            f"{md_escape(e.check_id)}: {md_escape(e.reason)}"
            for e in h.evidence
        )
        if h.explained_by:
            ev += f"<br>a description, explained by {md_span(h.explained_by)}"
        if h.notes:
            ev += "<br>" + "<br>".join("note: " + md_escape(n) for n in h.notes)
        out.append(
            f"| {md_escape(h.title)} ({md_span(h.hypothesis_id)}) | {status} | "
            f"{h.score:+.2f} | {ev} |"
        )
    untested = [h for h in report.hypotheses if not h.evidence and not h.user_defined]
    if untested:
        out += ["", "Not tested (open): " + ", ".join(md_escape(h.hypothesis_id) for h in untested)]

    if report.experiments:
        out += [
            "",
            "## Experiments",
            "",
            "| experiment | change | metric | before | after | Δ | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for e in report.experiments:
            change = "; ".join(md_escape(c) for c in e.changes)
            if e.confounded:
                change += " (confounded: more than one change)"
            out.append(
                f"| {md_escape(e.name)} | {change} | {md_escape(e.metric)} | "
                f"{fmt_number(e.before)} | "
                f"{fmt_number(e.after)} | {e.delta:+.4g} | {md_escape(e.verdict)} |"
            )

    out += ["", "## Findings", ""]
    for rf in report.findings:
        f = rf.finding
        out += [
            f"### {md_escape(rf.title)} — {f.verdict.value}",
            "",
            f"{md_span(f.check_id)} · stage {md_escape(rf.stage)} · {f.duration_s:.1f} s",
            "",
            md_escape(f.summary),
            "",
        ]
        if f.metrics:
            out += ["| measure | value |", "|---|---|"]
            out += [
                f"| {md_escape(m.name)} | {fmt_number(m.value)} {md_escape(m.unit)} |"
                for m in f.metrics
            ]
            out.append("")
        for t in f.tables:
            out += [
                f"**{md_escape(t.name)}**",
                "",
                "| " + " | ".join(md_escape(c) for c in t.columns) + " |",
                "|" + "---|" * len(t.columns),
            ]
            for row in t.rows[:50]:
                out.append(
                    "| "
                    + " | ".join(
                        fmt_number(v)
                        if isinstance(v, int | float) and not isinstance(v, bool)
                        else md_escape(v)
                        for v in row
                    )
                    + " |"
                )
            if len(t.rows) > 50:
                out.append(f"| … {len(t.rows) - 50} more rows | " + " |" * (len(t.columns) - 1))
            out.append("")
        for a in f.artifacts:
            out += [f"![{md_escape(a.caption or a.name)}]({quote(artifact_prefix + a.path)})", ""]
        if f.next_step:
            out += [f"**Next step:** {md_escape(f.next_step)}", ""]
        for n in f.notes:
            out.append(f"- {md_escape(n)}")
        if f.notes:
            out.append("")
        if f.error:
            out += ["```", md_code(f.error).rstrip(), "```", ""]
    from detective.ui.export.clusters import clusters_markdown

    out += clusters_markdown(report.clusters, md_escape)
    from detective.ui.export.modelcard import modelcard_markdown

    out += modelcard_markdown(report.model_card, md_escape)
    if report.reviews:
        out += ["## Reviews", "", "| target | verdict | note |", "|---|---|---|"]
        for r in report.reviews:
            out.append(
                f"| {md_escape(r.target_kind)} {md_escape(r.target_id)} | {r.verdict.value} | "
                f"{md_escape(r.note)} |"
            )
        out.append("")
    return "\n".join(out) + "\n"
