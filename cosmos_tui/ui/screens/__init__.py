"""Screens of the terminal UI: the main screen, forms, dialogs, help and run detail."""
