"""HTML tables of the report: the ablation (metrics/eval.json), statistics of the data stages (flattened JSON
metrics), swept thresholds and the run's params. Every value is escaped; numbers are formatted with a fixed
precision so the page bytes depend only on the inputs."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gcseg.errors import ArtifactError
from gcseg.report.curves import FIGURES, Sweep
from gcseg.report.inputs import (DIAGNOSTIC_ORDER, DIAGNOSTIC_TITLES, OWN_TITLES, PERFECT_TITLES, ROW_TITLES, ROWS,
                                 finite, load_json)

EVAL_FIX = "run `dvc repro eval` (writes metrics/eval.json)"
DIAGNOSTICS = "diagnostics"  # metrics/eval.json's block of diagnostics (gcseg.eval.diagnostics), not a row


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def pct(x: Any) -> str:
    """A fraction as a percentage with one decimal ("n/a" for null / NaN)."""
    v = finite(x)
    return "n/a" if v is None else f"{100 * v:.1f}"


def number(x: Any) -> str:
    """Integers as is, other numbers with 4 significant digits, anything else as text."""
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return "n/a" if finite(x) is None else (f"{x:.0f}" if x.is_integer() else f"{x:.4g}")
    return str(x)


def load_eval(path: Path) -> dict[str, dict[str, Any]]:
    """metrics/eval.json: {row: {AP, AP50, AP25, masks_per_scene}}; rows in the ablation order (the
    ``diagnostics`` block is not a row: :func:`load_diagnostics`)."""
    data = load_json(path, EVAL_FIX)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ArtifactError("expected {row: {AP, AP50, AP25, ...}}", path=path, fix=EVAL_FIX)
    data = {k: v for k, v in data.items() if k != DIAGNOSTICS}
    names = [r for r in ROWS if r in data] + sorted(r for r in data if r not in ROWS)
    return {r: data[r] for r in names}


def load_diagnostics(path: Path) -> dict[str, Any]:
    """The ``diagnostics`` block of metrics/eval.json ({} when the eval stage wrote none)."""
    data = load_json(path, EVAL_FIX)
    block = data.get(DIAGNOSTICS, {}) if isinstance(data, dict) else None
    if not isinstance(block, dict):
        raise ArtifactError("'diagnostics' is not a mapping", path=path, fix=EVAL_FIX)
    return block


def diagnostics_html(block: Mapping[str, Any]) -> str:
    """The diagnostics (use GT; not methods) and the no-policy row, each row with its source, and the proposal
    coverage; a notice when there are none."""
    rows = [n for n in DIAGNOSTIC_ORDER if isinstance(block.get(n), Mapping)]
    ranking = block.get("perfect_ranking")
    ranking_html = (perfect_ranking_html(ranking) if isinstance(ranking, Mapping)
                    and isinstance(ranking.get("rows"), Mapping) else "")
    if not rows and not isinstance(block.get("coverage"), Mapping):
        return ('<p class="note">No label diagnostics in metrics/eval.json (sam2_track writes them for the scenes of '
                "<code>sam2_track.diagnostics.split</code> that have per-frame GT).</p>" + ranking_html)
    head = "".join(f"<th>{f} (%)</th>" for f in FIGURES) + "<th>masks / scene</th><th>scenes</th><th>source</th>"
    body = []
    for name in rows:
        r = block[name]
        mps = finite(r.get("masks_per_scene"))
        cells = "".join(f"<td>{pct(r.get(f))}</td>" for f in FIGURES)
        cells += f"<td>{'n/a' if mps is None else f'{mps:.1f}'}</td><td>{esc(number(r.get('scenes')))}</td>"
        cells += f'<td class="source">{esc(r.get("source", ""))}</td>'
        body.append(f'<tr data-row="{esc(name)}"><th scope="row">{esc(DIAGNOSTIC_TITLES.get(name, name))}</th>'
                    f"{cells}</tr>")
    table = (f'<table class="ablation diagnostics"><thead><tr><th>Diagnostic (not a method)</th>{head}</tr>'
             f"</thead><tbody>{''.join(body)}</tbody></table>") if body else ""
    cov = block.get("coverage")
    if isinstance(cov, Mapping):
        table += (f'<p class="note">Proposal coverage: {pct(cov.get("before_containment"))} % of '
                  f'{esc(number(cov.get("gt_instances")))} GT instances before containment, '
                  f'{pct(cov.get("after_containment"))} % after ({esc(number(cov.get("scenes")))} scene(s); '
                  f'{esc(cov.get("source", ""))}).</p>')
    return table + ranking_html


def perfect_ranking_html(block: Mapping[str, Any]) -> str:
    """The diagnostics' perfect-ranking block (gcseg.eval.ranking): per row the given AP / AP50 beside the same
    masks' in the perfect order; the difference is what the confidences cost."""
    body = []
    for name, r in block["rows"].items():
        if not isinstance(r, Mapping):
            continue
        given = r.get("given") if isinstance(r.get("given"), Mapping) else {}
        cells = "".join(f"<td>{pct(given.get(f))}</td><td>{pct(r.get(f))}</td>" for f in ("AP", "AP50"))
        body.append(f'<tr data-row="{esc(name)}"><th scope="row">{esc(ROW_TITLES.get(name, name))}</th>{cells}</tr>')
    return ("<h4>What the confidences cost: the same masks in the perfect order (uses GT)</h4>"
            '<table class="ablation diagnostics"><thead><tr><th>Row</th><th>AP (%)</th><th>AP, perfect order (%)</th>'
            "<th>AP50 (%)</th><th>AP50, perfect order (%)</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
            f'<p class="note">{esc(block.get("source", ""))}.</p>')


