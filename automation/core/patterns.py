"""Regular expressions of workflow conditions, matched in linear time with RE2.

A workflow's `regex` condition is written by a user and run on every customer message. With
Python's backtracking `re`, a pattern such as `(a+)+$` on a 30-character message takes
seconds and holds the GIL, freezing every request of the process. RE2 (google-re2) matches
in time linear in the text and refuses what it cannot do that way (backreferences,
look-around), so such a pattern is refused when the workflow is saved instead.
"""
from __future__ import annotations

from functools import lru_cache

import re2

MAX_PATTERN_LENGTH = 500
MAX_PROGRAM_MEMORY = 1 << 20   # bytes RE2 may use for one compiled pattern (refuses bigger ones)
MAX_TEXT_LENGTH = 4000         # characters of a message a condition looks at


class PatternError(ValueError):
    """A pattern RE2 refuses (invalid, unsupported, or too large); the message says why."""


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False      # the reason goes to the API client, not to stderr
    options.max_mem = MAX_PROGRAM_MEMORY
    return options


@lru_cache(maxsize=512)
def compile_pattern(pattern: str):
    """The compiled, case-insensitive RE2 pattern; PatternError says why it is refused."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"the pattern is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(f"invalid or unsupported regular expression: {reason} (RE2 syntax: "
                           "no backreferences or look-around)") from None


def pattern_matches(pattern: str, text: str) -> bool:
    """Does the pattern occur in (the first MAX_TEXT_LENGTH characters of) text?"""
    return compile_pattern(pattern).search(text[:MAX_TEXT_LENGTH]) is not None
