"""`rgbd`: a weight-free RGB-D mask proposer that behaves like SAM's automatic mask generator (the CPU default).

It returns whole objects (a table, a chair, a cup on the table, a book on a shelf board) and, scored below
them, their parts (the pieces an object was assembled from and its single-coloured regions); no room shell, few
giant regions, no group masks (the containment filter keeps the largest of nested masks, so a group would
swallow its members). One frame at a time, deterministic, about 0.25 s per 320x240 frame on one core.

Modules, in the order they run:
* geometry: input checks (non-finite / negative depth, colour of another size or type, bad K or pose ->
  InputError; no valid depth -> no masks), working resolution (frames above work_pixels are segmented smaller,
  masks scaled back), hole filling, depth median (thin structures kept), normals from unbiased central
  differences, depth continuity between neighbouring pixels (slope-corrected depth step, smaller steps where the
  colour changes too), world up and heights.
* room: floor and ceiling (extreme horizontal planes with nothing beyond them), walls (farthest vertical plane
  per dominant direction, rising to eye level or out of the view); their pixels are not objects.
* objects: supports (up-facing patches, edge-on slabs), the band around each, what stands on each support (its
  zone, split at depth and colour edges, seeded at the band), everything else assembled into whole objects.
* proposer: scored masks of objects and parts.

World up is never assumed to be a particular axis. It starts from the scene's up when the proposer has one
(`RgbdProposer.for_scene(up)`; the stages and `gcseg segment` bind gcseg.upright.proposer_up of the scene's poses
through gcseg.proposals.factory.for_scene), else from the world axis nearest the camera's up (-y of the OpenCV
camera in the world; within 45 degrees for handheld and head-mounted captures, which a camera pitched more than
~45 degrees down breaks: one frame alone cannot tell), and is refined to the mean normal of the horizontal
surfaces within up_refine_deg of it, so z-up (ScanNet, the synthetic scenes) and y-up (the HoloLens capture)
worlds, and worlds slightly off gravity, all work (tests/proposals/test_rgbd.py renders the same view in both
conventions, and one pitched 65 degrees down).

Measured (synthetic default, 320x240, 70 frames, depth noise 0.002, holes 0.02, keyframes every 5th frame,
containment 0.8, GT >= 80 px, masks >= 20 px; seed 0 scenes 0-3 tuned on): see the commit history and
README; the numbers are produced by gcseg.eval.diagnostics.
"""

from gcseg.proposals.rgbd.config import RgbdConfig
from gcseg.proposals.rgbd.proposer import RgbdProposer

__all__ = ["RgbdConfig", "RgbdProposer"]
