"""report.html: rendered from report.md, self-contained, tables sortable."""

from __future__ import annotations

import base64
from pathlib import Path

from analysis.html import render, write_html

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAA"
                       "AABJRU5ErkJggg==")  # a 1×1 pixel


def test_figures_are_embedded_and_tables_are_sortable(tmp_path: Path) -> None:
    (tmp_path / "fig.png").write_bytes(PNG)
    md = tmp_path / "report.md"
    md.write_text("# Report\n\n| stack | $/M tokens |\n|---|---|\n| a | $0.151 |\n| b | – |\n\n"
                  "![cost](fig.png)\n\n![gone](missing.png)\n\n<script>alert(1)</script>\n")
    page = write_html(md).read_text()
    assert page.startswith("<!DOCTYPE html>") and "<title>Stack comparison</title>" in page
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in page
    assert 'src="missing.png"' in page  # a missing figure keeps its path rather than vanishing
    assert '<div class="table"><table>' in page and "<th>$/M tokens</th>" in page and "<td>$0.151</td>" in page
    assert 'addEventListener("click"' in page  # the sorting script
    assert "<script>alert(1)</script>" not in page  # raw HTML in the Markdown is shown as text, never run


def test_render_keeps_every_table_of_the_markdown() -> None:
    md = "\n\n".join("| a | b |\n|---|---|\n| 1 | 2 |" for _ in range(3))
    assert render(md, Path(".")).count("<table>") == 3
