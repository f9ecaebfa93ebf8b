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
