"""The pipeline's HTML report (`gcseg report`) and its static PNGs: see gcseg.report.build."""

from gcseg.report.build import build_report
from gcseg.report.inputs import ReportInputs

__all__ = ["ReportInputs", "build_report"]
