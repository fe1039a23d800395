"""Hungarian matcher optimality and the set criterion (Mask3D-style BCE + dice + objectness CE)."""

import itertools

import numpy as np
import pytest
import torch

from gcseg.models.decoder import Prediction
from gcseg.models.loss import LossWeights, SceneTarget, set_criterion
from gcseg.models.matcher import hungarian_match, pairwise_bce, pairwise_dice


def test_pairwise_costs_match_direct_formulas():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 7, generator=g)
    t = (torch.rand(2, 7, generator=g) > 0.5).float()
    bce = pairwise_bce(x, t)
    dice = pairwise_dice(x, t)
    for i in range(3):
        for j in range(2):
            ref = torch.nn.functional.binary_cross_entropy_with_logits(x[i], t[j])
            assert abs(float(bce[i, j] - ref)) < 1e-5
            s = x[i].sigmoid()
            ref_d = 1 - (2 * (s * t[j]).sum() + 1) / (s.sum() + t[j].sum() + 1)
            assert abs(float(dice[i, j] - ref_d)) < 1e-5


def test_hand_case_assigns_each_target_its_mask():
    # 3 queries, 2 targets on 6 points: query 2 predicts target 0, query 0 predicts target 1, query 1 junk
    t = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0]], dtype=torch.float32)
    m = torch.tensor([[-9, -9, -9, 9, 9, -9], [9, -9, 9, -9, 9, -9], [9, 9, 9, -9, -9, -9]], dtype=torch.float32)
    logits = torch.zeros(3, 2)
    qi, ti = hungarian_match(logits, m, t, w_class=2.0, w_bce=5.0, w_dice=2.0)
    assert qi.tolist() == [0, 2] and ti.tolist() == [1, 0]


def test_matching_is_optimal_against_brute_force():
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        m = torch.randn(5, 20, generator=g) * 3
        t = (torch.rand(3, 20, generator=g) > 0.6).float()
        logits = torch.randn(5, 2, generator=g)
        qi, ti = hungarian_match(logits, m, t, w_class=2.0, w_bce=5.0, w_dice=2.0)
        cost = (5 * pairwise_bce(m, t) + 2 * pairwise_dice(m, t) - 2 * logits.softmax(-1)[:, :1]).numpy()
        got = cost[qi, ti].sum()
        best = min(sum(cost[q, j] for j, q in enumerate(perm)) for perm in itertools.permutations(range(5), 3))
        assert got <= best + 1e-5


def _target(labels):
    return SceneTarget(torch.tensor(labels), seed=0)


def test_loss_decreases_when_fitting_masks_directly():
    labels = [0] * 10 + [1] * 10 + [-1] * 5
    g = torch.Generator().manual_seed(0)
    masks = torch.randn(4, 25, generator=g, requires_grad=True)
    logits = torch.randn(1, 4, 2, generator=g, requires_grad=True)
    opt = torch.optim.Adam([masks, logits], lr=0.1)
    losses = []
    for _ in range(60):
        out = set_criterion([Prediction(logits, [masks])], [_target(labels)], LossWeights())
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < 0.1 * losses[0]
    assert out["dice"] < 0.05


def test_unlabelled_voxels_do_not_enter_mask_losses_with_labelled_targets():
    labels = [0] * 5 + [1] * 5 + [-1] * 4
    g = torch.Generator().manual_seed(0)
    masks = torch.randn(3, 14, generator=g)
    logits = torch.randn(1, 3, 2, generator=g)
    w = LossWeights(targets="labelled")
    a = set_criterion([Prediction(logits, [masks])], [_target(labels)], w)
    masks2 = masks.clone()
    masks2[:, 10:] = torch.randn(3, 4, generator=g) * 10
    b = set_criterion([Prediction(logits, [masks2])], [_target(labels)], w)
    assert torch.equal(a["loss"], b["loss"])


