"""Test oracle: a line-by-line port of ScanNet's instance evaluator (Python 3), per-instance loops and all.

Ported from ScanNet/ScanNet@3830fce ``BenchmarkScripts/3d_evaluation/evaluate_semantic_instance.py``
(``assign_instances_for_scan``, ``evaluate_matches``, ``compute_averages``) and ``util_3d.get_instances``,
with one class ("object") holding every GT label in the set, in-memory inputs instead of files, and the
ScanNet++ vertex ignore mask (scannetpp@f3b4712 ``eval_instance.py``: ignored vertices are removed first).
Kept deliberately naive so that it is easy to compare with the script by eye; it is slow on purpose.

Only change of behaviour: where the script would raise IndexError (GT and predictions exist but no example
is left after ignoring), AP is 0.0 (marked below), as in gcseg.eval.ap.
"""

from __future__ import annotations

from copy import deepcopy

import numpy as np

OVERLAPS = np.append(np.arange(0.5, 0.95, 0.05), 0.25)
LABEL = "object"


def _get_instances(ids, class_ids):
    instances = {LABEL: []}
    for inst_id in np.unique(ids):
        if inst_id == 0:
            continue
        label_id = int(inst_id // 1000)
        if class_ids(label_id):
            instances[LABEL].append({
                "instance_id": int(inst_id), "label_id": label_id,
                "vert_count": int((ids == inst_id).sum()), "med_dist": -1, "dist_conf": 0.0,
            })
    return instances


def assign_instances_for_scan(scene_id, gt_ids, valid, pred_masks, pred_scores, class_ids, min_region_size):
    gt_ids = np.asarray(gt_ids, dtype=np.int64)
    if valid is not None:
        keep_vtx = np.asarray(valid, dtype=bool)
        gt_ids = gt_ids[keep_vtx]
    gt_instances = _get_instances(gt_ids, class_ids)
    gt2pred = deepcopy(gt_instances)
    for gt in gt2pred[LABEL]:
        gt["matched_pred"] = []
    pred2gt = {LABEL: []}
    num_pred_instances = 0
    labels = gt_ids // 1000
    bool_void = np.logical_not(np.array([class_ids(int(x)) for x in labels], dtype=bool))
    for i in range(len(pred_scores)):
        pred_mask_file = f"{scene_id}/{i}"
        conf = float(pred_scores[i])
        pred_mask = np.asarray(pred_masks[i])
        if valid is not None:
            pred_mask = pred_mask[keep_vtx]
        assert len(pred_mask) == len(gt_ids)
        pred_mask = np.not_equal(pred_mask, 0)
        num = np.count_nonzero(pred_mask)
        if num < min_region_size:
            continue
        pred_instance = {
            "filename": pred_mask_file, "pred_id": num_pred_instances, "label_id": 1, "vert_count": num,
            "confidence": conf, "void_intersection": np.count_nonzero(np.logical_and(bool_void, pred_mask)),
        }
        matched_gt = []
        for gt_num, gt_inst in enumerate(gt2pred[LABEL]):
            intersection = np.count_nonzero(np.logical_and(gt_ids == gt_inst["instance_id"], pred_mask))
            if intersection > 0:
                gt_copy = gt_inst.copy()
                pred_copy = pred_instance.copy()
                gt_copy["intersection"] = intersection
                pred_copy["intersection"] = intersection
                matched_gt.append(gt_copy)
                gt2pred[LABEL][gt_num]["matched_pred"].append(pred_copy)
        pred_instance["matched_gt"] = matched_gt
        num_pred_instances += 1
        pred2gt[LABEL].append(pred_instance)
    return gt2pred, pred2gt


def evaluate_matches(matches, min_region_size):
    distance_thresh, distance_conf = float("inf"), -float("inf")
    ap = np.zeros(len(OVERLAPS))
    for oi, overlap_th in enumerate(OVERLAPS):
        pred_visited = {}
        for m in matches:
            for p in matches[m]["pred"][LABEL]:
                pred_visited[p["filename"]] = False
        y_true = np.empty(0)
        y_score = np.empty(0)
        hard_false_negatives = 0
        has_gt = False
        has_pred = False
        for m in matches:
            pred_instances = matches[m]["pred"][LABEL]
            gt_instances = matches[m]["gt"][LABEL]
            gt_instances = [gt for gt in gt_instances if gt["instance_id"] >= 1000
                            and gt["vert_count"] >= min_region_size and gt["med_dist"] <= distance_thresh
                            and gt["dist_conf"] >= distance_conf]
            if gt_instances:
                has_gt = True
            if pred_instances:
                has_pred = True
            cur_true = np.ones(len(gt_instances))
            cur_score = np.ones(len(gt_instances)) * (-float("inf"))
            cur_match = np.zeros(len(gt_instances), dtype=bool)
            for gti, gt in enumerate(gt_instances):
                found_match = False
                for pred in gt["matched_pred"]:
                    if pred_visited[pred["filename"]]:
                        continue
                    overlap = float(pred["intersection"]) / (
                        gt["vert_count"] + pred["vert_count"] - pred["intersection"])
                    if overlap > overlap_th:
                        confidence = pred["confidence"]
                        if cur_match[gti]:
                            max_score = max(cur_score[gti], confidence)
                            min_score = min(cur_score[gti], confidence)
                            cur_score[gti] = max_score
                            cur_true = np.append(cur_true, 0)
                            cur_score = np.append(cur_score, min_score)
                            cur_match = np.append(cur_match, True)
                        else:
                            found_match = True
                            cur_match[gti] = True
                            cur_score[gti] = confidence
                            pred_visited[pred["filename"]] = True
                if not found_match:
                    hard_false_negatives += 1
            cur_true = cur_true[cur_match]
            cur_score = cur_score[cur_match]
            for pred in pred_instances:
                found_gt = False
                for gt in pred["matched_gt"]:
                    overlap = float(gt["intersection"]) / (
                        gt["vert_count"] + pred["vert_count"] - gt["intersection"])
                    if overlap > overlap_th:
                        found_gt = True
                        break
                if not found_gt:
                    num_ignore = pred["void_intersection"]
                    for gt in pred["matched_gt"]:
                        if gt["instance_id"] < 1000:
                            num_ignore += gt["intersection"]
                        if (gt["vert_count"] < min_region_size or gt["med_dist"] > distance_thresh
                                or gt["dist_conf"] < distance_conf):
                            num_ignore += gt["intersection"]
                    proportion_ignore = float(num_ignore) / pred["vert_count"]
                    if proportion_ignore <= overlap_th:
                        cur_true = np.append(cur_true, 0)
                        cur_score = np.append(cur_score, pred["confidence"])
            y_true = np.append(y_true, cur_true)
            y_score = np.append(y_score, cur_score)

        if has_gt and has_pred and len(y_true) == 0:
            ap_current = 0.0  # the script raises IndexError here (see module docstring)
        elif has_gt and has_pred:
            score_arg_sort = np.argsort(y_score)
            y_score_sorted = y_score[score_arg_sort]
            y_true_sorted = y_true[score_arg_sort]
            y_true_sorted_cumsum = np.cumsum(y_true_sorted)
            (thresholds, unique_indices) = np.unique(y_score_sorted, return_index=True)
            num_prec_recall = len(unique_indices) + 1
            num_examples = len(y_score_sorted)
            num_true_examples = y_true_sorted_cumsum[-1]
            precision = np.zeros(num_prec_recall)
            recall = np.zeros(num_prec_recall)
            y_true_sorted_cumsum = np.append(y_true_sorted_cumsum, 0)
            for idx_res, idx_scores in enumerate(unique_indices):
                cumsum = y_true_sorted_cumsum[idx_scores - 1]
                tp = num_true_examples - cumsum
                fp = num_examples - idx_scores - tp
                fn = cumsum + hard_false_negatives
                p = float(tp) / (tp + fp)
                r = float(tp) / (tp + fn)
                precision[idx_res] = p
                recall[idx_res] = r
            precision[-1] = 1.0
            recall[-1] = 0.0
            recall_for_conv = np.copy(recall)
            recall_for_conv = np.append(recall_for_conv[0], recall_for_conv)
            recall_for_conv = np.append(recall_for_conv, 0.0)
            step_widths = np.convolve(recall_for_conv, [-0.5, 0, 0.5], "valid")
            ap_current = np.dot(precision, step_widths)
        elif has_gt:
            ap_current = 0.0
        else:
            ap_current = float("nan")
        ap[oi] = ap_current
    return ap


def compute_averages(aps):
    o50 = np.where(np.isclose(OVERLAPS, 0.5))
    o25 = np.where(np.isclose(OVERLAPS, 0.25))
    o_all_but_25 = np.where(np.logical_not(np.isclose(OVERLAPS, 0.25)))
    rng = aps[o_all_but_25]
    all_ap = float(np.nanmean(rng)) if (~np.isnan(rng)).any() else float("nan")
    return {"all_ap": all_ap, "all_ap_50%": float(np.nanmean(aps[o50])) if not np.isnan(aps[o50]).all()
            else float("nan"), "all_ap_25%": float(aps[o25][0]), "per_threshold": aps}


def evaluate(scenes, *, valid_labels=None, min_region_size=100, use_scores=True):
    """scenes: iterable of (scene_id, gt_ids, valid, pred_masks bool[K, N], pred_scores)."""
    if valid_labels is None:
        def class_ids(label):
            return label >= 1
    else:
        allowed = set(int(x) for x in valid_labels)

        def class_ids(label):
            return label in allowed
    matches = {}
    for scene_id, gt_ids, valid, masks, scores in scenes:
        scores = np.asarray(scores, dtype=np.float64)
        if not use_scores:
            scores = np.ones_like(scores)
        gt2pred, pred2gt = assign_instances_for_scan(scene_id, gt_ids, valid, masks, scores, class_ids,
                                                     min_region_size)
        matches[scene_id] = {"gt": gt2pred, "pred": pred2gt}
    return compute_averages(evaluate_matches(matches, min_region_size))
