"""Exporters of dataset stores to other formats (LeRobot v3.0), the other direction of real_data.importers."""
from real_data.exporters.lerobot import ExportSummary, export_lerobot

FORMATS = ("lerobot",)

__all__ = ["FORMATS", "ExportSummary", "export_lerobot"]
