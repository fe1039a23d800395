"""MaskModel build, checkpoint format and rejection, inference API contract."""

import numpy as np
import pytest
import torch

from gcseg.errors import ArtifactError, InputError
from gcseg.models.inference import masks_and_scores, predict_points, voxel_input
from gcseg.models.mask_model import ModelConfig, build_model, load_model, save_checkpoint
from gcseg.train.toy import box_scene, tiny_model_config


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = tiny_model_config(hidden_dim=16, num_queries=6, ffn_dim=32, planes=(8, 8, 16, 16, 16, 16, 8, 8))
    return cfg, build_model(cfg)


def test_checkpoint_roundtrip_and_deterministic_bytes(tiny, tmp_path):
    cfg, model = tiny
    save_checkpoint(tmp_path / "a.pt", model, cfg, epoch=3)
    save_checkpoint(tmp_path / "b.pt", model, cfg, epoch=3)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    loaded, ck = load_model(tmp_path / "a.pt", expected_cfg=cfg)
    assert ck["epoch"] == 3 and ck["schema_version"] == 1 and ck["config"] == cfg.checkpoint_dict()
    assert "iou_head" not in ck["config"]  # added later: left out at its off value (the default's bytes)
    assert type(cfg).model_validate(ck["config"]) == cfg
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])


def test_checkpoint_of_another_architecture_is_rejected(tiny, tmp_path):
    cfg, model = tiny
    save_checkpoint(tmp_path / "m.pt", model, cfg, epoch=0)
    other = cfg.model_copy(update={"num_queries": 7, "hidden_dim": 32})
    with pytest.raises(ArtifactError, match="hidden_dim: checkpoint 16 != expected 32") as ei:
        load_model(tmp_path / "m.pt", expected_cfg=other)
    assert "num_queries" in str(ei.value)
    # runtime fields may differ
    model2, _ = load_model(tmp_path / "m.pt", expected_cfg=cfg.model_copy(update={"max_attn_voxels": 50}))
    assert model2.cfg.max_attn_voxels == 50


def test_foreign_or_missing_checkpoint_is_an_artifact_error(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ArtifactError, match="not a readable torch checkpoint"):
        load_model(tmp_path / "x.pt")
    torch.save({"foo": 1}, tmp_path / "y.pt")
    with pytest.raises(ArtifactError, match="not a gcseg model checkpoint"):
        load_model(tmp_path / "y.pt")
    with pytest.raises(ArtifactError, match="not found"):
        load_model(tmp_path / "nothing.pt")


