"""What every ``python -m experiments.*`` command shares: quiet logs, one-line errors, exit codes.

Exit codes (README, "Exit codes"):

- ``0``: done.
- ``1``: an unexpected error (a bug): the traceback is printed.
- ``2``: a user error (a flag, a config key, a file, a checkpoint): one line on stderr naming
  the thing and what was expected; ``--debug`` prints the traceback instead.
- ``75`` (``EX_TEMPFAIL``; ``experiments.train --preempted_exit_code``): training saved a
  checkpoint on SIGTERM and stopped; run the same command to resume.

Library logs (Orbax, JAX, TFDS) are off below WARNING; ``--verbosity=0`` (or ``-v 0``) shows
their INFO lines, ``--verbosity=1`` their DEBUG lines.
"""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path

from absl import app, flags
from absl import logging as absl_logging

__all__ = ["EXIT_PREEMPTED", "EXIT_USER_ERROR", "USER_ERRORS", "describe", "run"]

EXIT_USER_ERROR = 2
EXIT_PREEMPTED = 75

# Exceptions cfjax raises for bad input, each with a one-line message naming the thing.
# (A bug raising one of these also gets one line; --debug shows where.)
USER_ERRORS = (ValueError, KeyError, OSError, FloatingPointError)

_DEBUG = flags.DEFINE_bool("debug", False, "print the traceback of a user error (a bad flag, config key or file)")


def describe(error: BaseException) -> str:
    """``error``'s message on one line (unwraps ml_collections' nested ``KeyError`` / ``AttributeError``)."""
    while error.args and isinstance(error.args[0], BaseException):
        error = error.args[0]
    if isinstance(error, KeyError) and error.args and isinstance(error.args[0], str):
        message = error.args[0]
    else:
        message = str(error)
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    print("(add --debug for the traceback)", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def _debug_requested(argv) -> bool:
    return any(a in ("--debug", "--debug=true", "--debug=True", "--debug=1") for a in argv)


def _check_config_files(argv) -> None:
    """``--config FILE[:key=value,...]`` names a file that exists (else one line, before anything loads)."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--config="):
            value = arg.split("=", 1)[1]
        else:
            continue
        path = Path(value.split(":", 1)[0])
        if not path.is_file():
            known = [str(p) for p in sorted(Path("configs").glob("*.py")) if p.name not in ("__init__.py", "common.py")]
            close = difflib.get_close_matches(str(path), known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ("; see configs/" if known else "")
            _fail(f"--config: no such file {str(path)!r} (expected configs/NAME.py[:key=value,...]){hint}")


def _config_error(error: BaseException) -> str:
    """The useful line of an error raised while loading a config file or applying ``--config.KEY=VALUE``."""
    text = describe(error)
    if "Error whilst parsing config file" in text:  # ml_collections wraps the traceback into the message
        text = re.split(r"(?:^|; )\w+(?:Error|Exception): ", text)[-1]  # the exception's message, whole
    if isinstance(error, AttributeError) or "Did you mean" in text:
        key, _, hint = text.partition("; ")
        return f"--config: no key {key}{' (' + hint.rstrip('?') + '?)' if hint else ''}"
    return text


def _parse_flags(argv):
    debug = _debug_requested(argv)
    if not debug:
        _check_config_files(argv)
    try:
        return flags.FLAGS(argv)
    except Exception as error:
        if debug:
            raise
        if isinstance(error, flags.Error):
            _fail(_config_error(error) if "config" in str(error) else describe(error))
        _fail(_config_error(error))


def _configure_logging() -> None:
    verbosity = flags.FLAGS["verbosity"]
    level = verbosity.value if verbosity.present else absl_logging.WARNING
    absl_logging.set_verbosity(level)
    if level < absl_logging.INFO:  # -1 (WARNING) and below
        from cfjax.train.runtime import quiet_library_logs

        quiet_library_logs()


def run(main) -> None:
    """``absl.app.run(main)`` with the exit codes above; ``main(argv) -> int``."""

    def wrapped(argv):
        _configure_logging()
        try:
            return main(argv)
        except USER_ERRORS as error:
            if _DEBUG.value:
                raise
            _fail(describe(error))

    app.run(wrapped, flags_parser=_parse_flags)
