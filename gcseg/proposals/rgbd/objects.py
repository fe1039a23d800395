"""Objects among the non-room pixels: pieces cut at depth discontinuities and at support surfaces, reassembled
into whole objects; what rests on a wider support (a cup on a table, a book on a shelf board) stays its own.

1. Supports: horizontal up-facing patches (table tops, seats, shelf boards, lids) and thin horizontal slabs
   seen edge-on (a board at eye level), of some area and length; coplanar fragments of one piece are joined.
2. The thin height band around each support, inside its horizontal footprint, is taken out; the remaining
   pixels fall apart into pieces (3D connected components on the pixel grid).
3. Above a support, a piece that also holds the support's structure (a shelf's sides and back touch the books
   standing in it) is split once more at colour edges; fragments that touch no support (a label, the stripes of
   a vase) go back to the neighbour they share the longest boundary with.
4. A piece that touches a support's band at its own bottom, is clearly narrower and stands inside its
   footprint rests on it: an item. Every other piece touching the band (legs, a chair back as wide as its
   seat, shelf sides between two boards) joins the support; pieces under a support's footprint that a depth
   step cut from it (legs set back from a table's edge) join it too.
5. Band pixels next to an item grow back into it (its bottom centimetre), the rest join their support.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gcseg.proposals.rgbd.config import RgbdConfig
from gcseg.proposals.rgbd.geometry import View
from gcseg.proposals.rgbd.graph import Pairs, components, horizontal_extents, label_quantiles, label_sums, \
    merge_labels, relabel


@dataclass
class Objects:
    label: np.ndarray  # int64 (h, w): object id 0..K-1, -1 = none
    parts: np.ndarray  # int64 (h, w): part id (pieces and support bands), -1 = none
    is_item: np.ndarray  # bool (K,): the object rests on a support


@dataclass
class Pixels:
    """Flat per-pixel quantities of one view (the graph works on flat indices)."""

    n: int
    obj: np.ndarray  # bool: valid and not room
    height: np.ndarray
    z: np.ndarray
    area: np.ndarray
    x1: np.ndarray  # horizontal world coordinates
    x2: np.ndarray
    pairs: Pairs  # cont = same surface (depth)
    colour_cont: np.ndarray  # bool per pair: same surface and no colour edge


@dataclass
class Supports:
    label: np.ndarray  # flat int64: support id of each support-surface pixel, -1 elsewhere
    ids: np.ndarray  # int64: the supports kept (large enough)
    height: np.ndarray  # per support id
    centre: np.ndarray  # (S, 2) horizontal centre of the footprint
    axes: np.ndarray  # (S, 2, 2) footprint axes (rows)
    lengths: np.ndarray  # (S, 2) footprint lengths (major, minor; minor at least support_min_depth)
    up_facing: np.ndarray  # flat bool: pixels on up-facing surfaces


def _horizontal_basis(up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e1 = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(up, e1)


def _inside_box(p: np.ndarray, centre: np.ndarray, axes: np.ndarray, lengths: np.ndarray, margin: float
                ) -> np.ndarray:
    """Horizontal points p (..., 2) inside the oriented rectangle(s) (centre, axes rows, full lengths) + margin."""
    d = p - centre
    u = (d * axes[..., 0, :]).sum(-1)
    v = (d * axes[..., 1, :]).sum(-1)
    return (np.abs(u) <= lengths[..., 0] / 2 + margin) & (np.abs(v) <= lengths[..., 1] / 2 + margin)


def pixels_of(view: View, room_mask: np.ndarray, cfg: RgbdConfig) -> Pixels:
    pairs = Pairs.build(view.hw, view.cont_h, view.cont_v)
    e1, e2 = _horizontal_basis(view.up_world)
    world = view.world.reshape(-1, 3)
    lab = view.lab.reshape(-1, 3)
    colour = np.linalg.norm(lab[pairs.a] - lab[pairs.b], axis=-1) <= cfg.color_cut
    return Pixels(n=view.hw[0] * view.hw[1], obj=(view.valid & ~room_mask).ravel(), height=view.height.ravel(),
                  z=view.z.ravel(), area=view.area.ravel(), x1=world @ e1, x2=world @ e2, pairs=pairs,
                  colour_cont=pairs.cont & colour)


def _slabs(view: View, obj: np.ndarray, cfg: RgbdConfig) -> np.ndarray:
    """Pixels of thin horizontal slabs seen edge-on (a shelf board's front edge at eye level): runs of one
    surface along an image column no taller than slab_max_thickness (plus 2 pixels), i.e. bounded above and
    below by depth discontinuities. Returns a flat bool mask; the caller keeps the long ones."""
    h, w = view.hw
    brk = np.ones((h + 1, w), bool)
    brk[1:-1] = ~view.cont_v
    run = np.cumsum(brk[:-1], axis=0) - 1 + np.arange(w)[None, :] * (h + 1)  # run id per pixel
    length = np.bincount(run.ravel(), minlength=(h + 1) * w)[run]
    thin = length <= cfg.slab_max_thickness * view.f / np.maximum(view.z, 1e-6) + 2.0
    return thin.ravel() & obj


def _merge_coplanar(sup: np.ndarray, piece0: np.ndarray, height: np.ndarray, dh: float) -> np.ndarray:
    """Join the fragments of one support surface (a shelf board between the items on it): patches of one
    connected piece whose median heights chain within `dh`."""
    ns = int(sup.max()) + 1
    if ns < 2:
        return sup
    hs = label_quantiles(sup, ns, height, (0.5,))[0]
    owner = np.zeros(ns, np.int64)
    pos = sup >= 0
    owner[sup[pos]] = piece0[pos]
    order = np.lexsort((hs, owner))
    same = (owner[order][1:] == owner[order][:-1]) & (np.diff(hs[order]) <= dh)
    group = np.empty(ns, np.int64)
    group[order] = np.concatenate([[0], np.cumsum(~same)])
    return relabel(np.where(pos, group[np.maximum(sup, 0)], -1))


def find_supports(view: View, px: Pixels, cfg: RgbdConfig) -> tuple[Supports, np.ndarray]:
    """Support surfaces and their bands. A band is the support plus every pixel at its height (+- band_abs +
    band_rel * depth) connected to it along one surface: the board's front edge, the bottom centimetre of what
    stands on it, the line where it meets the shelf's sides and back. Returns (supports, band: flat int64 support
    id per pixel, -1 outside bands). The footprint (horizontal box of the band along the axes of the whole
    piece, a shelf's width rather than the part of a board its books leave visible) says what stands on it."""
    pairs, n, height = px.pairs, px.n, px.height
    cos_up = (view.normals * view.up).sum(-1).ravel()
    up_facing = px.obj & view.normal_ok.ravel() & (cos_up > np.cos(np.radians(cfg.horizontal_deg)))
    level = pairs.cont & (np.abs(height[pairs.a] - height[pairs.b]) <= cfg.support_dh)
    sup = components(n, pairs.a, pairs.b, level, up_facing)
    slab = _slabs(view, px.obj, cfg) & (sup < 0)
    if slab.any():  # edge-on supports (shelf boards at eye level)
        sl = components(n, pairs.a, pairs.b, level, slab)
        k = int(sl.max()) + 1
        _, _, sl_len, _ = horizontal_extents(sl, k, px.x1, px.x2, np.ones(n))
        sl = np.where((sl >= 0) & (sl_len[np.maximum(sl, 0), 0] >= cfg.slab_min_extent), sl, -1)
        sup = np.where(sl >= 0, sl + int(sup.max()) + 1, sup)
    piece0 = components(n, pairs.a, pairs.b, pairs.cont, px.obj)
    sup = _merge_coplanar(sup, piece0, height, cfg.support_dh)
    ns = int(sup.max()) + 1
    band = np.full(n, -1, np.int64)
    if ns == 0:
        z2 = np.zeros((0, 2))
        return Supports(sup, np.zeros(0, np.int64), np.zeros(0), z2, np.zeros((0, 2, 2)), z2, up_facing), band
    _, _, lengths0, s_area = horizontal_extents(sup, ns, px.x1, px.x2, px.area)
    s_h = label_quantiles(sup, ns, height, (0.5,))[0]
    keep = np.flatnonzero((s_area >= cfg.support_min_area) & (lengths0[:, 0] >= cfg.support_min_extent))
    owner = np.zeros(ns, np.int64)
    pos = sup >= 0
    owner[sup[pos]] = piece0[pos]
    # bands: each pixel near the height of a support of its piece (the nearest if several), kept where
    # connected at that height to the support itself
    best = np.full(n, np.inf)
    cand = np.full(n, -1, np.int64)
    delta = cfg.band_abs + cfg.band_rel * px.z
    for s in keep:
        dh = np.abs(height - s_h[s])
        m = (piece0 == owner[s]) & (dh <= delta) & (dh < best)
        cand[m] = s
        best[m] = dh[m]
    cand[np.isin(sup, keep)] = sup[np.isin(sup, keep)]
    same = cand[pairs.a] == cand[pairs.b]
    grown = components(n, pairs.a, pairs.b, pairs.cont & same, cand >= 0)
    ng = int(grown.max()) + 1
    seeded = np.zeros(max(ng, 1), bool)
    own = np.isin(sup, keep) & (grown >= 0)
    seeded[grown[own]] = True
    inb = (grown >= 0) & seeded[np.maximum(grown, 0)]
    band[inb] = cand[inb]
    # footprint along the axes of the whole piece
    k0 = int(piece0.max()) + 1
    _, axes0, _, _ = horizontal_extents(piece0, k0, px.x1, px.x2, px.area)
    axes = axes0[owner]
    bpos = band >= 0
    ax_px = axes[np.maximum(band, 0)]
    u = np.where(bpos, (ax_px[:, 0, 0] * px.x1 + ax_px[:, 0, 1] * px.x2), 0.0)
    v = np.where(bpos, (ax_px[:, 1, 0] * px.x1 + ax_px[:, 1, 1] * px.x2), 0.0)
    qu = label_quantiles(band, ns, u, (0.01, 0.99))
    qv = label_quantiles(band, ns, v, (0.01, 0.99))
    lengths = np.nan_to_num(np.stack([qu[1] - qu[0], qv[1] - qv[0]], -1))
    mid_u, mid_v = np.nan_to_num((qu[0] + qu[1]) / 2), np.nan_to_num((qv[0] + qv[1]) / 2)
    cen = mid_u[:, None] * axes[:, 0] + mid_v[:, None] * axes[:, 1]
    # what rests on a support may stand behind its visible part (a board seen edge-on shows its front only)
    lengths[:, 1] = np.maximum(lengths[:, 1], cfg.support_min_depth)
    return Supports(sup, keep, s_h, cen, axes, lengths, up_facing), band


@dataclass
class Relations:
    """How pieces touch support bands: one row per (piece, support) pair that touch along one surface."""

    piece: np.ndarray
    support: np.ndarray
    rests: np.ndarray  # the piece's bottom is at the support (it stands on it)
    under: np.ndarray  # the piece's top is at the support (it holds it up)
    narrower: np.ndarray
    item: np.ndarray  # rests on it, narrower, inside its footprint, holds up no wider support
    is_item: np.ndarray  # per piece
    bottom: np.ndarray  # per piece
    top: np.ndarray
    centre: np.ndarray  # (P, 2)
    length: np.ndarray  # (P, 2)


def relations(piece: np.ndarray, band: np.ndarray, px: Pixels, sup: Supports, cfg: RgbdConfig) -> Relations:
    npc = int(piece.max()) + 1
    ns = max(int(band.max()) + 1, 1)
    pairs = px.pairs
    pa, pb = pairs.a[pairs.cont], pairs.b[pairs.cont]
    lp = np.concatenate([piece[pa], piece[pb]])
    lb = np.concatenate([band[pb], band[pa]])
    sel = (lp >= 0) & (lb >= 0)
    key = np.unique(lp[sel] * ns + lb[sel])
    ap, asup = key // ns, key % ns
    q = label_quantiles(piece, npc, px.height, (0.03, 0.97))
    bottom, top = q[0], q[1]
    pcen, _, plen, _ = horizontal_extents(piece, npc, px.x1, px.x2, px.area)
    slack = cfg.band_abs + cfg.band_rel * label_quantiles(piece, npc, px.z, (0.5,))[0]
    hs, sl = sup.height[asup], slack[ap]
    rests = (bottom[ap] >= hs - sl) & (top[ap] > hs + sl) & (top[ap] - bottom[ap] >= cfg.item_min_height)
    under = (top[ap] <= hs + sl) & (bottom[ap] < hs - sl)
    narrower = plen[ap, 0] <= cfg.item_max_ratio * sup.lengths[asup, 0]
    # a piece under a clearly wider support holds it up (a leg, a shelf side): never an item
    holds = np.zeros(npc, bool)
    holds[ap[under & narrower]] = True
    item = (rests & narrower & ~holds[ap]
            & _inside_box(pcen[ap], sup.centre[asup], sup.axes[asup], sup.lengths[asup], 0.0))
    is_item = np.zeros(npc, bool)
    is_item[ap[item]] = True
    return Relations(ap, asup, rests, under, narrower, item, is_item, bottom, top, pcen, plen)


def tall_planes(view: View, px: Pixels, cfg: RgbdConfig) -> np.ndarray:
    """Flat bool: pixels on a tall vertical plane among the objects (a shelf's back panel and sides, a cabinet
    front). Planar patches are grown along one surface with agreeing normals, patches of one piece on one plane
    (a back panel cut into compartments by boards) are joined, and planes spanning at least tall_plane_height
    are kept. Small things are never that tall, so nothing on such a plane is an item."""
    pairs, n = px.pairs, px.n
    nrm = view.normals.reshape(-1, 3)
    pts = view.points.reshape(-1, 3)
    cos_up = nrm @ view.up
    vert = px.obj & view.normal_ok.ravel() & (np.abs(cos_up) < np.sin(np.radians(cfg.vertical_deg)))
    na, nb = nrm[pairs.a], nrm[pairs.b]
    navg = na + nb
    navg /= np.maximum(np.linalg.norm(navg, axis=-1, keepdims=True), 1e-9)
    flat = pairs.cont & ((na * nb).sum(-1) > np.cos(np.radians(10.0)))
    flat &= np.abs((navg * (pts[pairs.a] - pts[pairs.b])).sum(-1)) <= cfg.band_abs
    patch = components(n, pairs.a, pairs.b, flat, vert)
    k = int(patch.max()) + 1
    out = np.zeros(n, bool)
    if k == 0:
        return out
    piece0 = components(n, pairs.a, pairs.b, pairs.cont, px.obj)
    nw = nrm @ view.rot.T  # world normals
    cnt, sx, sy, sz = label_sums(patch, k, np.ones(n), nw[:, 0], nw[:, 1], nw[:, 2])
    mn = np.stack([sx, sy, sz], -1) / np.maximum(cnt, 1)[:, None]
    mn /= np.maximum(np.linalg.norm(mn, axis=-1, keepdims=True), 1e-9)
    world = view.world.reshape(-1, 3)
    (so,) = label_sums(patch, k, (world * mn[np.maximum(patch, 0)]).sum(-1))
    off = so / np.maximum(cnt, 1)
    owner = np.zeros(k, np.int64)
    pos = patch >= 0
    owner[patch[pos]] = piece0[pos]
    big = np.flatnonzero(cnt >= 10)  # tiny patches cannot tell a plane
    i, j = np.triu_indices(len(big), 1)
    i, j = big[i], big[j]
    same = ((owner[i] == owner[j]) & ((mn[i] * mn[j]).sum(-1) > np.cos(np.radians(10.0)))
            & (np.abs(off[i] - off[j]) <= 2 * cfg.band_abs))
    plane = merge_labels(k, i[same], j[same])
    lab = np.where(pos, plane[np.maximum(patch, 0)], -1)
    lab = np.where(pos & (cnt[np.maximum(patch, 0)] >= 10), lab, -1)
    npl = int(lab.max()) + 1
    if npl == 0:
        return out
    q = label_quantiles(lab, npl, px.height, (0.02, 0.98))
    tall = (q[1] - q[0]) >= cfg.tall_plane_height
    return (lab >= 0) & tall[np.maximum(lab, 0)]


def _group_edges(lab: np.ndarray, pairs: Pairs, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected adjacency between labels along the pairs where `keep`: (u, v, count) with u != v, both
    directions listed."""
    la, lb = lab[pairs.a[keep]], lab[pairs.b[keep]]
    sel = (la >= 0) & (lb >= 0) & (la != lb)
    k = int(lab.max()) + 1
    key, cnt = np.unique(np.concatenate([la[sel] * k + lb[sel], lb[sel] * k + la[sel]]), return_counts=True)
    return key // k, key % k, cnt


def zone_items(px: Pixels, sup: Supports, band: np.ndarray, structure: np.ndarray, cfg: RgbdConfig
               ) -> np.ndarray:
    """What stands on each support, found in its zone: the pixels above it (up to column_height) inside its
    footprint that are neither a support band nor a tall structure plane. The zone is cut at depth and colour
    edges; fragments touching the support's band and at least item_min_height tall are seeds, every other
    fragment joins, step by step, the neighbour it shares the longest boundary with (a book's spine label its
    book, the stripes of a vase its body). A seed group narrower than its support that holds up no other support
    (a shelf's side reaches the board above) is an item. Returns a flat int64 item id per pixel, -1 elsewhere."""
    n, pairs, h = px.n, px.pairs, px.height
    p2 = np.stack([px.x1, px.x2], -1)
    zone = np.full(n, -1, np.int64)
    zone_h = np.full(n, -np.inf)
    free = px.obj & (band < 0) & ~structure
    for s in sup.ids:  # a pixel belongs to the zone of the highest support below it
        hs = sup.height[s]
        m = free & (h > hs) & (h <= hs + cfg.column_height) & (hs > zone_h)
        m &= _inside_box(p2, sup.centre[s], sup.axes[s], sup.lengths[s], -cfg.footprint_margin)
        zone[m] = s
        zone_h[m] = hs
    out = np.full(n, -1, np.int64)
    if not (zone >= 0).any():
        return out
    frag = components(n, pairs.a, pairs.b, px.colour_cont & (zone[pairs.a] == zone[pairs.b]), zone >= 0)
    nf = int(frag.max()) + 1
    fzone = np.zeros(nf, np.int64)
    pos = frag >= 0
    fzone[frag[pos]] = zone[pos]
    anchored = np.zeros(nf, bool)
    a, b = pairs.a[pairs.cont], pairs.b[pairs.cont]
    top_of = []  # (fragment, higher support it touches)
    for x, y in ((a, b), (b, a)):
        hit = (frag[x] >= 0) & (band[y] >= 0)
        fx, by = frag[x][hit], band[y][hit]
        anchored[fx[by == fzone[fx]]] = True
        above = (by != fzone[fx]) & (sup.height[by] > sup.height[fzone[fx]])
        top_of.append(np.stack([fx[above], by[above]], -1))
    top_of = np.unique(np.concatenate(top_of), axis=0)
    # a fragment continuing along one surface above its zone belongs to something taller (a lamp's pole)
    high = (zone < 0) & (band < 0) & px.obj
    exits = np.zeros(nf, bool)
    for x, y in ((a, b), (b, a)):
        hit = (frag[x] >= 0) & high[y] & (h[y] > zone_h[x] + cfg.column_height * 0.8)
        exits[frag[x][hit]] = True
    q = label_quantiles(frag, nf, h, (0.03, 0.97))
    seed = anchored & (q[1] - q[0] >= cfg.item_min_height)
    # grow the seeds: every group without a seed joins its longest-boundary neighbour, until none moves
    u, v, cnt = _group_edges(frag, pairs, pairs.cont)
    group = np.arange(nf)
    for _ in range(8):
        g_seed = np.zeros(nf, bool)
        g_seed[group[seed]] = True
        gu, gv = group[u], group[v]
        sel = (gu != gv) & ~g_seed[gu]
        if not sel.any():
            break
        uk, inv = np.unique(gu[sel] * nf + gv[sel], return_inverse=True)  # summed boundary per group pair
        w = np.bincount(inv, weights=cnt[sel])
        src, dst = uk // nf, uk % nf
        order = np.lexsort((dst, -w, src))
        src, dst = src[order], dst[order]
        first = np.concatenate([[True], src[1:] != src[:-1]])
        group = merge_labels(nf, src[first], dst[first])[group]
    gid = group[np.maximum(frag, 0)]
    glab = np.where(pos, gid, -1)
    ng = int(group.max()) + 1
    g_anchor = np.zeros(ng, bool)
    g_anchor[group[anchored]] = True
    g_zone = np.zeros(ng, np.int64)
    g_zone[group] = fzone
    gq = label_quantiles(glab, ng, h, (0.03, 0.97))
    _, _, glen, _ = horizontal_extents(glab, ng, px.x1, px.x2, px.area)
    # a group touching a clearly wider support above it holds that support up (a shelf's side reaching the
    # board above); a support about as wide as the group is its own top (a box's lid)
    g_holds = np.zeros(ng, bool)
    if len(top_of):
        tg, ts = group[top_of[:, 0]], top_of[:, 1]
        g_holds[tg[glen[tg, 0] <= cfg.item_max_ratio * sup.lengths[ts, 0]]] = True
    g_exits = np.zeros(ng, bool)
    g_exits[group[exits]] = True
    item = (g_anchor & ~g_holds & ~g_exits & (gq[1] - gq[0] >= cfg.item_min_height)
            & (glen[:, 0] <= cfg.item_max_ratio * sup.lengths[g_zone, 0]))
    keep = pos & item[np.maximum(glab, 0)]
    out[keep] = glab[keep]
    return relabel(out)


def _hangs_under(piece: np.ndarray, px: Pixels, up_facing: np.ndarray, eye: np.ndarray, cfg: RgbdConfig
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of pieces (b, a) next to each other in the image where b ends just under a and stands inside a's
    horizontal footprint (a lamp's pole under its shade, a table's legs set back under its top): a depth step
    separates them in the image, not in the world. A piece seen from the side (few up-facing pixels: a lamp
    shade) shows only its front; its footprint reaches half its width further from the camera."""
    npc = int(piece.max()) + 1
    u, v, _ = _group_edges(piece, px.pairs, np.ones(len(px.pairs.a), bool))
    if u.size == 0:
        return u, v
    q = label_quantiles(piece, npc, px.height, (0.03, 0.97))
    bottom, top = q[0], q[1]
    cen, axes, lengths, _ = horizontal_extents(piece, npc, px.x1, px.x2, px.area)
    cnt, n_up = label_sums(piece, npc, np.ones(px.n), up_facing.astype(np.float64))
    below = (top[u] <= bottom[v] + cfg.band_abs * 3) & (top[u] >= bottom[v] - cfg.under_reach)
    inside = _inside_box(cen[u], cen[v], axes[v], lengths[v], cfg.footprint_margin)
    d = cen[u] - cen[v]
    view = cen[v] - eye
    view /= np.maximum(np.linalg.norm(view, axis=-1, keepdims=True), 1e-9)
    t = (d * view).sum(-1)
    lateral = np.linalg.norm(d - t[:, None] * view, axis=-1)
    half = lengths[v, 0] / 2 + cfg.footprint_margin
    touching = top[u] >= bottom[v] - cfg.under_reach / 3
    behind = (n_up[v] < 0.2 * cnt[v]) & touching & (t >= 0) & (t <= half) & (lateral <= half)
    ok = below & (inside | behind)
    return u[ok], v[ok]


def segment_objects(view: View, room_mask: np.ndarray, cfg: RgbdConfig, debug: dict | None = None) -> Objects:
    h, w = view.hw
    px = pixels_of(view, room_mask, cfg)
    n, pairs = px.n, px.pairs
    sup, band = find_supports(view, px, cfg)
    structure = tall_planes(view, px, cfg) if len(sup.ids) else np.zeros(n, bool)
    items = zone_items(px, sup, band, structure, cfg) if len(sup.ids) else np.full(n, -1, np.int64)
    n_items = int(items.max()) + 1
    # everything else: pieces cut at depth steps and bands, joined to the supports they touch
    rest = px.obj & (band < 0) & (items < 0)
    piece = components(n, pairs.a, pairs.b, pairs.cont, rest)
    npc = int(piece.max()) + 1
    ns = int(sup.label.max()) + 1
    item0 = npc + ns  # node ids: pieces, supports, items
    edges_a: list[np.ndarray] = []
    edges_b: list[np.ndarray] = []
    # a support an item touches above its bottom is the item's top (a box's lid), not part of what holds it
    top_of = np.zeros(0, np.int64)
    if n_items:
        ib = label_quantiles(items, n_items, px.height, (0.03,))[0]
        ii, ss, _ = _group_edges(np.where(items >= 0, items, np.where(band >= 0, n_items + band, -1)), pairs,
                                 pairs.cont)
        sel = (ii < n_items) & (ss >= n_items)
        ii, ss = ii[sel], ss[sel] - n_items
        top = sup.height[ss] > ib[ii] + cfg.item_min_height / 2
        edges_a.append(item0 + ii[top])
        edges_b.append(npc + ss[top])
        top_of = np.unique(ss[top])
    if npc and len(sup.ids):
        rel = relations(piece, band, px, sup, cfg)
        # a piece passing beside a clearly smaller support (a shelf's back beside the lid of a box on the
        # shelf) does not join it: that support is another object's top
        beside_smaller = (~rel.rests & ~rel.under
                          & (sup.lengths[rel.support, 0] < cfg.item_max_ratio * rel.length[rel.piece, 0]))
        join = ~beside_smaller & ~np.isin(rel.support, top_of)
        edges_a.append(rel.piece[join])
        edges_b.append(npc + rel.support[join])
        # pieces below a support's footprint, touching its object in the image but cut by a depth step
        for s in np.setdiff1d(sup.ids, top_of):
            cand = np.flatnonzero((rel.top < sup.height[s]) & (rel.top >= sup.height[s] - cfg.under_reach)
                                  & _inside_box(rel.centre, sup.centre[s], sup.axes[s], sup.lengths[s],
                                                cfg.footprint_margin))
            edges_a.append(cand)
            edges_b.append(np.full(len(cand), npc + s, np.int64))
        if debug is not None:
            debug.update(rel=rel)
    if npc > 1:
        e1, e2 = _horizontal_basis(view.up_world)
        ua, ub = _hangs_under(piece, px, sup.up_facing, np.array([view.eye @ e1, view.eye @ e2]), cfg)
        edges_a.append(ua)
        edges_b.append(ub)
    if debug is not None:
        debug.update(sup=sup.label, keep_ids=sup.ids, piece=piece, band=band, structure=structure, items=items)
    nodes = item0 + n_items
    ea = np.concatenate(edges_a) if edges_a else np.zeros(0, np.int64)
    eb = np.concatenate(edges_b) if edges_b else np.zeros(0, np.int64)
    # supports that share a piece (boards of one shelf via its sides) end up in one object through it
    node_obj = merge_labels(nodes, ea, eb)
    lab = np.full(n, -1, np.int64)
    lab[piece >= 0] = node_obj[piece[piece >= 0]]
    lab[items >= 0] = node_obj[item0 + items[items >= 0]]
    item_obj = np.zeros(int(node_obj.max()) + 1 if nodes else 0, bool)
    item_obj[node_obj[item0:]] = True
    lab = _regrow(lab, band, item_obj, pairs, max(1, int(round(cfg.regrow_px * view.px))))
    inband = band >= 0
    left = inband & (lab < 0)
    lab[left] = node_obj[npc + band[left]]
    parts = np.full(n, -1, np.int64)
    parts[piece >= 0] = piece[piece >= 0]
    parts[inband] = npc + band[inband]
    parts[items >= 0] = npc + ns + items[items >= 0]
    lab, inv = _relabel_with_map(lab)
    obj_item = np.zeros(int(lab.max()) + 1, bool)
    old = np.flatnonzero(item_obj[: len(inv)])
    obj_item[inv[old][inv[old] >= 0]] = True
    return Objects(lab.reshape(h, w), relabel(parts).reshape(h, w), obj_item)


def _relabel_with_map(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """relabel() plus the map old id -> new id (-1 for ids that no pixel keeps)."""
    new = relabel(lab)
    k = int(lab.max()) + 1
    m = np.full(max(k, 0), -1, np.int64)
    pos = lab >= 0
    m[lab[pos]] = new[pos]
    return new, m


def _regrow(lab: np.ndarray, band: np.ndarray, item_obj: np.ndarray, pairs: Pairs, steps: int) -> np.ndarray:
    """Items grow back into the band pixels next to them (their bottom), `steps` pixels along one surface."""
    lab = lab.copy()
    inband = band >= 0
    src = np.concatenate([pairs.a, pairs.b])
    dst = np.concatenate([pairs.b, pairs.a])
    cont = np.concatenate([pairs.cont, pairs.cont])
    for _ in range(steps):
        ls = lab[src]
        ok = cont & inband[dst] & (lab[dst] < 0) & (ls >= 0)
        ok[ok] = item_obj[ls[ok]]
        if not ok.any():
            break
        order = np.lexsort((ls[ok], dst[ok]))  # the smallest object id wins a contested pixel
        d_ok, l_ok = dst[ok][order], ls[ok][order]
        first = np.concatenate([[True], d_ok[1:] != d_ok[:-1]])
        lab[d_ok[first]] = l_ok[first]
    return lab
