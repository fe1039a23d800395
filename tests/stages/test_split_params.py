"""Split params (sam2_track.split, full_scene_pseudolabel.split): one split, or several joined by "+", checked
when params load."""

import pytest
from pydantic import ValidationError

from stages.full_scene_pseudolabel import FullScenePseudolabelSection
from stages.sam2_track import Sam2TrackSection


@pytest.mark.parametrize("section", [FullScenePseudolabelSection, Sam2TrackSection])
def test_split_names(section):
    for ok in ("train", "val", "all", "unlabelled", "train+unlabelled", "train+val"):
        assert section(split=ok).split == ok
    for bad in ("test", "train+train", "all+val", ""):
        with pytest.raises(ValidationError, match="unknown split"):
            section(split=bad)
