"""Point-sample dataset: label filtering, clear errors, seeded augmentation, voxel targets, batches."""

import numpy as np
import pytest
import torch

from gcseg.errors import InputError
from gcseg.io.samples import write_point_samples
from gcseg.train.dataset import (AugmentConfig, PointSampleDataset, augment, list_sample_files, make_batch,
                                 mix_samples, voxel_labels)
from gcseg.train.toy import box_scene, write_box_samples


def _sample(inst):
    n = len(inst)
    return {"coord": np.random.default_rng(n).uniform(0, 1, (n, 3)).astype(np.float32),
            "color": np.full((n, 3), 100, np.uint8), "instance": np.asarray(inst, np.int32)}


def test_samples_without_labels_are_dropped(tmp_path):
    write_point_samples(tmp_path / "a.h5", {"000": _sample([-1] * 5), "001": _sample([3, 3, -1, 7])},
                        schema="gcseg.sam_keyframes", scene_id="a")
    ds = PointSampleDataset(list_sample_files(tmp_path), augment_cfg=None, seed=0)
    assert len(ds) == 1 and ds.dropped == 1
    assert ds.get(0, 0)["instance"].tolist() == [0, 0, -1, 1]  # contiguous ids, -1 kept


def test_scene_without_any_label_is_skipped_with_a_warning(tmp_path, capsys):
    write_point_samples(tmp_path / "bad.h5", {"000": _sample([-1] * 5)}, schema="gcseg.sam2_track",
                        scene_id="bad")
    write_point_samples(tmp_path / "good.h5", {"000": _sample([1, 1, 2, -1])}, schema="gcseg.sam2_track",
                        scene_id="good")
    ds = PointSampleDataset(list_sample_files(tmp_path), augment_cfg=None, seed=0)
    assert len(ds) == 1 and [p.name for p in ds.unlabelled_files] == ["bad.h5"]
    assert "bad.h5" in capsys.readouterr().err


def test_no_label_anywhere_is_a_clear_error(tmp_path):
    write_point_samples(tmp_path / "bad.h5", {"000": _sample([-1] * 5)}, schema="gcseg.sam2_track",
                        scene_id="bad")
    with pytest.raises(InputError, match="none of the 1 label file") as ei:
        PointSampleDataset(list_sample_files(tmp_path), augment_cfg=None, seed=0)
    assert str(tmp_path) in str(ei.value)


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(InputError, match="not found"):
        list_sample_files(tmp_path / "nope")
    with pytest.raises(InputError, match="no .h5"):
        list_sample_files(tmp_path)


def test_augmentation_is_seeded_per_sample_and_epoch(tmp_path):
    files = write_box_samples(tmp_path, scenes=1, samples_per_scene=2, seed=0, n_boxes=2, points_per_box=50,
                              floor_points=20)
    cfg = AugmentConfig(elastic=((0.2, 0.4),))
    ds = PointSampleDataset(files, augment_cfg=cfg, seed=5)
    a, b, c = ds.get(1, 3), ds.get(1, 3), ds.get(1, 4)
    assert np.array_equal(a["coord"], b["coord"]) and np.array_equal(a["color"], b["color"])
    assert not np.array_equal(a["coord"], c["coord"])
    assert np.array_equal(a["instance"], c["instance"])


def test_augment_keeps_shapes_and_scale_bounds():
    s = box_scene(np.random.default_rng(0), n_boxes=2, points_per_box=40, floor_points=10)
    rng = np.random.default_rng(0)
    coord, color = augment(s["coord"], s["color"], AugmentConfig(rotate_z=True, flip=True, scale=0.1), rng)
    c0 = s["coord"] - s["coord"].mean(0)
    r0, r1 = np.linalg.norm(c0, axis=1), np.linalg.norm(coord, axis=1)
    ratio = r1[r0 > 0.1] / r0[r0 > 0.1]
    assert np.allclose(ratio, ratio[0], atol=1e-4) and 0.9 - 1e-6 <= ratio[0] <= 1.1 + 1e-6
    assert color.dtype == np.uint8 and color.shape == s["color"].shape


