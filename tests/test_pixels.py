"""The pixel-area convention (gcseg.pixels): fractions of the image area, converted per image."""

import pytest

from gcseg.errors import ConfigError
from gcseg.pixels import REFERENCE_HW, area_px


def test_fractions_scale_with_the_image():
    assert area_px(0.00026, REFERENCE_HW) == 20  # the default min area at 320x240
    assert area_px(0.00026, (480, 640)) == 80 and area_px(0.00026, (120, 160)) == 5
    assert area_px(0.001, (240, 320)) == 77
    assert area_px(0.0, (240, 320)) == 1 == area_px(1e-9, (48, 64))  # never below one pixel
    assert area_px(1.0, (3, 4)) == 12


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_out_of_range_fraction(bad):
    with pytest.raises(ConfigError, match="fraction"):
        area_px(bad, (240, 320))
