"""The ``--help`` of every command shows each flag's default (argparse's own formatter would also print
``(default: None)`` for flags that have none, which says nothing) and keeps its examples' lines as written."""

from __future__ import annotations

import argparse


class DefaultsHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Append ``(default: X)`` to a flag's help unless the help already states it or there is no default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (not action.option_strings or "default" in text or action.default in (None, False, argparse.SUPPRESS)
                or isinstance(action, argparse._HelpAction)):
            return text
        return text + " (default: %(default)s)"