def test_aux_layers_add_up_and_unmatched_queries_get_no_object():
    labels = [0] * 6
    masks = torch.full((2, 6), 9.0)
    logits = torch.tensor([[[9.0, -9.0], [-9.0, 9.0]]])
    one = set_criterion([Prediction(logits, [masks])], [_target(labels)], LossWeights())
    two = set_criterion([Prediction(logits, [masks])] * 2, [_target(labels)], LossWeights())
    assert abs(float(two["loss"]) - 2 * float(one["loss"])) < 1e-5
    assert float(one["ce"]) < 1e-3  # query 0 matched as object, query 1 confidently no-object
    assert np.isfinite(float(one["loss"]))


def test_all_targets_make_unlabelled_voxels_negatives_of_every_matched_mask():
    # Mask3D/Segment3D (the default): a target mask spans all voxels, so a mask that bleeds over unlabelled
    # voxels costs more than one that stays on its target; with "labelled" targets both cost the same.
    labels = torch.tensor([0, 0, -1, -1, -1, -1])
    bleed = torch.tensor([[9.0, 9, 9, 9, 9, 9]])
    tight = torch.tensor([[9.0, 9, -9, -9, -9, -9]])
    logits = torch.zeros(1, 1, 2)

    def loss(masks, targets):
        w = LossWeights(targets=targets)
        return set_criterion([Prediction(logits, [masks])], [SceneTarget(labels, seed=0)], w)

    assert LossWeights().targets == "all"
    assert abs(float(loss(bleed, "labelled")["bce"] - loss(tight, "labelled")["bce"])) < 1e-6
    # BCE of logit 9 against 0 on 4 of the 6 voxels, averaged over the 6: ~6 more
    assert 5.0 < float(loss(bleed, "all")["bce"] - loss(tight, "all")["bce"]) < 7.0


def test_seeded_matcher_only_matches_queries_seeded_inside_a_target():
    # superpoints 0-1 = object 0, 2-3 = object 1, 4 unlabelled; queries seeded at superpoints 4, 0, 2
    labels = torch.tensor([0, 0, 1, 1, -1])
    masks = torch.tensor([[9.0, 9, -9, -9, -9], [-9.0, -9, 9, 9, -9], [-9.0, -9, -9, -9, -9]])
    logits = torch.zeros(1, 3, 2)
    seeds = [torch.tensor([4, 0, 2])]
    pred = Prediction(logits, [masks], seeds)
    hung = set_criterion([pred], [SceneTarget(labels, seed=0)], LossWeights())
    seeded = set_criterion([pred], [SceneTarget(labels, seed=0)], LossWeights(matcher="seeded"))
    # Hungarian takes the perfect masks of queries 0 and 1; the seeded matcher may not (query 0 sits on the
    # unlabelled superpoint, query 1 inside object 0 predicts object 1), so it pays for wrong masks
    assert float(hung["dice"]) < 0.01 and float(seeded["dice"]) > 0.5
    with pytest.raises(ValueError, match="superpoint queries"):
        set_criterion([Prediction(logits, [masks])], [SceneTarget(labels, seed=0)], LossWeights(matcher="seeded"))


def test_seeded_topk_matches_every_query_seeded_inside_a_target():
    labels = torch.tensor([0, 0, 1, 1, -1])
    masks = torch.tensor([[9.0, 9, -9, -9, -9], [9.0, 9, -9, -9, -9], [-9.0, -9, 9, 9, -9], [9.0, 9, 9, 9, 9]])
    logits = torch.zeros(1, 4, 2)
    pred = Prediction(logits, [masks], [torch.tensor([0, 1, 3, 4])])  # seeds: obj 0, obj 0, obj 1, unlabelled
    from gcseg.models.loss import seeded_match

    tm = torch.stack([labels == 0, labels == 1]).float()
    allowed = labels[torch.tensor([0, 1, 3, 4])][:, None] == torch.arange(2)[None, :]
    qi, ti = seeded_match(logits[0], masks, tm, allowed, LossWeights(), 0)
    assert qi.tolist() == [0, 1, 2] and ti.tolist() == [0, 0, 1]
    qi, ti = seeded_match(logits[0], masks, tm, allowed, LossWeights(), 1)
    assert sorted(ti.tolist()) == [0, 1] and len(qi) == 2
    out = set_criterion([pred], [SceneTarget(labels, seed=0)], LossWeights(matcher="seeded", seeded_topk=0))
    assert float(out["dice"]) < 0.01  # every matched query (0, 1, 2) predicts its target exactly