def ablation_html(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """The ablation table: one row per method, AP / AP50 / AP25 in %, the best value of each column in bold."""
    best = {f: max((v for r in rows.values() if (v := finite(r.get(f))) is not None), default=None)
            for f in FIGURES}
    head = "".join(f"<th>{f} (%)</th>" for f in FIGURES) + "<th>masks / scene</th>"
    body = []
    for name, r in rows.items():
        cells = []
        for f in FIGURES:
            v = finite(r.get(f))
            cell = pct(v)
            top = v is not None and v > 0 and v == best[f]  # bold the best non-zero value of the column
            cells.append(f"<td><b>{cell}</b></td>" if top else f"<td>{cell}</td>")
        mps = finite(r.get("masks_per_scene"))
        cells.append(f"<td>{'n/a' if mps is None else f'{mps:.1f}'}</td>")
        body.append(f'<tr data-row="{esc(name)}"><th scope="row">{esc(ROW_TITLES.get(name, name))}</th>'
                    + "".join(cells) + "</tr>")
    return (f'<table class="ablation"><thead><tr><th>Method</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def ablation_notes(md_path: Path) -> str:
    """The explanatory paragraphs of metrics/eval/ablation.md (everything but its table, up to its first "## "
    section: the diagnostics that follow are rendered from metrics/eval.json), or ""."""
    if not md_path.is_file():
        return ""
    text = re.split(r"^## ", md_path.read_text(), maxsplit=1, flags=re.MULTILINE)[0]
    paras = [p.strip() for p in text.split("\n\n")]
    paras = [" ".join(p.split()) for p in paras if p and not p.lstrip().startswith("|")]
    return "".join(f'<p class="note">{esc(p)}</p>' for p in paras)


def flatten(tree: Any, prefix: str = "", skip: Sequence[str] = ("per_scene",)) -> list[tuple[str, Any]]:
    """(dotted key, scalar) of a nested JSON mapping, sorted by key, without the `skip` subtrees."""
    out: list[tuple[str, Any]] = []
    if isinstance(tree, Mapping):
        for k in sorted(tree):
            if k in skip:
                continue
            out += flatten(tree[k], f"{prefix}.{k}" if prefix else str(k), skip)
    elif isinstance(tree, list):
        if all(not isinstance(x, (Mapping, list)) for x in tree) and len(tree) <= 12:
            out.append((prefix, ", ".join(number(x) for x in tree)))
    else:
        out.append((prefix, tree))
    return out


def kv_html(items: Sequence[tuple[str, Any]], caption: str = "") -> str:
    """A two-column key / value table."""
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    body = "".join(f"<tr><th scope=\"row\">{esc(k)}</th><td>{esc(number(v))}</td></tr>" for k, v in items)
    return f'<table class="kv">{cap}<tbody>{body}</tbody></table>'


def sweep_html(sweep: Sweep) -> str:
    """Value of the threshold against each row's AP (%), and the experiment status."""
    head = "".join(f"<th>{esc(ROW_TITLES.get(r, r))} AP (%)</th>" for r in sweep.ap)
    body = []
    for i, v in enumerate(sweep.values):
        cells = "".join(f"<td>{pct(sweep.ap[r][i])}</td>" for r in sweep.ap)
        body.append(f"<tr><th scope=\"row\">{esc(number(v))}</th>{cells}<td>{esc(sweep.status[i])}</td></tr>")
    return (f'<table class="ablation"><thead><tr><th>{esc(sweep.key)}</th>{head}<th>status</th></tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def params_html(path: Path) -> str:
    """params.yaml verbatim (comments carry each key's meaning and source) in a collapsible block."""
    if not Path(path).is_file():
        raise ArtifactError("not found", path=path, fix="pass --params PATH (the run's params.yaml)")
    text = Path(path).read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ArtifactError(f"not valid YAML ({exc})", path=path, fix="fix the YAML syntax") from exc
    top = [(k, v) for k, v in (data.items() if isinstance(data, dict) else [])
           if not isinstance(v, (dict, list))]  # seed and the method's thresholds (tau_*)
    return (kv_html(top, "Top-level parameters")
            + f'<details><summary>{esc(Path(path).name)} ({len(text.splitlines())} lines)</summary>'
            f'<pre class="params">{esc(text)}</pre></details>')


GT_FREE_FIX = "run `dvc repro eval` (writes metrics/eval/gt_free.json)"
GT_FREE_TITLES: dict[str, str] = {**DIAGNOSTIC_TITLES, **ROW_TITLES}  # no_policy: sam2_track's policy ablation


def load_gt_free(path: Path) -> dict[str, Any]:
    """metrics/eval/gt_free.json (gcseg.eval.gt_free.gt_free_stats)."""
    data = load_json(path, GT_FREE_FIX)
    if not isinstance(data, dict) or not isinstance(data.get("rows"), dict):
        raise ArtifactError("expected {rows: {...}, agreement: {...}}", path=path, fix=GT_FREE_FIX)
    return data


def gt_free_html(stats: Mapping[str, Any]) -> str:
    """Per-row GT-free statistics and the agreement between rows (values of gcseg.eval.gt_free)."""
    rows = stats["rows"]
    names = [r for r in ROWS if r in rows] + [r for r in rows if r not in ROWS]
    head = ("<th>Labels</th><th>masks / scene</th><th>instances / scene</th><th>labelled points (%)</th>"
            "<th>vote share (%)</th>")

    def cells(r: Mapping[str, Any]) -> list[str]:
        return ([number(round(v, 1)) if (v := finite(r.get(k))) is not None else "n/a"
                 for k in ("masks_per_scene", "instances_per_scene")]
                + [pct(r.get("labelled_fraction")), pct(r.get("vote_share"))])

    table = _rows_table(head, [(name, GT_FREE_TITLES.get(name, name), cells(rows[name])) for name in names])
    agree = stats.get("agreement") or {}
    if len(names) > 1:
        ahead = "".join(f"<th>{esc(GT_FREE_TITLES.get(b, b))}</th>" for b in names[1:])
        arows = []
        for i, a in enumerate(names[:-1]):
            cells = ["" if j <= i else pct((agree.get(a) or {}).get(b, (agree.get(b) or {}).get(a)))
                     for j, b in enumerate(names[1:], 1)]
            arows.append(f"<tr><th scope=\"row\">{esc(GT_FREE_TITLES.get(a, a))}</th>"
                         + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
        table += (f'<h3>Agreement between stages (%)</h3><table class="ablation"><thead><tr><th></th>{ahead}</tr>'
                  f"</thead><tbody>{''.join(arows)}</tbody></table>")
    return table


STUDY_FIX = "run `make study` (the whole default for seeds 0 1 2 as DVC experiments; optional)"


BY_SIZE_FIX = "run `dvc repro eval` (writes metrics/eval/by_size.json)"


def load_by_size(path: Path) -> dict[str, Any]:
    """metrics/eval/by_size.json (gcseg.eval.by_size.found_by_size)."""
    data = load_json(path, BY_SIZE_FIX)
    if not isinstance(data, dict) or not isinstance(data.get("rows"), dict) or "bins" not in data:
        raise ArtifactError("expected {bins: [...], objects: [...], rows: {...}}", path=path, fix=BY_SIZE_FIX)
    return data


def _rows_table(head: str, rows: Sequence[tuple[str, str, Sequence[str]]]) -> str:
    """An ablation-style HTML table: `head` (the header cells' HTML), one row per (row name, title, cells)."""
    body = "".join(f'<tr data-row="{esc(name)}"><th scope="row">{esc(title)}</th>'
                   + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>" for name, title, cells in rows)
    return f'<table class="ablation"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def by_size_html(table: Mapping[str, Any], titles: Mapping[str, str] | None = None) -> str:
    """Per row and object-size bin: % of the GT objects found at IoU > 0.5 (mean best IoU)."""
    titles = {**GT_FREE_TITLES, **(titles or {})}
    rows = table["rows"]
    names = [r for r in ROWS if r in rows] + [r for r in rows if r not in ROWS]
    head = "<th>Row</th>" + "".join(f"<th>{esc(b)} points ({esc(n)})</th>"
                                    for b, n in zip(table["bins"], table["objects"]))

    def table_html(a: str, b: str, cell: Callable[[float, float], str]) -> str:  # per row, cell(row[a][i], row[b][i])
        return _rows_table(head, [(name, titles.get(name, name), ["n/a" if x is None else cell(x, y)
                                                                  for x, y in zip(rows[name][a], rows[name][b])])
                                  for name in names])

    found = (table_html("found", "mean_best_iou", lambda f, m: f"{100 * f:.0f} ({m:.2f})")
             + f'<p class="note">% of the GT objects of each size (points; objects in brackets) that some mask of the '
             f"row overlaps at IoU &gt; {esc(table.get('iou', 0.5))}, whatever its score (in brackets the mean best "
             "IoU). Where a row loses against another, by object size.</p>")
    if not all("merged" in rows[n] and "partial" in rows[n] for n in names):
        return found  # a by_size.json written before the misses were split (no merged / partial)
    return (found + table_html("merged", "partial", lambda g, p: f"{100 * g:.0f} / {100 * p:.0f}")
            + '<p class="note">Missed objects: % of the objects of each size that the row misses with a best mask '
            "larger than the object (merged: it spills into the surroundings) / not larger (partial); the rest of "
            "the misses have no overlapping mask.</p>")


def views_html(table: Mapping[str, Any]) -> str:
    """by_size.json's view_rows (gcseg.eval.by_size.views_by_size): per size bin, % of the (object, keyframe)
    views in which some proposal matches the object, before / after the containment filter."""
    head = "<th>Per keyframe view</th>" + "".join(f"<th>{esc(b)} points ({esc(n)} views)</th>"
                                                  for b, n in zip(table["bins"], table["pairs"]))
    return (_rows_table(head, [(name, r.get("title", name), ["n/a" if x is None else f"{100 * x:.0f}" for x in r["found"]])
                               for name, r in table["rows"].items()])
            + '<p class="note">Of the views (object, keyframe) where the object shows on at least the ceiling\'s '
            "minimum area, the % where some proposal matches it, before and after the containment filter: against "
            "the perfect-identity row above, what the vote across views loses.</p>")


def load_study(path: Path) -> dict[str, Any]:
    """metrics/study/seeds.json (gcseg.study.summarize): mean and spread of each ablation row over seeds."""
    data = load_json(path, STUDY_FIX)
    if not isinstance(data, dict) or not isinstance(data.get("rows"), dict) or not isinstance(data.get("seeds"), list):
        raise ArtifactError("expected {seeds: [...], rows: {...}, ordering_holds: {...}}", path=path, fix=STUDY_FIX)
    return data


def study_html(study: Mapping[str, Any]) -> str:
    """Mean +- sample standard deviation (%) of each ablation row over the study's seeds, the per-seed values in
    a tooltip, and for how many seeds the paper's ordering held."""
    head = "".join(f"<th>{esc(f)} (%)</th>" for f in FIGURES)
    body = []
    for r in [r for r in ROWS if r in study["rows"]] + [r for r in study["rows"] if r not in ROWS]:
        cells = []
        for f in FIGURES:
            s = study["rows"][r].get(f)
            if not isinstance(s, dict):
                cells.append("<td>n/a</td>")
                continue
            vals, who = s.get("values", []), s.get("seeds")  # whose values (older summaries: none recorded)
            values = "per seed: " + ", ".join(pct(v) for v in vals) if who is None else \
                ", ".join(f"seed {w}: {pct(v)}" for w, v in zip(who, vals, strict=True))
            cells.append(f'<td title="{esc(values)}">{pct(s.get("mean"))} &plusmn; {pct(s.get("std"))}</td>')
        title = ROW_TITLES.get(r) or (f"Train scenes: {OWN_TITLES[r]}" if r in OWN_TITLES else
                                      PERFECT_TITLES.get(r, r))
        body.append(f'<tr data-row="{esc(r)}"><th scope="row">{esc(title)}</th>{"".join(cells)}</tr>')
    order = study.get("ordering_holds") or {}
    held = sum(bool(v) for v in order.values())
    seeds = ", ".join(str(s) for s in study["seeds"])
    failed = study.get("failed") or []
    own = study.get("refines_own_labels") or {}
    own_note = (f" On the train scenes Stage 1 + 2 + 3 &ge; the tracked labels it trained on (AP) for "
                f"{sum(bool(v) for v in own.values())} of {len(own)} seed(s)." if own else "")
    note = (f'<p class="note">Seeds {esc(seeds)}; Stage 1 &lt; Stage 1 + 2 &lt; Stage 1 + 2 + 3 &ge; lift-only (AP) '
            f"held for {held} of {len(order)} seed(s).{own_note}" + (f" Failed or missing: {esc(', '.join(failed))}."
                                                                   if failed else "") + "</p>")
    return (f'<table class="ablation study"><thead><tr><th>Method</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>" + note)
