"""Training: datasets and augmentation, the resumable training loop, data-parallel helpers, quick metrics."""
