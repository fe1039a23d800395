"""`rgbd`: a weight-free RGB-D proposer that behaves like SAM's automatic mask generator (see proposer.py)."""

from gcseg.proposals.rgbd.config import RgbdConfig
from gcseg.proposals.rgbd.proposer import RgbdProposer

__all__ = ["RgbdConfig", "RgbdProposer"]