def test_balanced_targets_weigh_every_target_alike_whatever_its_query_count():
    # object 0 (superpoints 0-1) holds three seeded queries with perfect masks, object 1 (2-3) one with a wrong mask
    labels = torch.tensor([0, 0, 1, 1])
    good, bad = [9.0, 9, -9, -9], [9.0, 9, 9, 9]
    masks = torch.tensor([good, good, good, bad])
    pred = Prediction(torch.zeros(1, 4, 2), [masks], [torch.tensor([0, 1, 0, 2])])
    kw = dict(matcher="seeded", seeded_topk=0)
    per_query = set_criterion([pred], [SceneTarget(labels, seed=0)], LossWeights(**kw))
    per_target = set_criterion([pred], [SceneTarget(labels, seed=0)], LossWeights(balance_targets=True, **kw))
    wrong = 1 - (2 * 2 + 1) / (4 + 2 + 1)  # dice of the bad mask (sigmoid(9) ~ 1 on 4 superpoints, target 2)
    assert float(per_query["dice"]) == pytest.approx(wrong / 4, abs=1e-3)  # 1 of 4 matched queries is wrong
    assert float(per_target["dice"]) == pytest.approx(wrong / 2, abs=1e-3)  # 1 of 2 targets is wrong


def test_quality_objectness_makes_matched_queries_with_poor_masks_no_object():
    """objectness quality: of the queries seeded inside a target, those whose mask misses it (IoU < 0.5) learn
    no-object; their mask terms stay. With every mask right, both settings give the same loss."""
    from gcseg.models.loss import scene_loss

    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    good = [9.0] * 4 + [-9.0] * 4
    poor = [9.0] + [-9.0] * 7  # one of target 0's four elements: IoU 1/4
    masks = torch.tensor([good, poor, [-9.0] * 4 + [9.0] * 4])
    seeds = torch.tensor([0, 1, 4])  # queries 0 and 1 seeded inside target 0, query 2 inside target 1
    logits = torch.tensor([[3.0, -3.0], [3.0, -3.0], [3.0, -3.0]])  # all three say "object"
    pts = torch.arange(8)
    tgt = SceneTarget(labels, seed=0)
    matched = scene_loss(logits, masks, tgt, pts, LossWeights(matcher="seeded", seeded_topk=0), seeds)
    quality = scene_loss(logits, masks, tgt, pts, LossWeights(matcher="seeded", seeded_topk=0, objectness="quality"),
                         seeds)
    assert float(quality["ce"]) > float(matched["ce"])  # query 1 is now told it is no object
    assert torch.equal(quality["bce"], matched["bce"]) and torch.equal(quality["dice"], matched["dice"])
    # the CE against the hand targets: queries 0 and 2 object (weight 1), query 1 no-object (weight eos 0.1)
    logp = logits.log_softmax(-1)
    expected = -(logp[0, 0] + logp[2, 0] + 0.1 * logp[1, 1]) / 2.1
    assert float(quality["ce"]) == pytest.approx(float(expected), rel=1e-6)
    masks[1] = torch.tensor(good)
    again = [scene_loss(logits, masks, tgt, pts, LossWeights(matcher="seeded", seeded_topk=0, objectness=o), seeds)
             for o in ("matched", "quality")]
    assert all(torch.equal(again[0][k], again[1][k]) for k in ("ce", "bce", "dice"))


