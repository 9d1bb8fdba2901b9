"""Self-contained HTML report: images embedded as data URIs, every user string escaped."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from detective.core.report import Report
from detective.ui.export.text import fmt_number, strip_control

_CSS = """
body{font:15px/1.5 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1,h2,h3{line-height:1.2} table{border-collapse:collapse;margin:.5em 0 1em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3} .supported{color:#b00020;font-weight:600} .refuted{color:#2e7d32}
.inconclusive{color:#a65e00} .open{color:#666} .verdict{font-size:.8em;padding:.1em .5em;
border-radius:3px;background:#eee} .fail,.error{background:#fdd} .warn{background:#ffe8c2}
.pass{background:#dfd} pre{background:#f6f6f6;padding:.6em;overflow:auto;font-size:.85em}
img{max-width:100%;border:1px solid #ddd} .muted{color:#666}
"""


def _cell(v: object) -> object:
    return fmt_number(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


def e(text: object) -> str:
    return html.escape(strip_control(str(text)), quote=True)


def _image(artifacts_dir: Path, rel: str, alt: str) -> str:
    root = artifacts_dir.resolve()
    path = (root / rel).resolve()
    if root not in path.parents or not path.is_file():  # never embed files outside the session
        return f'<p class="muted">missing artifact {e(rel)}</p>'
    mime = "image/png" if path.suffix.lower() == ".png" else "application/octet-stream"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{e(alt)}" src="data:{mime};base64,{data}">'


def render_html(report: Report, artifacts_dir: Path) -> str:
    s = report.session
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Findings: {e(s.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Findings: {e(s.name)}</h1>",
        f"<p class='muted'>Case <code>{e(s.case_path)}</code> · "
        f"symptom {e(s.symptom or 'not given')}"
        f" · playbook {e(s.playbook)}"
        + (f" · device {e(s.device)}" if s.device else "")
        + f" · generated {e(report.generated_at)} by detective "
        f"{e(report.detective_version)}</p>",
        *([f"<p><b>Model / config:</b> {e(s.model_notes)}</p>"] if s.model_notes else []),
        *([f"<p><b>Already tried:</b> {e(s.tried)}</p>"] if s.tried else []),
        "<h2>Verdict</h2>",
    ]
    if report.supported:
        parts.append("<ol>")
        for h in report.supported:
            reasons = "; ".join(
                e(x.reason) for x in h.evidence
                if x.direction == "supports" and x.check_id != "interventions"
            )
            proof = h.proof
            moved = (
                f"<br><b>What moved the metric:</b> {e(proof.sentence)} "
                f"(replay: <code>detective experiment CASE --set {e(proof.label)}</code>)"
                if proof is not None else ""
            )
            parts.append(
                f"<li><b>{e(h.title)}</b> (<code>{e(h.hypothesis_id)}</code>, score "
                f"{h.score:+.2f}): {reasons}{moved}</li>"
            )
        parts.append("</ol>")
    else:
        parts.append(
            "<p>Nothing is supported: no intervention on a suspected cause moved the metric.</p>"
        )
    parts.append(
        "<h2>Hypotheses</h2><table><tr><th>hypothesis</th><th>status</th><th>score</th>"
        "<th>evidence</th></tr>"
    )
    for h in report.hypotheses:
        ev = (
            "<br>".join(
                f"{e(x.direction.value)} ({e(x.strength.value)}) by {e(x.check_id)}: {e(x.reason)}"
                for x in h.evidence
            )
            or "<span class='muted'>not tested</span>"
        )
        if h.explained_by:
            ev += f"<br>a description, explained by <code>{e(h.explained_by)}</code>"
        if h.notes:
            ev += "<br>" + "<br>".join("note: " + e(n) for n in h.notes)
        manual = " (set by hand)" if h.manual else ""
        parts.append(
            f"<tr><td>{e(h.title)}<br><code>{e(h.hypothesis_id)}</code></td>"
            f"<td class='{e(h.status.value)}'>{e(h.status.value)}{manual}</td>"
            f"<td>{h.score:+.2f}</td><td>{ev}</td></tr>"
        )
    parts.append("</table>")
    if report.experiments:
        parts.append(
            "<h2>Experiments</h2><table><tr><th>experiment</th><th>change</th><th>metric</th>"
            "<th>before</th><th>after</th><th>Δ</th><th>verdict</th></tr>"
        )
        for x in report.experiments:
            change = "; ".join(e(c) for c in x.changes) + (
                " <b>(confounded)</b>" if x.confounded else ""
            )
            parts.append(
                f"<tr><td>{e(x.name)}</td><td>{change}</td><td>{e(x.metric)}</td>"
                f"<td>{fmt_number(x.before)}</td><td>{fmt_number(x.after)}</td>"
                f"<td>{x.delta:+.4g}</td><td>{e(x.verdict)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<h2>Findings</h2>")
    for rf in report.findings:
        f = rf.finding
        parts.append(
            f"<h3>{e(rf.title)} <span class='verdict {e(f.verdict.value)}'>"
            f"{e(f.verdict.value)}</span></h3>"
        )
        parts.append(
            f"<p class='muted'><code>{e(f.check_id)}</code> · stage {e(rf.stage)} · "
            f"{f.duration_s:.1f} s</p><p>{e(f.summary)}</p>"
        )
        if f.metrics:
            parts.append("<table><tr><th>measure</th><th>value</th></tr>")
            parts += [
                f"<tr><td>{e(m.name)}</td><td>{e(fmt_number(m.value))} {e(m.unit)}</td></tr>"
                for m in f.metrics
            ]
            parts.append("</table>")
        for t in f.tables:
            parts.append(
                f"<p><b>{e(t.name)}</b></p><table><tr>"
                + "".join(f"<th>{e(c)}</th>" for c in t.columns)
                + "</tr>"
            )
            for row in t.rows[:200]:
                parts.append("<tr>" + "".join(f"<td>{e(_cell(v))}</td>" for v in row) + "</tr>")
            parts.append("</table>")
        for a in f.artifacts:
            parts.append(
                f"<figure>{_image(artifacts_dir, a.path, a.caption or a.name)}"
                f"<figcaption>{e(a.caption or a.name)}</figcaption></figure>"
            )
        if f.next_step:
            parts.append(f"<p><b>Next step:</b> {e(f.next_step)}</p>")
        if f.notes:
            parts.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in f.notes) + "</ul>")
        if f.error:
            parts.append(f"<pre>{e(f.error)}</pre>")
    from detective.ui.export.clusters import clusters_html

    parts += clusters_html(report.clusters, e)
    from detective.ui.export.modelcard import modelcard_html

    parts += modelcard_html(report.model_card, e)
    if report.reviews:
        parts.append("<h2>Reviews</h2><table><tr><th>target</th><th>verdict</th><th>note</th></tr>")
        parts += [
            f"<tr><td>{e(r.target_kind)} {e(r.target_id)}</td><td>{e(r.verdict.value)}</td>"
            f"<td>{e(r.note)}</td></tr>"
            for r in report.reviews
        ]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