class _RunsCode:
    """A pickle that calls a function when unpickled (what a hostile .pt file can do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_touch, (str(self.marker),))


def _touch(path):
    open(path, "w").close()


def test_a_checkpoint_that_would_run_code_is_refused_unread(tiny, tmp_path):
    cfg, model = tiny
    save_checkpoint(tmp_path / "ok.pt", model, cfg, epoch=1)
    ckpt = torch.load(tmp_path / "ok.pt", weights_only=True)
    ckpt["payload"] = _RunsCode(tmp_path / "ran")
    torch.save(ckpt, tmp_path / "hostile.pt")
    with pytest.raises(ArtifactError, match="not a readable torch checkpoint"):
        load_model(tmp_path / "hostile.pt")
    assert not (tmp_path / "ran").exists()


def test_predict_points_contract(tiny):
    _, model = tiny
    s = box_scene(np.random.default_rng(0), n_boxes=3, points_per_box=150, floor_points=200)
    masks, scores = predict_points(model, s["coord"], s["color"])
    assert masks.dtype == bool and masks.shape[1] == len(s["coord"])
    assert scores.dtype == np.float32 and scores.shape == (len(masks),)
    assert np.all(np.diff(scores) <= 0) and np.all(masks.sum(1) >= 1)
    m2, s2 = predict_points(model, s["coord"], s["color"])
    assert np.array_equal(masks, m2) and np.array_equal(scores, s2)


def test_mask_scores_mask3d_and_stability():
    obj = torch.log(torch.tensor([[3.0, 1.0], [1.0, 1.0]]))  # objectness 0.75 and 0.5
    # query 0: a sharp mask (logits +-4); query 1: its extent hangs on logits near 0
    logits = torch.tensor([[4.0, 4.0, -4.0, -4.0], [0.5, 2.0, -0.5, 0.2]])
    binary, s = masks_and_scores(obj, logits)
    assert binary.tolist() == [[True, True, False, False], [True, True, False, True]]
    assert s[0] == pytest.approx(0.75 * torch.sigmoid(torch.tensor(4.0)).item())
    assert s[1] == pytest.approx(0.5 * torch.sigmoid(torch.tensor([0.5, 2.0, 0.2])).mean().item())
    _, st = masks_and_scores(obj, logits, score="stability")
    assert st.tolist() == pytest.approx([0.75, 0.5 * 1 / 4])  # |logit > 1| / |logit > -1|
    # point-weighted: the element above +1 holds 10 points, the others 1
    _, sw = masks_and_scores(obj, logits, score="stability", weight=torch.tensor([1.0, 10.0, 1.0, 1.0]))
    assert sw[1].item() == pytest.approx(0.5 * 10 / 13)
    # mask3d over superpoints: the mean sigmoid over the mask's points, each superpoint counted by its points
    _, mw = masks_and_scores(obj, logits, weight=torch.tensor([1.0, 10.0, 1.0, 1.0]))
    sig = torch.sigmoid(torch.tensor([0.5, 2.0, 0.2]))
    assert mw[1].item() == pytest.approx(0.5 * float(sig[0] + 10 * sig[1] + sig[2]) / 12)
    with pytest.raises(ValueError, match="unknown mask score"):
        masks_and_scores(obj, logits, score="iou")
    # with the IoU head's logit as a third column its sigmoid multiplies the confidence
    _, si = masks_and_scores(torch.cat([obj, torch.tensor([[0.0], [2.0]])], 1), logits, score="stability")
    assert si.tolist() == pytest.approx([0.75 * 0.5, 0.5 / 4 * torch.sigmoid(torch.tensor(2.0)).item()])


def test_iou_head_predicts_per_query_and_round_trips(tmp_path):
    torch.manual_seed(0)
    base = dict(hidden_dim=16, num_queries=6, ffn_dim=32, planes=(8, 8, 16, 16, 16, 16, 8, 8))
    plain = build_model(tiny_model_config(**base))
    torch.manual_seed(0)
    cfg = tiny_model_config(**base, iou_head=True)
    model = build_model(cfg)
    # the head is created last: every other weight is drawn as without it
    sd = model.state_dict()
    assert all(torch.equal(v, sd[k]) for k, v in plain.state_dict().items())
    assert {k for k in sd if k not in plain.state_dict()} and all(k.startswith("decoder.iou_embed") for k in sd
                                                                  if k not in plain.state_dict())
    s = box_scene(np.random.default_rng(0))
    coords, feats, _ = voxel_input(model, s["coord"], s["color"])
    model.eval()
    with torch.no_grad():
        preds = model(coords, feats, seeds=[0])
    assert all(p.iou is not None and p.iou.shape == p.logits.shape[:2] for p in preds)
    save_checkpoint(tmp_path / "h.pt", model, cfg, epoch=1)
    loaded, ck = load_model(tmp_path / "h.pt", expected_cfg=cfg)
    assert ck["config"]["iou_head"] is True and loaded.cfg.iou_head
    with pytest.raises(ArtifactError, match="iou_head"):
        load_model(tmp_path / "h.pt", expected_cfg=tiny_model_config(**base))


def test_predict_points_stability_score_contract(tiny):
    cfg, model = tiny
    s = box_scene(np.random.default_rng(0), n_boxes=3, points_per_box=150, floor_points=200)
    m3d, s3d = predict_points(model, s["coord"], s["color"])
    model.cfg = cfg.model_copy(update={"score": "stability"})
    try:
        m, sc = predict_points(model, s["coord"], s["color"])
    finally:
        model.cfg = cfg
    assert np.all(np.diff(sc) <= 0) and np.all((sc >= 0) & (sc <= 1))
    # the score only reorders the same masks (no NMS here)
    assert sorted(map(bytes, np.packbits(m, axis=1))) == sorted(map(bytes, np.packbits(m3d, axis=1)))


def test_predict_points_rejects_empty_and_bad_clouds(tiny):
    _, model = tiny
    with pytest.raises(InputError, match="empty point cloud"):
        predict_points(model, np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8))
    with pytest.raises(InputError, match="expected coord"):
        predict_points(model, np.zeros((5, 2), np.float32), np.zeros((5, 3), np.uint8))
    bad = np.zeros((4, 3), np.float32)
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        predict_points(model, bad, np.zeros((4, 3), np.uint8))


def test_model_config_validation():
    with pytest.raises(ValueError):
        ModelConfig(in_channels=4)
    with pytest.raises(ValueError):
        ModelConfig(hidden_dim=30, num_heads=4)
    with pytest.raises(ValueError):
        ModelConfig(nonsense=1)


def test_xyz_input_channels():
    torch.manual_seed(0)
    cfg = tiny_model_config(in_channels=6, hidden_dim=16, num_queries=4, ffn_dim=16, planes=(8,) * 8)
    model = build_model(cfg)
    s = box_scene(np.random.default_rng(1), n_boxes=2, points_per_box=100, floor_points=50)
    masks, scores = predict_points(model, s["coord"], s["color"])
    assert masks.shape[1] == len(s["coord"])


def test_minkowski_and_torch_backends_agree_on_the_same_weights(tiny):
    pytest.importorskip("MinkowskiEngine")
    cfg, model = tiny
    mink = build_model(cfg.model_copy(update={"backend": "minkowski"}))
    mink.load_state_dict(model.state_dict())
    s = box_scene(np.random.default_rng(2), n_boxes=3, points_per_box=150, floor_points=200)
    from gcseg.models.inference import voxel_input

    model.eval()
    mink.eval()
    coords, feats, _ = voxel_input(model, s["coord"], s["color"])
    with torch.no_grad():
        a = model(coords, feats, seeds=[0])[-1]
        b = mink(coords, feats, seeds=[0])[-1]
    torch.testing.assert_close(a.logits, b.logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(a.masks[0], b.masks[0], atol=1e-3, rtol=1e-3)
