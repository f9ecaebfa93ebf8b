"""Exceptions that carry a message meant for the user.

The CLI turns any :class:`GrailError` into one line on stderr and a non-zero exit (2 for a user mistake)
instead of a traceback. Code below the CLI raises these when the cause is something the user can fix.
"""

from __future__ import annotations


class GrailError(Exception):
    """An error the user can fix; ``str(err)`` is the whole message."""

    exit_code = 2


class UnknownPluginError(GrailError, LookupError):
    """A recipe or command named a plugin that is not installed."""


class DuplicatePluginError(GrailError):
    """Two plugins registered the same name for the same kind."""


class RecipeError(GrailError):
    """A recipe failed to parse or validate; holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` on one line, for an exception raised by plugin code.

    ``SystemExit`` says that the plugin tried to end the program: grail-rl treats it as the plugin's fault,
    never as the end of the command.
    """
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r}) (a plugin must not end the program)"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
