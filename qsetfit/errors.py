"""The one error type qsetfit raises at its boundaries, and the one rule for suggesting a known name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class QSetFitError(ValueError):
    """A problem the user can fix: the message names the argument, the value and the fix."""


def did_you_mean(name: str, known: Iterable[str]) -> list[str]:
    """The closest known name to a misspelt ``name`` (a list of 0 or 1), for "did you mean" in a message."""
    return difflib.get_close_matches(name, list(known), n=1)


def check_keys(values: Iterable[str], known: Iterable[str], what: str) -> None:
    """Refuse the first of ``values`` that is not ``known``: one QSetFitError naming it, the nearest known name
    and every valid one. ``what`` names the key: a noun put before it ("training argument"), or a text with
    ``{!r}`` where it goes ("key {!r} in profile.toml")."""
    known = list(known)
    for key in values:
        if key not in known:
            named = what.format(key) if "{" in what else f"{what} {key!r}"
            near = did_you_mean(key, known)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise QSetFitError(f"unknown {named}{hint} valid keys: {', '.join(known)}")
