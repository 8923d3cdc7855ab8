"""The `sourcing` console entry point: signal handlers first, the command line after.

Importing the command line (typer, rich, then pandas and Pyomo inside the
commands) takes a moment, seconds on a loaded machine. A Ctrl-C or SIGTERM in
that time must end like one during a run: one message and exit 130, never a
``KeyboardInterrupt`` traceback or death by the signal. So this module imports
nothing heavy, installs the handlers, and only then imports :mod:`model.cli`.
``python -m model.cli`` and ``python -m model`` come through here too.
"""

from __future__ import annotations

import signal
import sys
from typing import Any, NoReturn

INTERRUPTED = "interrupted; nothing was written"
EXIT_INTERRUPTED = 130


_SIGNALLED: list[int] = []


def on_signal(signum: int, frame: Any) -> None:
    """Ctrl-C or SIGTERM: unwind once (temporary folders are removed on the way);
    further signals during the clean-up are ignored so it can finish."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt


def signalled() -> bool:
    """Whether an interrupt arrived: the KeyboardInterrupt it raises may surface as
    another error (a C extension whose import it broke says ImportError)."""
    return bool(_SIGNALLED)


def install_handlers() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt once (see :func:`on_signal`)."""
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def interrupted() -> NoReturn:
    """The one message of an interrupt outside a command's own guard, and exit 130."""
    sys.stderr.write(f"error: {INTERRUPTED}\n")
    sys.stderr.flush()
    sys.exit(EXIT_INTERRUPTED)


def main() -> NoReturn:
    """Console entry point (``[project.scripts] sourcing``)."""
    install_handlers()
    try:
        from .cli import main as cli_main     # typer and rich: the slow part
    except KeyboardInterrupt:
        interrupted()
    except Exception:                          # an import the interrupt broke
        if signalled():
            interrupted()
        raise
    cli_main()
    sys.exit(0)   # not reached: the command line always exits


if __name__ == "__main__":
    main()
