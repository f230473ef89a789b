"""Widgets of the main screen's panes."""
