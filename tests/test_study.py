"""gcseg.study: mean and spread per ablation row over seeds, and the ordering check."""

import pytest

from gcseg.study import check_settings, main, markdown, paired, summarize, variant_suffix
from gcseg.sweep import SweepPoint


def _point(seed, s1, s2, s3, lift, status="success"):
    rows = {r: {"AP": v, "AP50": v * 2, "AP25": None} for r, v in
            (("stage1", s1), ("stage2", s2), ("stage3", s3), ("lift_only", lift))}
    return SweepPoint(value=seed, name=f"seed-{seed}", status=status, rows=rows)


def test_summary_mean_spread_and_ordering():
    pts = [_point(0, 0.1, 0.2, 0.3, 0.25), _point(1, 0.1, 0.3, 0.2, 0.1), _point(2, 0.3, 0.4, 0.5, 0.2),
           _point(3, 0, 0, 0, 0, status="failed")]
    s = summarize(pts)
    assert s["seeds"] == [0, 1, 2] and s["failed"] == ["seed-3"]
    ap1 = s["rows"]["stage1"]["AP"]
    assert abs(ap1["mean"] - 0.5 / 3) < 1e-12 and abs(ap1["std"] - 0.11547005) < 1e-6
    assert ap1["min"] == 0.1 and ap1["max"] == 0.3
    assert "AP25" not in s["rows"]["stage1"]  # no values: no statistics
    assert s["ordering_holds"] == {"0": True, "1": False, "2": True}
    assert s["paper_order_holds"] == {"0": True, "1": False, "2": True}
    assert s["refines_labels"] == {"0": True, "1": True, "2": True}
    md = markdown(s)
    assert "| Stage 1 | 16.7 ± 11.5 | 33.3 ± 23.1 | n/a |" in md and "2 of 3 seed(s)" in md and "seed-3" in md
    assert "Stage 1 + 2 + 3 on 2 of 3, Stage 1 + 2 + 3 >= lift-only on 3 of 3" in md
    assert "| 1 | 10.0 | 30.0 | 20.0 | 10.0 |" in md  # per seed: Stage 1, 1 + 2, 1 + 2 + 3, lift-only AP


def test_own_label_rows_are_summarized_with_their_check():
    pts = [_point(0, 0.1, 0.2, 0.3, 0.25), _point(1, 0.1, 0.3, 0.2, 0.1)]
    for p, (lab, s2, s3) in zip(pts, ((0.2, 0.25, 0.3), (0.3, 0.35, 0.25))):
        p.rows.update({"own_lift_only": {"AP": lab, "AP50": None, "AP25": None},
                       "own_stage2": {"AP": s2, "AP50": None, "AP25": None},
                       "own_stage3": {"AP": s3, "AP50": None, "AP25": None}})
    s = summarize(pts)
    assert s["refines_own_labels"] == {"0": True, "1": False}
    assert abs(s["rows"]["own_stage3"]["AP"]["mean"] - 0.275) < 1e-12
    md = markdown(s)
    assert "| Their training labels (tracked, lifted) | 25.0 ± 7.1 | n/a | n/a | 20.0 / 30.0 |" in md
    assert "its own training labels (AP, train scenes) on 1 of 2 seed(s)" in md
    # a seed without the own-label rows: the others' values keep their seeds
    del pts[0].rows["own_stage3"]
    s = summarize(pts)
    assert s["rows"]["own_stage3"]["AP"]["seeds"] == [1]
    assert "| 25.0 ± 0.0 | n/a | n/a | seed 1: 25.0 |" in markdown(s)


def test_perfect_ranking_rows_show_what_the_order_costs_per_seed():
    pts = [_point(0, 0.1, 0.2, 0.3, 0.25), _point(1, 0.1, 0.3, 0.2, 0.1)]
    for p, best in zip(pts, (0.5, 0.4)):
        p.rows["perfect_stage3"] = {"AP": best, "AP50": best + 0.1, "AP25": None}
    s = summarize(pts)
    assert s["rows"]["perfect_stage3"]["AP"]["values"] == [0.5, 0.4]
    md = markdown(s)
    assert "| Stage 1 + 2 + 3 | 25.0 ± 7.1 | 45.0 ± 7.1 | -20.0 (seed 0), -20.0 (seed 1) | 55.0 ± 7.1 |" in md
    # a variant paired with the plain study: the perfect order's change per seed says whether masks or order moved
    var = summarize([_point(0, 0.1, 0.2, 0.35, 0.25), _point(1, 0.1, 0.3, 0.25, 0.1)])
    for p, best in zip(pts, (0.55, 0.4)):
        p.rows["perfect_stage3"]["AP"] = best
    var["rows"]["perfect_stage3"] = summarize(pts)["rows"]["perfect_stage3"]
    var["paired"] = paired(var, s)
    var["settings"] = ["a.b=1"]
    assert "| Stage 1 + 2 + 3, perfect order | +5.0 (seed 0), +0.0 (seed 1) | +2.5 | 1 of 2 |" in markdown(var)


def test_no_finished_seed_gives_an_empty_summary_not_a_crash():
    """--collect-only on a commit with no experiments (they stay under the commit they were queued on)."""
    s = summarize([SweepPoint(0, "seed-0", "missing", {})])
    assert s["seeds"] == [] and s["failed"] == ["seed-0"] and s["rows"] == {}
    md = markdown(s)
    assert "held for 0 of 0 seed(s)" in md and "Failed or missing experiments: seed-0." in md


def test_variant_names_and_settings():
    assert variant_suffix([]) == ""
    a = variant_suffix(["stage2_train.lr=0.002", "tau_iou=0.6"])
    assert a == variant_suffix(["tau_iou=0.6", "stage2_train.lr=0.002"]) and a.startswith("-v") and len(a) == 10
    assert a != variant_suffix(["tau_iou=0.6"])
    assert check_settings([" tau_iou=0.6 "]) == ["tau_iou=0.6"]
    for bad in ("tau_iou", "=0.6", "tau_iou=", "stage2 train.lr=1"):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            check_settings([bad])
    with pytest.raises(ValueError, match="--seeds"):
        check_settings(["seed=3"])


def test_bad_setting_exits_2_before_running_anything(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--collect-only", "--set", "tau_iou"])
    assert exc.value.code == 2 and "KEY=VALUE" in capsys.readouterr().err


def test_variant_is_paired_seed_by_seed_with_the_plain_study():
    base = summarize([_point(0, 0.1, 0.2, 0.3, 0.25), _point(1, 0.1, 0.3, 0.2, 0.1), _point(2, 0.3, 0.4, 0.5, 0.2)])
    var = summarize([_point(0, 0.1, 0.25, 0.28, 0.25), _point(2, 0.3, 0.43, 0.55, 0.2)])  # seed 1 failed
    p = paired(var, base)
    s2 = p["stage2"]["AP"]
    assert s2["seeds"] == [0, 2] and s2["higher"] == 2 and s2["n"] == 2
    assert s2["changes"] == pytest.approx([0.05, 0.03]) and s2["mean"] == pytest.approx(0.04)
    assert p["stage3"]["AP"]["higher"] == 1 and p["stage3"]["AP"]["changes"] == pytest.approx([-0.02, 0.05])
    var["settings"], var["paired"] = ["stage2_train.lr=0.002"], p
    text = markdown(var)
    assert text.startswith("Settings: `stage2_train.lr=0.002`")
    assert "| Stage 1 + 2 | +5.0 (seed 0), +3.0 (seed 2) | +4.0 | 2 of 2 |" in text
    assert "| Stage 1 | the same on every seed | 0 | - |" in text  # upstream of the setting: the same outputs
