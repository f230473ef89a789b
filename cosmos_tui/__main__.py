"""Allow ``python -m cosmos_tui`` to behave like the ``cosmos`` command."""

from cosmos_tui.cli import main

if __name__ == "__main__":
    main()
