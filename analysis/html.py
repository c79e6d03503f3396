"""report.html: the Markdown report as one self-contained page (figures embedded, tables sortable).

The HTML is rendered from report.md itself (markdown-it-py, CommonMark + tables), so the two never
say different things. Images become ``data:`` URIs so the file can be mailed or attached on its own;
a few lines of script make every table sortable by a click on its header, and wide tables scroll
inside their own box instead of stretching the page.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from markdown_it import MarkdownIt

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #1f2328; }
h1, h2, h3 { line-height: 1.2; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 2em; }
blockquote { margin: 1em 0; padding: .4em 1em; background: #fff8e5; border-left: 4px solid #d4a72c; }
.table { overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; font-size: 12.5px; }
th, td { border: 1px solid #d0d7de; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; position: sticky; top: 0; cursor: pointer; white-space: nowrap; }
th.asc::after { content: " ▲"; } th.desc::after { content: " ▼"; }
tr:nth-child(even) td { background: #fafbfc; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
code { background: #f6f8fa; padding: 0 3px; border-radius: 3px; }
"""

# Click a header to sort its table by that column (numbers as numbers, "–" last); again to reverse.
SORT_SCRIPT = """
document.querySelectorAll("table").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var desc = th.classList.contains("asc");
      table.querySelectorAll("th").forEach(function (h) { h.classList.remove("asc", "desc"); });
      th.classList.add(desc ? "desc" : "asc");
      function key(row) {
        var t = row.cells[col].textContent.trim();
        var n = parseFloat(t.replace(/[$≤≥+,%×]/g, "").replace(/^[^0-9.-]+/, ""));
        return isNaN(n) ? t : n;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === "–") return 1; if (y === "–") return -1;
        var c = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
        return desc ? -c : c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""

_IMG = re.compile(r'<img src="([^"]+)"')


def render(markdown: str, base: Path, title: str = "Stack comparison") -> str:
    """The whole page for ``markdown``; image paths are read relative to ``base`` and embedded."""
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    body = _IMG.sub(lambda m: f'<img src="{_data_uri(base, m.group(1))}"', body)
    body = body.replace("<table>", '<div class="table"><table>').replace("</table>", "</table></div>")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n"
            f"<script>{SORT_SCRIPT}</script>\n</body></html>\n")


def _data_uri(base: Path, src: str) -> str:
    """A figure as a data: URI; a missing file keeps its path (the page still says what was meant)."""
    path = (base / html.unescape(src)).resolve()
    if path.suffix.lower() != ".png" or not path.is_file():
        return src
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def write_html(markdown_path: Path) -> Path:
    """Write ``report.html`` next to ``markdown_path`` from its current text."""
    out = markdown_path.with_suffix(".html")
    out.write_text(render(markdown_path.read_text(), markdown_path.parent), encoding="utf-8")
    return out