def test_voxel_labels_majority_and_unlabelled():
    inverse = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    labels = torch.tensor([1, 1, 0, -1, -1, 0, 1])
    assert voxel_labels(inverse, labels, 4).tolist() == [1, -1, 0, -1]


def test_make_batch_stacks_scenes_with_batch_column():
    rng = np.random.default_rng(0)
    ss = []
    for _ in range(2):
        s = box_scene(rng, n_boxes=2, points_per_box=60, floor_points=30)
        s["instance"] = s["instance"].astype(np.int64)
        ss.append(s)
    b = make_batch(ss, [1, 2], voxel_size=0.05, in_channels=3)
    assert set(b.coords[:, 0].tolist()) == {0, 1}
    assert b.feats.shape == (len(b.coords), 3)
    assert [t.num_instances for t in b.targets] == [2, 2] and b.seeds == [1, 2]
    assert sum(len(t.labels) for t in b.targets) == len(b.coords)


def test_mix3d_overlays_two_samples_and_keeps_their_labels_and_superpoints_apart():
    a = {**_sample([0, 0, 1, -1]), "superpoint": np.array([0, 0, 1, 1])}
    b = {**_sample([-1, 0, 0]), "superpoint": np.array([0, 1, 1])}
    m = mix_samples(a, b)
    assert np.array_equal(m["coord"], np.concatenate([a["coord"], b["coord"]]))  # overlaid where they are
    assert m["instance"].tolist() == [0, 0, 1, -1, -1, 2, 2]
    assert m["superpoint"].tolist() == [0, 0, 1, 1, 2, 3, 3]
    with pytest.raises(ValueError, match="superpoints"):
        mix_samples(a, _sample([0, 1]))


def test_random_crop_keeps_a_box_around_a_labelled_point():
    from gcseg.train.dataset import random_crop

    rng = np.random.default_rng(0)
    coord = rng.uniform(0, 6, (2000, 3)).astype(np.float32)
    inst = np.where(coord[:, 0] > 5.0, 1, -1).astype(np.int64)  # only a strip at x > 5 is labelled
    color = np.zeros((2000, 3), np.uint8)
    c, col, i = random_crop(coord, color, inst, 2.0, np.random.default_rng(1))
    assert len(c) == len(col) == len(i) and 0 < len(c) < len(coord)
    assert (c[:, :2].max(0) - c[:, :2].min(0) <= 2.0 + 1e-6).all()
    assert (i >= 0).any()  # centred on a labelled point: the crop always supervises something
    same = random_crop(coord[:10] * 0.1, color[:10], inst[:10], 2.0, np.random.default_rng(1))
    assert len(same[0]) == 10  # smaller than the box: whole cloud


def test_draw_index_gives_repeated_visits_their_own_augmentation(tmp_path):
    files = write_box_samples(tmp_path, scenes=1, samples_per_scene=2, seed=0, n_boxes=2, points_per_box=50,
                              floor_points=20)
    ds = PointSampleDataset(files, augment_cfg=AugmentConfig(), seed=5)
    assert np.array_equal(ds.get(1, 3)["coord"], ds.get(1, 3, draw=1)["coord"])  # draw defaults to the index
    assert not np.array_equal(ds.get(1, 3)["coord"], ds.get(1, 3, draw=3)["coord"])


@pytest.mark.parametrize("crop_size, augment_cfg", [(None, None), (None, AugmentConfig(color_jitter=0.0)),
                                                     (0.3, AugmentConfig()), (0.3, None)])
def test_cached_samples_equal_fresh_reads_and_are_never_handed_out(tmp_path, crop_size, augment_cfg):
    files = write_box_samples(tmp_path, scenes=2, samples_per_scene=2, seed=1, n_boxes=3, points_per_box=60,
                              floor_points=40)
    kw = dict(augment_cfg=augment_cfg, seed=2, crop_size=crop_size)
    cached, fresh = PointSampleDataset(files, **kw), PointSampleDataset(files, cache_bytes=0, **kw)
    for epoch in range(2):
        for i in range(len(cached)):
            a, b = cached.get(i, epoch), fresh.get(i, epoch)
            assert a.keys() == b.keys()
            for k in a:
                assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
                raw = cached.raw(i)
                assert not any(np.shares_memory(a[k], r) for r in raw.values()), k
            for v in a.values():  # a caller changing what it got must not change the next visit
                v[...] = 0
    assert len(fresh._cache) == 0 and len(cached._cache) == len(cached)