def test_best_objectness_makes_one_object_per_target():
    """objectness best (DETR's one-to-one for the objectness): of a target's matched queries only the one whose mask
    has the highest IoU learns "object", ties to the lower query; mask terms unchanged."""
    from gcseg.models.loss import best_per_target, scene_loss

    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    good = [9.0] * 4 + [-9.0] * 4
    half = [9.0] * 2 + [-9.0] * 6  # IoU 1/2 with target 0
    masks = torch.tensor([half, good, good, [-9.0] * 4 + [9.0] * 4])
    seeds = torch.tensor([0, 1, 2, 4])  # queries 0-2 inside target 0, query 3 inside target 1
    logits = torch.full((4, 2), 0.0)
    logits[:, 0] = 3.0
    pts = torch.arange(8)
    tgt = SceneTarget(labels, seed=0)
    kw = dict(matcher="seeded", seeded_topk=0)
    matched = scene_loss(logits, masks, tgt, pts, LossWeights(**kw), seeds)
    best = scene_loss(logits, masks, tgt, pts, LossWeights(objectness="best", **kw), seeds)
    assert torch.equal(best["bce"], matched["bce"]) and torch.equal(best["dice"], matched["dice"])
    # query 1 (the first of the two perfect masks) and query 3 are objects, queries 0 and 2 no-object
    logp = logits.log_softmax(-1)
    expected = -(logp[1, 0] + logp[3, 0] + 0.1 * (logp[0, 1] + logp[2, 1])) / 2.2
    assert float(best["ce"]) == pytest.approx(float(expected), rel=1e-6)
    np.testing.assert_array_equal(best_per_target(np.array([0, 0, 1, 0]), np.array([0.5, 0.9, 0.3, 0.9])), [1, 2])
    assert len(best_per_target(np.zeros(0, int), np.zeros(0))) == 0


def test_balanced_objectness_weighs_each_target_once():
    """balance_objectness: a target's positive queries share one weight (their total kept), so three queries seeded
    in a table teach "object" as much as the one in a cup; mask terms unchanged; one positive per target is the
    plain cross-entropy; the soft iou objectness refuses it."""
    from gcseg.models.loss import scene_loss
    from gcseg.train.config import LossConfig

    labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1])
    table, cup = [9.0] * 6 + [-9.0] * 2, [-9.0] * 6 + [9.0] * 2
    masks = torch.tensor([table, table, table, cup, [-9.0] * 8])
    seeds = torch.tensor([0, 2, 4, 6, 7])
    labels_u = torch.cat([labels, torch.tensor([-1])])  # query 4 seeded on an unlabelled element: no object
    masks = torch.cat([masks, torch.full((5, 1), -9.0)], 1)
    seeds[4] = 8
    logits = torch.tensor([[2.0, -1.0], [1.0, 0.0], [0.5, 0.5], [-1.0, 1.0], [0.0, 1.0]])
    pts = torch.arange(9)
    tgt = SceneTarget(labels_u, seed=0)
    w = dict(matcher="seeded", seeded_topk=0, targets="all")
    plain = scene_loss(logits, masks, tgt, pts, LossWeights(**w), seeds)
    bal = scene_loss(logits, masks, tgt, pts, LossWeights(**w, balance_objectness=True), seeds)
    assert torch.equal(plain["bce"], bal["bce"]) and torch.equal(plain["dice"], bal["dice"])
    logp = logits.log_softmax(-1)
    # 4 positives over 2 targets: each target weighs 2, the table's three queries 2/3 each, the cup's one 2
    num = -(2 / 3 * (logp[0, 0] + logp[1, 0] + logp[2, 0]) + 2 * logp[3, 0] + 0.1 * logp[4, 1])
    assert float(bal["ce"]) == pytest.approx(float(num / 4.1), rel=1e-6)
    assert float(bal["ce"]) != pytest.approx(float(plain["ce"]), rel=1e-3)
    one = [scene_loss(logits[2:], masks[2:], tgt, pts, LossWeights(**w, balance_objectness=b), seeds[2:])
           for b in (False, True)]
    assert float(one[0]["ce"]) == pytest.approx(float(one[1]["ce"]), rel=1e-6)
    with pytest.raises(ValueError, match="balance_objectness"):
        LossConfig(objectness="iou", balance_objectness=True)


