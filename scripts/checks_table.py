"""Print the README's table of checks, generated from the registry.

    python scripts/checks_table.py            # print the table
    python scripts/checks_table.py --write    # replace the table between the README markers
"""

from __future__ import annotations

import sys
from pathlib import Path

from detective.core.hypotheses import Stage
from detective.core.registry import all_checks

BEGIN, END = "<!-- checks-table:begin -->", "<!-- checks-table:end -->"


def table() -> str:
    order = list(Stage)
    rows = sorted(all_checks().values(), key=lambda c: (order.index(c.stage), c.id))
    lines = ["| check | stage | needs | hypotheses | what it does |", "|---|---|---|---|---|"]
    for c in rows:
        needs = ", ".join(f"`{n}`" for n in c.needs)
        hyps = ", ".join(f"`{h}`" for h in c.hypotheses) or "—"
        lines.append(f"| `{c.id}` | {c.stage.value} | {needs} | {hyps} | {c.description} |")
    return "\n".join(lines)


def main() -> int:
    text = table()
    if "--write" not in sys.argv:
        sys.stdout.write(text + "\n")
        return 0
    readme = Path(__file__).resolve().parent.parent / "README.md"
    content = readme.read_text(encoding="utf-8")
    head, rest = content.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
