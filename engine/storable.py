"""What PostgreSQL can keep of what a user types: text without NUL characters, in valid Unicode
(no lone surrogates, which a JSON escape such as `\\ud800` can make), in documents nested to a
sane depth. The control plane checks its inputs against these rules before it stores them, so
that a value PostgreSQL would refuse is refused with the field at fault named, not with a
failed request."""

import re
from typing import Any

MAX_DEPTH = 64  # levels of objects and arrays; a destination's settings need a handful
_SURROGATE = re.compile("[\ud800-\udfff]")


def text_fault(text: str) -> str | None:
    """Why `text` cannot be stored, or None."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    if found := _SURROGATE.search(text):
        return f"contains a lone surrogate (\\u{ord(found[0]):04x}), which is not valid Unicode"
    return None


def fault(value: Any, where: str) -> tuple[str, str] | None:
    """The first place in `value` (objects, arrays, text, numbers; `where` names `value`
    itself) that cannot be stored, and why; too deep a nesting is blamed on the top-level
    field it is in. Walked without recursion, however deep."""
    pending = [(value, where, 0, where)]
    while pending:
        item, path, depth, field = pending.pop()
        if isinstance(item, str):
            if why := text_fault(item):
                return path, why
        elif isinstance(item, dict | list | tuple):
            if depth == MAX_DEPTH:
                return field, f"is nested more than {MAX_DEPTH} levels deep"
            if isinstance(item, dict):
                for key in item:
                    if isinstance(key, str) and (why := text_fault(key)):
                        return path, f"has a key that {why}"
                inner = [(v, f"{path}.{k}" if path else str(k)) for k, v in item.items()]
            else:
                inner = [(v, f"{path}[{i}]") for i, v in enumerate(item)]
            pending.extend(
                (v, p, depth + 1, p if depth == 0 else field) for v, p in reversed(inner)
            )
    return None
