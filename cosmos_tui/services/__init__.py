"""The service facade used by both ``cli/`` and ``ui/``."""

from cosmos_tui.services.workbench import DeletePlan, SearchResult, Workbench

__all__ = ["DeletePlan", "SearchResult", "Workbench"]
