"""cosmos-tui: run NVIDIA Cosmos video models on remote GPU hosts from the keyboard."""

import warnings

__version__ = "0.1.0"

# asyncssh 2.24 names cryptography's DSA key classes at import time, and cryptography 51
# warns on that on every start: noise on the first line of every command and of the demo's
# screen. Only that one warning from asyncssh's own modules is hidden; we never offer DSA.
warnings.filterwarnings(
    "ignore", message="DSA is deprecated", module=r"asyncssh(\.|$)", append=False
)
