import numpy as np
import pytest

from gcseg.errors import ArtifactError
from gcseg.pseudolabel.full_scene import (pack_masks, pseudolabel_masks, read_scene_pseudolabel, unpack_masks,
                                          write_scene_pseudolabel)
from gcseg.scene import PointCloud


def _scene():
    """Three 6x6x6 blobs of 5 cm spacing, 2 m apart, and hand-made predictions over them."""
    g = np.stack(np.meshgrid(*[np.arange(6) * 0.05] * 3, indexing="ij"), -1).reshape(-1, 3)
    coord = np.concatenate([g, g + [2, 0, 0], g + [0, 2, 0]]).astype(np.float32)
    a, b, c = (np.arange(216) + 216 * i for i in range(3))
    masks = np.zeros((4, len(coord)), bool)
    masks[0, np.concatenate([a, b])] = True  # 0.9: two blobs -> split into two
    masks[1, c] = True  # 0.7
    masks[2, c[:150]] = True  # 0.65: under mask 1, loses everything -> no id
    masks[3, a] = True  # 0.3: below tau_conf
    scores = np.array([0.9, 0.7, 0.65, 0.3], np.float32)
    color = np.tile(np.array([[10, 20, 30]], np.uint8), (len(coord), 1))
    return PointCloud(coord=coord, color=color), masks, scores, (a, b, c)


def test_chain_selects_splits_and_resolves():
    cloud, masks, scores, (a, b, c) = _scene()
    labels, kept, kept_scores, summary = pseudolabel_masks(
        masks, scores, cloud.coord, top_k=150, tau_conf=0.6, dbscan_eps=0.08, dbscan_min_samples=1, min_points=100)
    assert kept.shape == (3, len(cloud))
    np.testing.assert_allclose(kept_scores, [0.9, 0.9, 0.7])
    assert (labels[a] == 0).all() and (labels[b] == 1).all() and (labels[c] == 2).all()
    for m in range(3):
        assert kept[m][labels == m].all()  # label m lies inside kept mask m
    assert summary["num_predicted"] == 4 and summary["num_selected"] == 3
    assert summary["num_after_split"] == 4 and summary["num_kept"] == 3
    assert summary["labelled_fraction"] == 1.0
    assert sum(summary["score_histogram"]["counts"]) == 3
    # without splitting the two-blob mask stays one instance
    labels2, kept2, _, _ = pseudolabel_masks(masks, scores, cloud.coord, top_k=150, tau_conf=0.6, dbscan_eps=None,
                                             dbscan_min_samples=1, min_points=100)
    assert kept2.shape[0] == 2 and (labels2[np.concatenate([a, b])] == 0).all()
    # a higher tau_conf keeps fewer instances
    labels3, kept3, _, _ = pseudolabel_masks(masks, scores, cloud.coord, top_k=150, tau_conf=0.8, dbscan_eps=0.08,
                                             dbscan_min_samples=1, min_points=100)
    assert kept3.shape[0] == 2 and (labels3[c] == -1).all()


def test_pack_roundtrip_odd_sizes():
    rng = np.random.default_rng(1)
    for shape in [(3, 13), (0, 9), (2, 16)]:
        m = rng.random(shape) < 0.5
        np.testing.assert_array_equal(unpack_masks(pack_masks(m)), m)


def test_write_read_is_deterministic(tmp_path):
    cloud, masks, scores, _ = _scene()
    labels, kept, kept_scores, summary = pseudolabel_masks(
        masks, scores, cloud.coord, top_k=150, tau_conf=0.6, dbscan_eps=0.08, dbscan_min_samples=1, min_points=100)
    p1, p2 = tmp_path / "a" / "s0.h5", tmp_path / "b" / "s0.h5"
    for p in (p1, p2):
        write_scene_pseudolabel(p, "s0", cloud, labels, kept, kept_scores, summary)
    assert p1.read_bytes() == p2.read_bytes()
    back = read_scene_pseudolabel(p1)
    assert back["scene_id"] == "s0"
    np.testing.assert_array_equal(back["instance"], labels)
    np.testing.assert_array_equal(back["masks"], kept)
    np.testing.assert_array_equal(back["scores"], kept_scores)
    assert back["summary"] == summary

    from gcseg.io.samples import read_point_samples  # the Stage 3 trainer reads it as ordinary samples

    [(name, sample)] = list(read_point_samples(p1))
    assert name == "scene" and sample["instance"].dtype == np.int32
    np.testing.assert_array_equal(sample["instance"], labels)
    np.testing.assert_array_equal(sample["score"], kept_scores)


def test_foreign_file_rejected(tmp_path):
    from gcseg.io.h5 import write_h5

    p = tmp_path / "x.h5"
    write_h5(p, {"a": np.zeros(3)}, schema="gcseg.sam_keyframes", version=1)
    with pytest.raises(ArtifactError):
        read_scene_pseudolabel(p)
