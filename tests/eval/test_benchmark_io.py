"""ScanNet benchmark files: round trips, determinism and one clear error per bad input."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.errors import InputError
from gcseg.eval.benchmark_io import (list_scenes, read_gt, read_ignore, read_mask, read_predictions, write_gt,
                                     write_predictions)


def test_gt_round_trip_and_bytes(tmp_path):
    ids = np.array([0, 1001, 1001, 39002, 7], dtype=np.int64)
    write_gt(tmp_path / "a.txt", ids)
    assert (tmp_path / "a.txt").read_bytes() == b"0\n1001\n1001\n39002\n7\n"
    assert np.array_equal(read_gt(tmp_path / "a.txt"), ids)
    assert list_scenes(tmp_path) == ["a"]


def test_gt_errors(tmp_path):
    with pytest.raises(InputError, match="GT file not found"):
        read_gt(tmp_path / "missing.txt")
    (tmp_path / "bad.txt").write_text("1001\nchair\n")
    with pytest.raises(InputError, match="bad.txt.*one integer per line"):
        read_gt(tmp_path / "bad.txt")
    with pytest.raises(InputError):
        write_gt(tmp_path / "neg.txt", np.array([-1]))


def test_predictions_round_trip_and_format(tmp_path):
    rng = np.random.default_rng(0)
    masks = rng.random((3, 50)) < 0.4
    scores = np.array([0.9, 0.123456789, 1.0])
    scene_file = write_predictions(tmp_path, "scene0000_00", masks, scores)
    lines = scene_file.read_text().splitlines()
    assert lines == ["predicted_masks/scene0000_00_000.txt 1 0.900000",
                     "predicted_masks/scene0000_00_001.txt 1 0.123457",
                     "predicted_masks/scene0000_00_002.txt 1 1.000000"]
    mask_bytes = (tmp_path / "predicted_masks" / "scene0000_00_001.txt").read_bytes()
    assert mask_bytes == b"".join(b"1\n" if v else b"0\n" for v in masks[1])
    read_masks, read_scores = read_predictions(tmp_path, "scene0000_00", 50)
    assert np.array_equal(read_masks.toarray(), masks)
    assert np.allclose(read_scores, np.round(scores, 6))
    assert list_scenes(tmp_path) == ["scene0000_00"]


def test_predictions_are_deterministic_and_stale_masks_go(tmp_path):
    masks = np.eye(4, 20, dtype=bool)
    write_predictions(tmp_path / "a", "s", masks, [0.1, 0.2, 0.3, 0.4])
    write_predictions(tmp_path / "b", "s", masks, [0.1, 0.2, 0.3, 0.4])
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    write_predictions(tmp_path / "a", "s", masks[:1], [0.5])
    assert sorted(p.name for p in (tmp_path / "a" / "predicted_masks").iterdir()) == ["s_000.txt"]
    m, c = read_predictions(tmp_path / "a", "s", 20)
    assert m.shape == (1, 20) and c.tolist() == [0.5]


def test_empty_prediction_file_is_zero_masks(tmp_path):
    write_predictions(tmp_path, "s", np.zeros((0, 10), bool), [])
    m, c = read_predictions(tmp_path, "s", 10)
    assert m.shape == (0, 10) and c.shape == (0,)


def _scene(tmp_path, line: str, mask: bytes | None = b"1\n0\n1\n"):
    (tmp_path / "predicted_masks").mkdir(exist_ok=True)
    if mask is not None:
        (tmp_path / "predicted_masks" / "s_000.txt").write_bytes(mask)
    (tmp_path / "s.txt").write_text(line + "\n")


@pytest.mark.parametrize("line, mask, message", [
    ("predicted_masks/s_000.txt 1 0.5", b"1\n0\n", r"s_000.txt: mask has 2 values but the mesh has 3 vertices"),
    ("predicted_masks/s_000.txt 1 0.5", b"1\n0\n1\n0\n", r"mask has 4 values"),
    ("predicted_masks/s_001.txt 1 0.5", None, r"s_001.txt: mask file not found"),
    ("predicted_masks/s_000.txt 1 nan", b"1\n0\n1\n", r"s.txt: line 1: confidence is nan"),
    ("predicted_masks/s_000.txt 1 inf", b"1\n0\n1\n", r"confidence is inf"),
    ("predicted_masks/s_000.txt 1 0.5", b"1\n2\n1\n", r"s_000.txt: mask value 2 on line 2"),
    ("predicted_masks/s_000.txt 1 0.5", b"1\n-1\n1\n", r"mask value -1"),
    ("predicted_masks/s_000.txt 1 0.5", b"1\nx\n1\n", r"one integer per line"),
    ("predicted_masks/s_000.txt 0.5", b"1\n0\n1\n", r"expected '<mask path> <label id> <confidence>'"),
    ("/abs/predicted_masks/s_000.txt 1 0.5", b"1\n0\n1\n", r"must be relative"),
    ("../outside.txt 1 0.5", b"1\n0\n1\n", r"outside the prediction folder"),
    ("predicted_masks/s_000.txt 1 high", b"1\n0\n1\n", r"not numeric"),
    ("predicted_masks/s_000.txt inf 0.5", b"1\n0\n1\n", r"not numeric"),  # int(inf): OverflowError
])
def test_prediction_errors_name_the_file(tmp_path, line, mask, message):
    pred = tmp_path / "pred"
    pred.mkdir()
    (tmp_path / "outside.txt").write_text("1\n0\n1\n")
    _scene(pred, line, mask)
    with pytest.raises(InputError, match=message):
        read_predictions(pred, "s", 3)


def test_duplicate_mask_and_missing_scene(tmp_path):
    _scene(tmp_path, "predicted_masks/s_000.txt 1 0.5\npredicted_masks/s_000.txt 1 0.4")
    with pytest.raises(InputError, match="listed twice"):
        read_predictions(tmp_path, "s", 3)
    with pytest.raises(InputError, match="no prediction file for scene other"):
        read_predictions(tmp_path, "other", 3)


def test_write_rejects_bad_confidence_and_shapes(tmp_path):
    with pytest.raises(InputError, match="confidence of mask 1 is nan"):
        write_predictions(tmp_path, "s", np.ones((2, 5), bool), [0.5, float("nan")])
    with pytest.raises(InputError, match="do not match"):
        write_predictions(tmp_path, "s", np.ones((2, 5), bool), [0.5])
    with pytest.raises(InputError, match="without spaces"):
        write_predictions(tmp_path, "a b", np.ones((1, 5), bool), [0.5])
    assert not (tmp_path / "s.txt").exists()


def test_mask_with_crlf_and_no_trailing_newline(tmp_path):
    (tmp_path / "m.txt").write_bytes(b"1\r\n0\r\n1")
    assert read_mask(tmp_path / "m.txt", 3).tolist() == [True, False, True]


def test_ignore_file(tmp_path):
    (tmp_path / "s.txt").write_text("0\n3\n")
    assert read_ignore(tmp_path / "s.txt", 5).tolist() == [False, True, True, False, True]
    with pytest.raises(InputError, match="out of range"):
        read_ignore(tmp_path / "s.txt", 3)


def test_remove_stale_masks_only_touches_that_scenes_numbered_masks(tmp_path):
    from gcseg.eval.benchmark_io import remove_stale_masks

    write_predictions(tmp_path, "a", np.eye(3, 10, dtype=bool), [0.3, 0.2, 0.1])
    write_predictions(tmp_path, "a_b", np.eye(2, 10, dtype=bool), [0.3, 0.2])  # a_b_000.txt also matches a_*.txt
    (tmp_path / "predicted_masks" / "a_notes.txt").write_text("mine")
    remove_stale_masks(tmp_path, "a", {"a_000.txt"})
    assert sorted(p.name for p in (tmp_path / "predicted_masks").iterdir()) == [
        "a_000.txt", "a_b_000.txt", "a_b_001.txt", "a_notes.txt"]


def test_a_rewrite_drops_the_old_index_before_the_masks(tmp_path, monkeypatch):
    """Killed while rewriting the masks: the scene reads as missing, not as old confidences over new masks."""
    import gcseg.eval.benchmark_io as bio

    write_predictions(tmp_path, "s", np.array([[1, 0, 1], [0, 1, 0]], bool), [0.9, 0.1])
    calls = []

    def dying_write(path, data):
        calls.append(path)
        raise KeyboardInterrupt

    monkeypatch.setattr(bio, "write_bytes", dying_write)
    with pytest.raises(KeyboardInterrupt):
        write_predictions(tmp_path, "s", np.array([[0, 1, 1]], bool), [0.5])
    assert calls and not (tmp_path / "s.txt").exists()
    with pytest.raises(InputError):
        read_predictions(tmp_path, "s", 3)