def test_cache_evicts_least_recently_used_within_its_bytes(tmp_path):
    files = write_box_samples(tmp_path, scenes=3, samples_per_scene=1, seed=4, n_boxes=2, points_per_box=50,
                              floor_points=30)
    sizes = [sum(a.nbytes for a in PointSampleDataset(files, augment_cfg=None, seed=0, cache_bytes=0).raw(i)
                 .values()) for i in range(3)]
    ds = PointSampleDataset(files, augment_cfg=None, seed=0, cache_bytes=sizes[0] + sizes[1])
    for i in (0, 1, 0, 2):  # 0 is used again after 1: 1 is the least recently used when 2 comes in
        ds.raw(i)
        assert ds._cached == sum(n for _, n in ds._cache.values()) <= ds.cache_bytes
    assert list(ds._cache) == ([0, 2] if sizes[2] <= sizes[1] else [2])


def test_label_confidence_is_a_pseudo_labels_score_or_a_tracked_labels_lift_only_confidence(tmp_path):
    """label_confidence: each point carries its label's confidence through crops and compact ids (a pseudo-label's
    score per instance id; a tracked label's mean lower Wilson bound of its points' vote shares, as the lift-only
    row ranks it); the batch's targets hold it per instance; labels without one are an error naming the file."""
    from gcseg.errors import ArtifactError
    from gcseg.eval.ablation import lift_only_predictions
    from gcseg.lifting import wilson_lower

    pseudo = {**_sample([2, 2, -1, 0, 0, 0]), "score": np.array([0.9, 0.1, 0.6], np.float32)}
    write_point_samples(tmp_path / "p" / "a.h5", {"scene": pseudo}, schema="gcseg.full_scene_pseudolabel",
                        scene_id="a")
    ds = PointSampleDataset(list_sample_files(tmp_path / "p"), augment_cfg=None, seed=0, label_confidence=True)
    s = ds.get(0, 0)
    assert s["instance"].tolist() == [1, 1, -1, 0, 0, 0]
    np.testing.assert_allclose(s["confidence"], [0.6, 0.6, 0.0, 0.9, 0.9, 0.9])
    b = make_batch([s], [0], voxel_size=0.01, in_channels=3)
    np.testing.assert_allclose(b.targets[0].confidence.numpy(), [0.9, 0.6])

    share = np.array([1.0, 0.5, 0.0, 0.8, 0.6, 0.9], np.float32)
    votes = np.array([10, 4, 3, 5, 5, 9], np.int32)
    tracked = {**_sample([7, 7, -1, 3, 3, 3]), "share": share, "votes": votes}
    write_point_samples(tmp_path / "t" / "a.h5", {"scene": tracked}, schema="gcseg.sam2_track", scene_id="a")
    ds = PointSampleDataset(list_sample_files(tmp_path / "t"), augment_cfg=None, seed=0, label_confidence=True)
    conf = ds.get(0, 0)["confidence"]
    w = wilson_lower(share, votes)
    np.testing.assert_allclose(conf[[0, 3]], [w[:2].mean(), w[3:].mean()], rtol=1e-6)
    # the lift-only row's confidences of the same labels (ids shifted to >= 1 as lifted ids are), to the bit:
    # both come from gcseg.lifting.label_confidence
    lifted = lift_only_predictions(np.array([8, 8, 0, 4, 4, 4]), share, votes)
    assert sorted(lifted.scores.tolist()) == sorted({float(conf[0]), float(conf[3])})
    assert PointSampleDataset(list_sample_files(tmp_path / "t"), augment_cfg=None, seed=0).get(0, 0).get(
        "confidence") is None  # read only when asked for

    write_point_samples(tmp_path / "k" / "a.h5", {"000": _sample([0, 0, 1])}, schema="gcseg.sam_keyframes",
                        scene_id="a")
    with pytest.raises(ArtifactError, match="no confidence") as err:
        PointSampleDataset(list_sample_files(tmp_path / "k"), augment_cfg=None, seed=0, label_confidence=True).get(0, 0)
    assert "a.h5" in str(err.value)
