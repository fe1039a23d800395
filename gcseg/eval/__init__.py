"""Class-agnostic instance evaluation by the ScanNet benchmark protocol (ap), its files (benchmark_io),
GT class sets (classes) and folder scoring (folders)."""