def test_iou_objectness_targets_each_matched_query_at_its_masks_iou():
    """objectness iou: a matched query's objectness target is its mask's IoU with its target (soft), weighted and
    normalised as the hard cross-entropy; with every mask exact it is the matched setting's loss."""
    from gcseg.models.loss import scene_loss

    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    good = [9.0] * 4 + [-9.0] * 4
    poor = [9.0] + [-9.0] * 7  # one of target 0's four elements: IoU 1/4
    masks = torch.tensor([good, poor, [-9.0] * 4 + [9.0] * 4, [-9.0] * 8])
    seeds = torch.tensor([0, 1, 4, 5])
    logits = torch.tensor([[3.0, -3.0], [1.0, 0.0], [2.0, -1.0], [0.5, 0.0]])
    pts = torch.arange(8)
    tgt = SceneTarget(labels, seed=0)
    w = dict(matcher="seeded", seeded_topk=0)
    matched = scene_loss(logits, masks, tgt, pts, LossWeights(**w), seeds)
    soft = scene_loss(logits, masks, tgt, pts, LossWeights(**w, objectness="iou"), seeds)
    assert torch.equal(soft["bce"], matched["bce"]) and torch.equal(soft["dice"], matched["dice"])
    # query 3 is seeded inside target 1 but its mask is empty: IoU 0, a no-object target (weight eos 0.1)
    logp = logits.log_softmax(-1)
    p = torch.tensor([1.0, 0.25, 1.0, 0.0])  # object targets
    num = -(p * logp[:, 0] + 0.1 * (1 - p) * logp[:, 1]).sum()
    assert float(soft["ce"]) == pytest.approx(float(num / (p + 0.1 * (1 - p)).sum()), rel=1e-6)
    masks[1] = torch.tensor(good)
    masks[3] = torch.tensor([-9.0] * 4 + [9.0] * 4)
    again = [scene_loss(logits, masks, tgt, pts, LossWeights(**w, objectness=o), seeds) for o in ("matched", "iou")]
    assert float(again[0]["ce"]) == pytest.approx(float(again[1]["ce"]), rel=1e-6)


def test_iou_head_learns_the_iou_of_matched_queries_above_iou_score_min():
    """IoU head (SPFormer's score loss): MSE between the head's sigmoid and the IoU of each matched query's mask with
    its target, over the matched queries whose IoU exceeds iou_score_min; the other terms are unchanged, and without
    a head there is no such term."""
    from gcseg.models.loss import scene_loss

    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    good = [9.0] * 4 + [-9.0] * 4
    three = [9.0] * 3 + [-9.0] * 5  # three of target 0's four elements: IoU 3/4
    poor = [9.0] + [-9.0] * 7  # IoU 1/4: under SPFormer's 0.5, not a sample
    masks = torch.tensor([good, three, poor, [-9.0] * 4 + [9.0] * 4])
    seeds = torch.tensor([0, 1, 2, 5])
    logits = torch.tensor([[3.0, -3.0], [1.0, 0.0], [2.0, -1.0], [0.5, 0.0]])
    head = torch.tensor([0.0, 1.0, -1.0, 2.0], requires_grad=True)
    tgt, pts = SceneTarget(labels, seed=0), torch.arange(8)
    w = LossWeights(matcher="seeded", seeded_topk=0)
    plain = scene_loss(logits, masks, tgt, pts, w, seeds)
    terms = scene_loss(logits, masks, tgt, pts, w, seeds, head)
    assert "iou" not in plain and all(torch.equal(plain[k], terms[k]) for k in ("ce", "bce", "dice"))
    s = head.detach().sigmoid()
    want = ((s[0] - 1.0) ** 2 + (s[1] - 0.75) ** 2 + (s[3] - 1.0) ** 2) / 3
    assert float(terms["iou"].detach()) == pytest.approx(float(want), rel=1e-6)
    terms["iou"].backward()
    assert head.grad[2] == 0 and head.grad[1] != 0  # the poor mask is no sample
    low = scene_loss(logits, masks, tgt, pts, LossWeights(matcher="seeded", seeded_topk=0, iou_score_min=0.2), seeds,
                     head.detach())
    assert float(low["iou"]) == pytest.approx(float((3 * want + (s[2] - 0.25) ** 2) / 4), rel=1e-6)


