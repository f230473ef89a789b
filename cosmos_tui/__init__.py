"""cosmos-tui: run NVIDIA Cosmos video models on remote GPU hosts from the keyboard."""

__version__ = "0.1.0"
