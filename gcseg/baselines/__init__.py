"""Training-free lifting baselines for the ablation: view-consensus mask clustering (MaskClustering) and superpoint
region growing (SAI3D). Both read 2D id maps through the same point association as `sam2_track`'s lifting."""