def test_set_criterion_weighs_the_iou_head_term():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    masks = torch.tensor([[9.0] * 4 + [-9.0] * 4, [-9.0] * 4 + [9.0] * 4])
    logits = torch.tensor([[[2.0, -2.0], [2.0, -2.0]]])
    iou = torch.tensor([[0.0, 0.0]])
    tgt = [SceneTarget(labels, seed=0)]
    without = set_criterion([Prediction(logits, [masks])], tgt, LossWeights())
    with_head = set_criterion([Prediction(logits, [masks], None, iou)], tgt, LossWeights(iou_score=2.0))
    assert "iou" not in without and float(with_head["iou"]) == pytest.approx(0.25)  # (sigmoid(0) - 1)^2
    assert float(with_head["loss"] - without["loss"]) == pytest.approx(2.0 * 0.25, rel=1e-6)


def test_iou_head_term_is_zero_without_matched_queries():
    from gcseg.models.loss import scene_loss

    head = torch.zeros(2, requires_grad=True)
    empty = SceneTarget(torch.full((4,), -1), seed=0)
    terms = scene_loss(torch.zeros(2, 2), torch.zeros(2, 4), empty, torch.arange(4), LossWeights(), None, head)
    assert float(terms["iou"].detach()) == 0.0
    terms["iou"].backward()  # still part of the graph
    assert torch.equal(head.grad, torch.zeros(2))


def test_confidence_objectness_targets_quality_positives_at_their_labels_confidence():
    """objectness confidence: the queries quality calls objects (mask IoU >= 0.5 with their target) learn their
    label's confidence as a soft target, the others no-object, weighted and normalised as the hard cross-entropy;
    mask terms unchanged; with every confidence 1 it is quality's loss; without confidences it is an error."""
    from gcseg.models.loss import scene_loss

    labels = torch.tensor([0, 0, 0, 0, -1, 1, 1, 1, 1])
    good0, good1 = [9.0] * 4 + [-9.0] * 5, [-9.0] * 5 + [9.0] * 4
    poor = [9.0] + [-9.0] * 8  # one of target 0's four elements: IoU 1/4
    masks = torch.tensor([good0, poor, good1])
    seeds = torch.tensor([0, 1, 5])
    logits = torch.tensor([[3.0, -3.0], [1.0, 0.0], [2.0, -1.0]])
    pts = torch.arange(9)
    w = dict(matcher="seeded", seeded_topk=0)
    conf = SceneTarget(labels, seed=0, confidence=torch.tensor([0.8, 0.3]))
    soft = scene_loss(logits, masks, conf, pts, LossWeights(**w, objectness="confidence"), seeds)
    quality = scene_loss(logits, masks, SceneTarget(labels, seed=0), pts, LossWeights(**w, objectness="quality"),
                         seeds)
    assert torch.equal(soft["bce"], quality["bce"]) and torch.equal(soft["dice"], quality["dice"])
    logp = logits.log_softmax(-1)
    p = torch.tensor([0.8, 0.0, 0.3])  # object targets: query 1's mask is poor, no object
    num = -(p * logp[:, 0] + 0.1 * (1 - p) * logp[:, 1]).sum()
    assert float(soft["ce"]) == pytest.approx(float(num / (p + 0.1 * (1 - p)).sum()), rel=1e-6)
    ones = SceneTarget(labels, seed=0, confidence=torch.ones(2))
    same = scene_loss(logits, masks, ones, pts, LossWeights(**w, objectness="confidence"), seeds)
    assert float(same["ce"]) == pytest.approx(float(quality["ce"]), rel=1e-6)
    with pytest.raises(ValueError, match="confidence"):
        scene_loss(logits, masks, SceneTarget(labels, seed=0), pts, LossWeights(**w, objectness="confidence"), seeds)
