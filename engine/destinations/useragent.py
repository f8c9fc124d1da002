"""A user agent, read once: the browser and the operating system it names.

Vendors whose own browser SDKs report the browser (Amplitude, Mixpanel) get the same from a
web event's `context.userAgent`, each under its own field names. The reading is ua-parser's
(uap-core's rules, kept up to date by that project, run by its native engine when installed):
the names are the families those rules give ("Chrome", "Mobile Safari", "Mac OS X", "iOS").
"""

import functools
from typing import NamedTuple

import ua_parser
from ua_parser import OS, Domain, UserAgent

# Real user agents are a few hundred characters; the rules' cost grows with the text, and a
# client may send anything, so what is past this is not read (nor kept in the cache).
MAX_LENGTH = 1000
# Web traffic repeats a small set of agents: a hit is a dictionary look-up (under a
# microsecond), a miss runs the rules (some 20-40 µs with the native engine); the first
# reading loads the rules (about a quarter of a second).
_CACHED = 4096


class Software(NamedTuple):
    """A browser or an OS: its family, and its version ("120.0.2210.91") when the agent says."""

    name: str
    version: str | None


class Reading(NamedTuple):
    """What a user agent names; None where the rules recognise nothing."""

    browser: Software | None
    system: Software | None


def read(agent: str) -> Reading:
    return _read(agent[:MAX_LENGTH])


@functools.lru_cache(maxsize=_CACHED)
def _read(agent: str) -> Reading:
    found = _parser()(agent, Domain.USER_AGENT | Domain.OS)
    return Reading(_software(found.user_agent), _software(found.os))


@functools.cache
def _parser() -> ua_parser.Parser:
    """The rules on the best engine installed, without ua-parser's own cache: the readings are
    cached above, and a second cache would only add to the cost of every miss."""
    return ua_parser.Parser(ua_parser.BestAvailableResolver(ua_parser.load_lazy_builtins()))


def _software(found: UserAgent | OS | None) -> Software | None:
    if found is None:
        return None
    version: list[str] = []
    for part in (found.major, found.minor, found.patch, found.patch_minor):
        if part is None:
            break
        version.append(part)
    return Software(found.family, ".".join(version) or None)
