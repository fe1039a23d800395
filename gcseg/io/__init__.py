"""Readers and writers of gcseg's own artifacts (HDF5, PLY, JSON)."""
