"""HDF5 artifacts written twice from the same data are byte-identical (DVC hashes bytes)."""

from __future__ import annotations

import numpy as np

from gcseg.io.h5 import read_h5, write_h5


def test_write_h5_twice_is_byte_identical(tmp_path):
    rng = np.random.default_rng(0)
    tree = {"frames": {"1": {"masks": rng.random((3, 40, 40)) > 0.5, "scores": rng.random(3).astype(np.float32)},
                       "0": {"masks": np.zeros((0, 40, 40), bool), "scores": np.zeros(0, np.float32)}},
            "coord": rng.normal(size=(2000, 3)).astype(np.float32), "scene_id": "scene_a", "names": np.array(["a", "b"])}
    write_h5(tmp_path / "a.h5", tree, schema="gcseg.test", version=1, attrs={"note": "x", "n": 3})
    write_h5(tmp_path / "b.h5", dict(reversed(list(tree.items()))), schema="gcseg.test", version=1,
             attrs={"n": 3, "note": "x"})
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    data, attrs = read_h5(tmp_path / "a.h5", schema="gcseg.test", version=1)
    np.testing.assert_array_equal(data["coord"], tree["coord"])
    assert data["scene_id"] == "scene_a" and attrs["n"] == 3
