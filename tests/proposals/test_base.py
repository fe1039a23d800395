"""Proposals rejects malformed backend output with a ValueError naming the field (a check that `python -O`
keeps, unlike an assert)."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.proposals.base import Proposals


def test_well_formed_and_empty() -> None:
    p = Proposals(np.zeros((2, 4, 5), bool), np.array([0.5, 0.9], np.float32))
    assert len(p) == 2 and len(Proposals.empty(4, 5)) == 0


@pytest.mark.parametrize("masks, scores, match", [
    (np.zeros((2, 4, 5), np.uint8), np.ones(2, np.float32), r"masks must be a bool array \(K, H, W\), got uint8"),
    (np.zeros((4, 5), bool), np.ones(2, np.float32), r"masks must be a bool array .* \(4, 5\)"),
    (np.zeros((2, 4, 5), bool), np.ones(3, np.float32), r"scores must be a float array \(2,\)"),
    (np.zeros((2, 4, 5), bool), np.ones(2, np.int64), r"scores must be a float array .* int64"),
    (np.zeros((2, 4, 5), bool), np.array([0.5, np.nan], np.float32), r"scores must be finite"),
])
def test_malformed_output_is_a_clear_error(masks: np.ndarray, scores: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Proposals(masks, scores)
