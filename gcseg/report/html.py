"""Assembling the single self-contained HTML page: CSS, plotly's offline bundle (embedded once), the sections,
and one JSON block with every figure spec, drawn by a small script.

The page checks itself (for the headless-browser test and for humans): script errors are caught by
``window.onerror`` / ``unhandledrejection`` into the visible ``#gcseg-errors`` box and the ``data-errors``
attribute of ``<body>``; once plotly has drawn every figure, ``<body data-rendered="N">`` is set (N figures).
Views of one scene share their camera: rotating one rotates the others.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

CSS = """
:root { --fg: #1d2330; --muted: #5b6475; --line: #dde1e8; --accent: #2457a6; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg);
       background: var(--bg); }
header { background: #1d2330; color: #fff; padding: 22px 36px; }
header h1 { margin: 0; font-size: 26px; }
header p { margin: 4px 0 0; color: #c9d1e0; }
nav { padding: 8px 36px; background: #fff; border-bottom: 1px solid var(--line); font-size: 14px; }
nav a { color: var(--accent); margin-right: 18px; text-decoration: none; }
main { padding: 8px 36px 40px; max-width: 1800px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 20px 18px;
          margin: 18px 0; }
h2 { font-size: 20px; margin: 0 0 8px; border-bottom: 2px solid var(--accent); display: inline-block; }
h3 { font-size: 16px; margin: 14px 0 6px; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 12px; text-align: right; }
th[scope=row], thead th:first-child { text-align: left; }
thead th { background: #eef1f6; }
table.kv td, table.kv th { font-size: 13px; padding: 3px 10px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; white-space: nowrap; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 14px; }
.tables { display: flex; flex-wrap: wrap; gap: 28px; align-items: flex-start; }
.tables > div { max-width: 760px; }
.views { display: grid; grid-template-columns: repeat(5, minmax(0, 1fr)); gap: 6px; }
.view { border: 1px solid var(--line); border-radius: 6px; min-height: 320px; position: relative; }
.view .note { font-size: 12px; color: var(--muted); padding: 0 8px 6px; margin: 0; }
.missing { border: 1px dashed #c98a00; background: #fff8e6; color: #6b4a00; padding: 8px 12px; border-radius: 6px;
           font-size: 14px; margin: 8px 0; }
.missing code { font-size: 13px; }
.note { color: var(--muted); font-size: 13px; margin: 6px 0; }
pre.params { font-size: 12px; background: #f3f4f7; padding: 10px; overflow: auto; max-height: 520px; }
img.overlay { max-width: 100%; height: auto; image-rendering: pixelated; border: 1px solid var(--line); }
#gcseg-errors { background: #ffe8e8; color: #8a0000; border: 2px solid #d00; padding: 10px 36px;
                white-space: pre-wrap; font-family: monospace; }
"""

# Before plotly: catch every script error from the start.
GUARD_JS = """
(function () {
  function report(msg) {
    var b = document.body, box = document.getElementById('gcseg-errors');
    window.__gcsegErrors = (window.__gcsegErrors || []).concat([String(msg)]);
    if (b) { b.setAttribute('data-errors', window.__gcsegErrors.join(' | ')); }
    if (box) { box.hidden = false; box.textContent = 'Script errors: ' + window.__gcsegErrors.join('\\n'); }
  }
  window.__gcsegReport = report;
  window.onerror = function (msg, src, line, col) { report(msg + ' (' + line + ':' + col + ')'); };
  window.addEventListener('unhandledrejection', function (e) {
    report('unhandled: ' + (e.reason && e.reason.message || e.reason));
  });
})();
"""

# After the figures' JSON: draw them all, link the cameras of one scene's views, then mark the page rendered.
RENDER_JS = """
(function () {
  var report = window.__gcsegReport;
  if (window.__gcsegErrors && window.__gcsegErrors.length) { report('errors before drawing'); }
  if (typeof Plotly === 'undefined') { report('plotly did not load'); return; }
  var specs = JSON.parse(document.getElementById('gcseg-figures').textContent);
  var ids = Object.keys(specs).sort();
  var config = {responsive: true, displaylogo: false, modeBarButtonsToRemove: ['toImage']};
  Promise.all(ids.map(function (id) {
    return Plotly.newPlot(id, specs[id].data, specs[id].layout, Object.assign({}, config, specs[id].config || {}));
  })).then(function () {
    var groups = {};
    ids.forEach(function (id) {
      var g = document.getElementById(id).getAttribute('data-camera-group');
      if (g) { (groups[g] = groups[g] || []).push(id); }
    });
    Object.keys(groups).forEach(function (g) {
      var members = groups[g], busy = false;
      members.forEach(function (id) {
        document.getElementById(id).on('plotly_relayout', function (ev) {
          if (busy || !ev || !ev['scene.camera']) { return; }
          busy = true;
          Promise.all(members.filter(function (o) { return o !== id; }).map(function (o) {
            return Plotly.relayout(o, {'scene.camera': ev['scene.camera']});
          })).then(function () { busy = false; }, function () { busy = false; });
        });
      });
    });
    document.body.setAttribute('data-rendered', String(ids.length));
  }).catch(function (e) { report('plotly: ' + (e && e.message || e)); });
})();
"""


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def missing_html(what: str, exc: Any) -> str:
    """A notice that an artifact is absent or unreadable, naming the file and how to make it."""
    path = getattr(exc, "path", None)
    fix = getattr(exc, "fix", None)
    msg = getattr(exc, "message", str(exc))
    parts = [f"<b>{esc(what)}: not available</b> ({esc(msg)})"]
    if path is not None:
        parts.append(f"file: <code>{esc(path)}</code>")
    if fix:
        parts.append(f"fix: {esc(fix)}")
    return f'<div class="missing" data-missing="{esc(what)}">' + " &middot; ".join(parts) + "</div>"


@dataclass
class Page:
    """Sections in order plus the figure specs, keyed by fixed div ids (fig-<section>-<n>)."""

    title: str
    subtitle: str = ""
    sections: list[tuple[str, str, str]] = field(default_factory=list)  # (anchor, heading, body html)
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)

    def figure(self, div_id: str, spec: dict[str, Any], css_class: str = "fig", camera_group: str = "") -> str:
        """Register a figure; returns its placeholder div."""
        if div_id in self.figures:
            raise ValueError(f"duplicate figure id {div_id}")
        self.figures[div_id] = spec
        group = f' data-camera-group="{esc(camera_group)}"' if camera_group else ""
        return f'<div id="{esc(div_id)}" class="{esc(css_class)}"{group}></div>'

    def section(self, anchor: str, heading: str, body: str) -> None:
        self.sections.append((anchor, heading, body))

    def render(self, plotly_js: str) -> str:
        """The whole page (deterministic for the same sections, figures and bundle)."""
        nav = "".join(f'<a href="#{esc(a)}">{esc(h)}</a>' for a, h, _ in self.sections)
        body = "".join(f'<section id="{esc(a)}"><h2>{esc(h)}</h2>{b}</section>' for a, h, b in self.sections)
        figures = json.dumps(self.figures, sort_keys=True, separators=(",", ":"), allow_nan=False)
        figures = figures.replace("</", "<\\/")  # never close the <script> element from inside the JSON
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(self.title)}</title><style>{CSS}</style>"
            f"<script>{GUARD_JS}</script>"
            f'<script type="text/javascript">{plotly_js}</script></head>\n'
            f'<body><div id="gcseg-errors" hidden></div>'
            f"<header><h1>{esc(self.title)}</h1><p>{esc(self.subtitle)}</p></header>"
            f"<nav>{nav}</nav><main>{body}</main>\n"
            f'<script type="application/json" id="gcseg-figures">{figures}</script>\n'
            f"<script>{RENDER_JS}</script></body></html>\n"
        )
