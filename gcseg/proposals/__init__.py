"""Class-agnostic 2D mask proposals on keyframes (Stage 1) and for new objects while tracking (Stage 2)."""
