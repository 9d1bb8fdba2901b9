"""The report's model-card section (measured facts, with the fields only the user can fill)."""

from __future__ import annotations

from collections.abc import Callable

from detective.workflows.modelcard import ModelCard

_INTRO = (
    "Filled from this session's measurements; each value names the check that measured it. "
    "Fields marked TO FILL are for the model's owner."
)


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def modelcard_markdown(card: ModelCard | None, esc: Callable[[object], str]) -> list[str]:
    if card is None or not card.sections:
        return []
    out = ["## Model card", "", _INTRO, ""]
    for s in card.sections:
        out += [f"### {esc(s.title)}", "", "| field | value | source |", "|---|---|---|"]
        for f in s.facts:
            value = f"**{esc(f.value)}**" if f.to_fill else esc(f.value)
            out.append(f"| {esc(f.name)} | {value} | {esc(f.source)} |")
        out.append("")
        for t in s.tables:
            out += [
                f"**{esc(t.name)}**",
                "",
                "| " + " | ".join(esc(c) for c in t.columns) + " |",
                "|" + "---|" * len(t.columns),
            ]
            out += ["| " + " | ".join(esc(_cell(v)) for v in row) + " |" for row in t.rows[:50]]
            out.append("")
    return out


def modelcard_html(card: ModelCard | None, e: Callable[[object], str]) -> list[str]:
    if card is None or not card.sections:
        return []
    parts = [f"<h2>Model card</h2><p class='muted'>{e(_INTRO)}</p>"]
    for s in card.sections:
        parts.append(
            f"<h3>{e(s.title)}</h3><table><tr><th>field</th><th>value</th><th>source</th></tr>"
        )
        for f in s.facts:
            value = f"<b>{e(f.value)}</b>" if f.to_fill else e(f.value)
            parts.append(f"<tr><td>{e(f.name)}</td><td>{value}</td><td>{e(f.source)}</td></tr>")
        parts.append("</table>")
        for t in s.tables:
            parts.append(
                f"<p><b>{e(t.name)}</b></p><table><tr>"
                + "".join(f"<th>{e(c)}</th>" for c in t.columns)
                + "</tr>"
            )
            parts += [
                "<tr>" + "".join(f"<td>{e(_cell(v))}</td>" for v in row) + "</tr>"
                for row in t.rows[:200]
            ]
            parts.append("</table>")
    return parts
