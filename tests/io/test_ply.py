"""PLY writer/reader: round trip, byte-identical rewrites, clear errors; instance colouring."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.colors import VOID_COLOR, instance_palette
from gcseg.errors import InputError
from gcseg.io.ply import read_ply, write_instance_ply, write_ply


def _cloud(n: int = 50):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)).astype(np.float32), rng.integers(0, 256, (n, 3), dtype=np.uint8)


def test_round_trip_and_binary_header(tmp_path):
    coord, color = _cloud()
    inst = np.arange(50) - 1
    write_ply(tmp_path / "a.ply", coord, color, label=np.ones(50, np.int64), instance=inst)
    head = (tmp_path / "a.ply").read_bytes()[:400].split(b"end_header")[0].decode()
    assert "format binary_little_endian 1.0" in head and "property int instance" in head
    assert head.index("instance") < head.index("label")  # sorted, whatever the keyword order
    d = read_ply(tmp_path / "a.ply")
    np.testing.assert_array_equal(d["coord"], coord)
    np.testing.assert_array_equal(d["color"], color)
    assert d["instance"].tolist() == inst.tolist() and d["label"].dtype == np.int32
    write_ply(tmp_path / "b.ply", coord)
    assert set(read_ply(tmp_path / "b.ply")) == {"coord"}


def test_rewrite_is_byte_identical(tmp_path):
    coord, color = _cloud()
    write_ply(tmp_path / "a.ply", coord, color, instance=np.arange(50))
    first = (tmp_path / "a.ply").read_bytes()
    write_ply(tmp_path / "a.ply", coord, color, instance=np.arange(50))
    assert (tmp_path / "a.ply").read_bytes() == first
    assert [p.name for p in tmp_path.iterdir()] == ["a.ply"]  # no temporaries left behind


def test_mesh_faces_and_errors(tmp_path):
    with pytest.raises(InputError, match="PLY file not found"):
        read_ply(tmp_path / "missing.ply")
    coord, color = _cloud()
    write_ply(tmp_path / "a.ply", coord, color)
    data = (tmp_path / "a.ply").read_bytes()
    (tmp_path / "cut.ply").write_bytes(data[:-100])  # truncated body
    with pytest.raises(InputError, match="not a readable PLY") as e:
        read_ply(tmp_path / "cut.ply")
    assert "cut.ply" in str(e.value) and e.value.fix
    (tmp_path / "junk.ply").write_bytes(b"\x00\x01 not a ply")
    with pytest.raises(InputError, match="not a readable PLY"):
        read_ply(tmp_path / "junk.ply")
    (tmp_path / "noxyz.ply").write_text("ply\nformat ascii 1.0\nelement vertex 1\nproperty float a\nend_header\n1\n")
    with pytest.raises(InputError, match="lacks x, y, z"):
        read_ply(tmp_path / "noxyz.ply")
    (tmp_path / "tri.ply").write_text(
        "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
        "element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    d = read_ply(tmp_path / "tri.ply", faces=True)
    assert d["faces"].tolist() == [[0, 1, 2]] and d["coord"].shape == (3, 3)
    with pytest.raises(ValueError):
        write_ply(tmp_path / "bad.ply", coord, color[:3])


def test_instance_ply_palette(tmp_path):
    coord, _ = _cloud(6)
    inst = np.array([-1, 0, 1, 2, 2, 300])
    write_instance_ply(tmp_path / "i.ply", coord, inst)
    d = read_ply(tmp_path / "i.ply")
    assert d["instance"].tolist() == inst.tolist()
    np.testing.assert_array_equal(d["color"][:2], [VOID_COLOR, VOID_COLOR])
    np.testing.assert_array_equal(d["color"][3], d["color"][4])  # same id, same colour
    pal = instance_palette(np.arange(1, 200))
    assert pal.dtype == np.uint8 and pal.shape == (199, 3)
    assert len({tuple(c) for c in pal}) > 190  # ids are told apart
    assert not np.any(np.all(pal == VOID_COLOR, axis=1))  # an instance never looks void
    np.testing.assert_array_equal(instance_palette(np.array([5, 7])), pal[[4, 6]])  # fixed per id


def _vertex_ply(path, **fields: np.ndarray):
    from plyfile import PlyData, PlyElement

    n = len(next(iter(fields.values())))
    rec = np.empty(n, dtype=[(k, v.dtype.str) for k, v in fields.items()])
    for k, v in fields.items():
        rec[k] = v
    PlyData([PlyElement.describe(rec, "vertex")], text=False).write(str(path))
    return path


def test_nonfinite_vertices_are_rejected_with_their_count(tmp_path):
    x = np.array([0.0, np.nan, 1.0, np.inf, 2.0], np.float32)
    path = _vertex_ply(tmp_path / "reference.ply", x=x, y=np.zeros(5, np.float32), z=np.zeros(5, np.float32))
    with pytest.raises(InputError, match="2 of 5 vertices have non-finite coordinates") as e:
        read_ply(path)
    assert "reference.ply" in str(e.value) and "remove or repair" in e.value.fix


def test_float_colours_are_scaled_not_truncated(tmp_path):
    xyz = {a: np.zeros(3, np.float32) for a in "xyz"}
    unit = _vertex_ply(tmp_path / "unit.ply", **xyz, red=np.array([0.0, 0.5, 1.0], np.float32),
                       green=np.array([0.2, 1.0, 0.0], np.float32), blue=np.array([1.0, 1.0, 1.0], np.float32))
    np.testing.assert_array_equal(read_ply(unit)["color"], [[0, 51, 255], [128, 255, 255], [255, 0, 255]])
    wide = _vertex_ply(tmp_path / "wide.ply", **xyz, red=np.array([0.4, 127.6, 300.0], np.float64),
                       green=np.array([-3.0, 2.0, 255.0], np.float64), blue=np.array([np.nan, 1.0, 254.5], np.float64))
    np.testing.assert_array_equal(read_ply(wide)["color"], [[0, 0, 0], [128, 2, 1], [255, 255, 254]])
    ints = _vertex_ply(tmp_path / "ints.ply", **xyz, red=np.array([0, 1, 255], np.uint8),
                       green=np.array([1, 1, 1], np.uint8), blue=np.array([0, 0, 1], np.uint8))
    np.testing.assert_array_equal(read_ply(ints)["color"], [[0, 1, 0], [1, 1, 0], [255, 1, 1]])  # not scaled
