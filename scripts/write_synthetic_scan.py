"""Write a synthetic scan of any length to disk as a user's capture would look: a posed RGB-D folder (color/<i>.jpg,
depth/<i>.png uint16 mm, pose/<i>.txt, intrinsic/intrinsic_depth.txt) with no GT and no reference.ply, rendered
frame by frame by gcseg.synth.stream (bounded memory). Used to time `gcseg segment` on long scans (README, "Use it
on your data").

    python scripts/write_synthetic_scan.py OUT_FOLDER --frames 1000 --height 480 --width 640

The camera circles the room about 3.3 degrees a frame (330 degrees per 100 frames, as the embedded default), with
the default hand-held wobble, so a 1,000-frame scan walks nine times around one room.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="scan folder to create (must not exist)")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--seed", type=int, default=0, help="room and camera path (gcseg.synth.writer.scene_seed(seed, 0))")
    args = ap.parse_args()

    from gcseg.synth.stream import stream_scene
    from gcseg.synth.writer import scene_seed

    scene = stream_scene(scene_seed(args.seed, 0), num_frames=args.frames, height=args.height, width=args.width,
                         depth_noise=0.002, hole_fraction=0.02, orbit_degrees=3.3 * args.frames)
    out = args.out
    out.mkdir(parents=True, exist_ok=False)
    for sub in ("color", "depth", "pose", "intrinsic"):
        (out / sub).mkdir()
    k4 = np.eye(4)
    for i in tqdm(range(args.frames), desc="render", unit="frame"):
        f = scene.frame(i)
        if i == 0:
            k4[:3, :3] = f.intrinsics
            np.savetxt(out / "intrinsic" / "intrinsic_depth.txt", k4)
        Image.fromarray(f.color).save(out / "color" / f"{i}.jpg", quality=90)
        Image.fromarray(np.round(f.depth * 1000).astype(np.uint16)).save(out / "depth" / f"{i}.png")
        np.savetxt(out / "pose" / f"{i}.txt", f.pose)


if __name__ == "__main__":
    main()
