"""Perfect ranking: what a prediction set's confidences cost it (a diagnostic; uses GT).

AP rewards good masks only as far as the confidences rank them above the false positives (parts, unions,
duplicates). Scoring the same masks once more with their confidences replaced by an order that knows the GT
separates the two: each GT object's best mask (highest IoU) first, by that IoU, and every other mask after them
(confidence 0). The difference between that AP and the given one is what the ranking loses; what remains under
100 is the masks'. Not an exact maximum over all orders (the ScanNet protocol's greedy matching at nine IoU
thresholds has no single best order), a reference for how far any confidence could move the same masks
(docs/model_study.md "Round 22")."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from gcseg.eval.ap import SceneEval, _scene_stats, _selector


def perfect_ranking_scores(scene: SceneEval, *, min_region_size: int = 100,
                           valid_labels: Collection[int] | None = None) -> np.ndarray:
    """Confidences in the perfect order for `scene`'s masks: a mask that is some counted GT object's best mask
    (highest IoU among the masks of >= `min_region_size` vertices, the first such mask on ties) gets that IoU (the
    highest one if it is best for several), every other mask 0. Counted GT objects are those of `valid_labels`
    (None = every label >= 1) with at least `min_region_size` vertices, on the scene's valid vertices, as the
    evaluation counts them."""
    st, n_given = _scene_stats(scene, min_region_size, use_scores=False)  # the evaluation's counting
    scores = np.zeros(n_given)
    counted = _selector(valid_labels)(st.gt_labels) & (st.gt_counts >= min_region_size)
    pairs = counted[st.pair_gt]  # masks below min_region_size are gone already: nobody's best
    if not pairs.any():
        return scores
    pg, pp, pi = st.pair_gt[pairs], st.pair_pred[pairs], st.pair_inter[pairs]
    iou = pi / (st.gt_counts[pg] + st.pred_counts[pp] - pi)
    # each GT object's best mask (the first on ties): pairs are sorted by (GT, mask), so a stable sort by
    # descending IoU within each GT puts it first
    order = np.lexsort((-iou, pg))
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = pg[order][1:] != pg[order][:-1]
    best = order[first]
    np.maximum.at(scores, st.kept[pp[best]], iou[best])
    return scores


def with_perfect_ranking(scenes: Sequence[SceneEval], *, min_region_size: int = 100,
                         valid_labels: Collection[int] | None = None) -> list[SceneEval]:
    """The same scenes and masks with perfect_ranking_scores as their confidences."""
    return [replace(s, pred_scores=perfect_ranking_scores(s, min_region_size=min_region_size,
                                                          valid_labels=valid_labels)) for s in scenes]


PERFECT_RANKING_SOURCE = ("uses GT: each row's own masks, each GT object's best mask (highest IoU) first, by that "
                          "IoU, every other mask after them; the drop to the row's AP is what its confidences cost, "
                          "what stays under 100 is its masks'")


def perfect_ranking_block(val_scenes: Sequence[Any], rows: Mapping[str, Mapping[str, Any]],
                          given: Mapping[str, Any], *, min_region_size: int = 100,
                          valid_labels: Collection[int] | None = None) -> dict[str, Any]:
    """The eval stage's diagnostic: every row of `rows` (scene id -> RowPrediction, as
    gcseg.eval.ablation.evaluate_rows takes them) scored once more in the perfect order, beside its given AP
    (`given`: evaluate_rows' results of the same rows). ``{"source", "rows": {row: {"AP", "AP50", "AP25",
    "given": {"AP", "AP50", "AP25"}}}}``."""
    from gcseg.eval.ablation import RowPrediction, evaluate_rows, scene_evals

    reranked = {name: {e.scene_id: RowPrediction(e.pred_masks, perfect_ranking_scores(
        e, min_region_size=min_region_size, valid_labels=valid_labels)) for e in scene_evals(val_scenes, preds)}
        for name, preds in rows.items()}
    perfect = evaluate_rows(val_scenes, reranked, min_region_size=min_region_size, valid_labels=valid_labels)
    figures = ("AP", "AP50", "AP25")
    out = {}
    for name, result in perfect.items():
        m, g = result.metrics(), given[name].metrics()
        out[name] = {**{f: m[f] for f in figures}, "given": {f: g[f] for f in figures}}
    return {"source": PERFECT_RANKING_SOURCE, "rows": out}


def perfect_ranking_markdown(block: Mapping[str, Any], titles: Mapping[str, str]) -> str:
    """The block as a Markdown table: per row the given AP / AP50, the perfect order's, and what the order costs."""
    from gcseg.eval.diagnostics import _pct as pct  # the diagnostics tables' formatting

    def cost(r: Mapping[str, Any], f: str) -> str:
        return "n/a" if r[f] is None or r["given"][f] is None else f"{100 * (r[f] - r['given'][f]):.1f}"

    lines = ["## What the confidences cost: the same masks in the perfect order (uses GT; not a method)", "",
             "| Row | AP | AP, perfect order | AP lost to the order | AP50 | AP50, perfect order |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in block["rows"].items():
        lines.append(f"| {titles.get(name, name)} | {pct(r['given']['AP'])} | {pct(r['AP'])} | {cost(r, 'AP')} "
                     f"| {pct(r['given']['AP50'])} | {pct(r['AP50'])} |")
    lines += ["", f"* {block['source']} (not an exact maximum over all orders: docs/model_study.md round 22)."]
    return "\n".join(lines) + "\n"
