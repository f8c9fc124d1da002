"""Handlebars templates, the part of the language messages are written in (Slack's templates).

Templates come from a destination's settings; the values they show come from events, which
anyone with a write key sends. So templates are read, never compiled to code: a template is
parsed once into a small tree (cached), and rendering walks it over plain JSON values, looking
keys up in dicts and lists only (never attributes), with the output bounded.

What is understood, as handlebars.js does it:

* `{{path}}` (HTML-escaped, the characters handlebars.js escapes), `{{{path}}}` and `{{&path}}`
  (as they are); paths `a.b`, `a/b`, `[any text]` segments, `this`, `.`, `../` (the context
  outside the enclosing `#each`/`#with`), `@index`, `@key`, `@first`, `@last`, `@root`, and
  a string or number literal standing for the key it spells (`{{"favorite color"}}`);
  `length` of a list or text.
* Blocks `#if`, `#unless`, `#each` (lists and objects), `#with`, a bare `#path` section and
  `^path` inverted section, with `{{else}}` / `{{^}}` and chained `{{else if x}}`.
* Comments `{{! }}`, `{{!-- --}}`; `\\{{` for a literal `{{`; `~` whitespace control.
* The `newline` helper (`{{newline}}` is a line break), as RudderStack registers it.

A missing value shows as nothing; a list as its items joined by commas; an object as compact
JSON (handlebars.js shows `[object Object]`, which helps nobody). Anything else (partials,
other helpers, hash arguments, block parameters) is a `TemplateError` saying what is not
understood, rather than a message rendered otherwise than the user wrote it.

Work is bounded as well as output, since an event's lists are as long as its sender makes
them: blocks nest at most `MAX_DEPTH` deep (a template nesting more is refused when read), and
rendering one event takes at most `MAX_STEPS` steps (a node shown, a block entered, an item of
an `#each`), past which it is a TemplateError rather than seconds of work for one event.
"""

import contextlib
import functools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from msgspec import Raw

from engine import codec
from engine.errors import SluiceError

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;",
            "`": "&#x60;", "=": "&#x3D;"}  # fmt: skip
_ESCAPED = re.compile("[&<>\"'`=]")
# A path segment: handlebars.js's ID characters, or any text in brackets.
_SEGMENT = r"(?:[^\s!\"#%-,./;->@\[-\^`{-~]+|\[[^\]]*\])"
_PATH = rf"@?(?:\.\./)*(?:\.|{_SEGMENT}(?:[./]{_SEGMENT})*)"
_ARGUMENT = re.compile(rf"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|-?\d+(?:\.\d+)?(?=\s|$)|{_PATH}")
_OPEN = re.compile(r"(\\)?\{\{(~)?")
_BLOCKS = ("if", "unless", "each", "with")
_HELPERS: dict[str, Callable[[], str]] = {"newline": lambda: "\n"}
_CACHED = 256  # distinct templates kept parsed
MAX_DEPTH = 64  # blocks within blocks (an `{{else if}}` is a block within its `{{#if}}`)
MAX_STEPS = 100_000  # nodes rendered and `#each` items walked, for one rendering
# The end of a `{{!-- --}}` comment: the first `--}}` (or `--~}}`), whatever `--` comes before.
_LONG_COMMENT_END = re.compile(r"--(~?)\}\}")


class TemplateError(SluiceError):
    """A template that cannot be read, or cannot be rendered over the values it was given."""


@dataclass(frozen=True)
class Path:
    parts: tuple[str, ...]  # () is the context itself
    up: int = 0  # how many `../`
    data: bool = False  # an `@` variable


@dataclass(frozen=True)
class Value:
    path: Path
    escape: bool


@dataclass(frozen=True)
class Helper:
    name: str


@dataclass(frozen=True)
class Block:
    kind: str  # if, unless, each, with, section (`#path`), inverted (`^path`)
    path: Path
    body: tuple["Node", ...]
    inverse: tuple["Node", ...] = ()


Node = str | Value | Helper | Block


@dataclass(frozen=True)
class _Tag:
    """A mustache as read: its sigil (`#`, `/`, `^`, `{`, `&`, `!`, `>` or ''), its words, and
    whether it strips the whitespace before and after it."""

    sigil: str
    words: tuple[str, ...]
    strip_before: bool
    strip_after: bool
    at: int


def render(
    template: str, data: dict[str, Any], limit: int = 100_000, steps: int = MAX_STEPS
) -> str:
    """`template` rendered over `data`; at most `limit` characters (the rest is cut). A
    TemplateError when it takes more than `steps` steps."""
    out = _Output(limit, steps)
    with contextlib.suppress(_Full):  # what was rendered up to the limit is the text
        _render(parse(template), _Scope(data), out)
    return "".join(out.parts)[:limit]


@functools.lru_cache(maxsize=_CACHED)
def parse(template: str) -> tuple[Node, ...]:
    """The template's tree; TemplateError saying where and why it cannot be read."""
    nodes, end = _Parser(template).nodes(())
    assert end is None
    return nodes


def escape(text: str) -> str:
    """HTML-escaped as handlebars.js escapes `{{value}}`."""
    return _ESCAPED.sub(lambda m: _ESCAPES[m.group()], text)


def shown(value: Any) -> str:
    """A value as a template shows it (before escaping): nothing for a missing one."""
    return "" if value is None else js_text(value)


def js_text(value: Any) -> str:
    """A value as JavaScript writes it into text (`${value}`): null is "null"; a list its
    items joined by commas; an object JSON (where JavaScript writes `[object Object]`)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Raw):
        return _number(value)
    if isinstance(value, list):
        return ",".join("" if item is None else js_text(item) for item in value)
    return codec.encode(value).decode()


def _number(value: int | float | Raw) -> str:
    if isinstance(value, int):
        return str(value)
    number = float(bytes(value).decode()) if isinstance(value, Raw) else value
    if not math.isfinite(number):
        return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
    if number.is_integer() and abs(number) < 1e21:
        return str(int(number))
    # Python writes exponents as e-07 and e+25, JavaScript as e-7 and e+25.
    return re.sub(r"e([+-])0*(\d)", r"e\1\2", repr(number))


def truthy(value: Any) -> bool:
    """As `#if` judges: missing, false, zero, empty text and empty lists are false."""
    if isinstance(value, Raw):
        return float(bytes(value).decode()) != 0
    if isinstance(value, list):
        return bool(value)
    return value is not None and value is not False and value != 0 and value != ""


# ---------------------------------------------------------------------------------------------
# Reading


class _Parser:
    def __init__(self, template: str) -> None:
        self.text = template
        self.tags = self._tags()
        self.depth = 0  # blocks open where the parser is

    def _fail(self, why: str, at: int) -> TemplateError:
        line = self.text.count("\n", 0, at) + 1
        return TemplateError(f"{why} (line {line})")

    def _tags(self) -> Iterator[str | _Tag]:
        """The template as text and tags, in order; whitespace control applied to the text."""
        pos, strip_next = 0, False
        pieces: list[str | _Tag] = []
        while (match := _OPEN.search(self.text, pos)) is not None:
            if match.group(1):  # \{{ : a literal {{
                pieces.append(self.text[pos : match.start()] + "{{")
                pos = match.end()
                continue
            pieces.append(self.text[pos : match.start()])
            tag, pos = self._tag(match)
            pieces.append(tag)
        pieces.append(self.text[pos:])
        for i, piece in enumerate(pieces):
            if isinstance(piece, _Tag):
                strip_next = piece.strip_after
                yield piece
                continue
            if strip_next:
                piece = piece.lstrip()
            following = pieces[i + 1] if i + 1 < len(pieces) else None
            if isinstance(following, _Tag) and following.strip_before:
                piece = piece.rstrip()
            strip_next = False
            if piece:
                yield piece

    def _tag(self, match: re.Match[str]) -> tuple[_Tag, int]:
        start, pos = match.start(), match.end()
        if self.text.startswith("!--", pos):
            end = _LONG_COMMENT_END.search(self.text, pos + 3)
            if end is None:
                raise self._fail("a {{!-- comment --}} is not closed", start)
            return _Tag("!", (), bool(match.group(2)), bool(end.group(1)), start), end.end()
        triple = self.text.startswith("{", pos)
        close_mark = "}}}" if triple else "}}"
        close = self.text.find(close_mark, pos)
        if close < 0:
            raise self._fail(f"a {{{{ at character {start + 1} is not closed", start)
        inner = self.text[pos + (1 if triple else 0) : close]
        strip_after = inner.endswith("~")
        inner = inner.removesuffix("~")
        sigil = "{" if triple else ""
        if not triple and inner[:1] and inner[0] in "#/^&!>":
            sigil, inner = inner[0], inner[1:]
        raw = self.text[start : close + len(close_mark)]
        words = () if sigil == "!" else self._words(inner, raw, start)
        tag = _Tag(sigil, words, bool(match.group(2)), strip_after, start)
        return tag, close + len(close_mark)

    def _words(self, inner: str, raw: str, at: int) -> tuple[str, ...]:
        words, pos = [], 0
        while pos < len(inner):
            if inner[pos].isspace():
                pos += 1
                continue
            match = _ARGUMENT.match(inner, pos)
            end = match.end() if match else pos
            if match is None or (end < len(inner) and not inner[end].isspace()):
                raise self._fail(f"cannot read {raw}", at)
            words.append(match.group())
            pos = end
        return tuple(words)

    def nodes(
        self, closers: tuple[str, ...], opened: str = ""
    ) -> tuple[tuple[Node, ...], _Tag | None]:
        """Nodes up to a tag in `closers` ('/' ends a block, 'else' its first part), which is
        returned; None at the end of the template. `opened`: the block they are in."""
        found: list[Node] = []
        while (piece := next(self.tags, None)) is not None:
            if isinstance(piece, str):
                found.append(piece)
                continue
            if _is_else(piece) or piece.sigil == "/":
                if ("else" if _is_else(piece) else "/") not in closers:
                    raise self._fail(f"{{{{{_spelled(piece)}}}}} without a block", piece.at)
                return tuple(found), piece
            if (node := self._node(piece)) is not None:
                found.append(node)
        if closers:
            raise self._fail(f"{{{{#{opened}}}}} is not closed", len(self.text))
        return tuple(found), None

    def _node(self, tag: _Tag) -> Node | None:
        if tag.sigil == "!":
            return None
        if tag.sigil == ">":
            raise self._fail("partials ({{> name}}) are not supported", tag.at)
        if not tag.words:
            raise self._fail("an empty {{}}", tag.at)
        if tag.sigil in ("#", "^"):
            return self._block(tag)
        name, *arguments = tag.words
        if name in _HELPERS and not arguments:
            return Helper(name)
        if arguments:
            raise self._fail(f"{{{{{_spelled(tag)}}}}}: {name} is not a helper", tag.at)
        return Value(self._path(name, tag), escape=tag.sigil == "")

    def _block(self, tag: _Tag) -> Block:
        """A block opened by `tag`, read up to its close, with its `{{else}}` part."""
        kind, target = self._opening(tag)
        return self._rest(kind, target, tag.words[0], tag.at)

    def _rest(self, kind: str, target: Path, closer: str, at: int) -> Block:
        # Parsing and rendering recurse once per block: a template nesting without end would
        # exhaust the stack (RecursionError) rather than be refused.
        if self.depth >= MAX_DEPTH:
            raise self._fail(f"blocks are nested more than {MAX_DEPTH} deep", at)
        self.depth += 1
        try:
            return self._block_parts(kind, target, closer)
        finally:
            self.depth -= 1

    def _block_parts(self, kind: str, target: Path, closer: str) -> Block:
        body, end = self.nodes(("else", "/"), closer)
        assert end is not None
        if _is_else(end) and len(end.words) > 1:
            # {{else if x}}: a block in the else part, closed where the outer one is.
            chained = _Tag("#", end.words[1:], False, False, end.at)
            inner = self._rest(*self._opening(chained), closer, end.at)
            return Block(kind, target, body, (inner,))
        inverse: tuple[Node, ...] = ()
        if _is_else(end):
            inverse, end = self.nodes(("/",), closer)
            assert end is not None
        self._closes(end, closer)
        return Block(kind, target, body, inverse)

    def _opening(self, tag: _Tag) -> tuple[str, Path]:
        if tag.sigil == "^":  # {{^path}}: shown when the value is empty
            if len(tag.words) != 1:
                raise self._fail(f"{{{{{_spelled(tag)}}}}} takes one value", tag.at)
            return "inverted", self._path(tag.words[0], tag)
        name, *arguments = tag.words
        if name in _BLOCKS:
            if len(arguments) != 1:
                raise self._fail(f"{{{{{_spelled(tag)}}}}}: #{name} takes one value", tag.at)
            return name, self._path(arguments[0], tag)
        if arguments or name in _HELPERS:
            raise self._fail(f"{{{{{_spelled(tag)}}}}} is not a block this renderer knows", tag.at)
        return "section", self._path(name, tag)

    def _closes(self, end: _Tag, name: str) -> None:
        if end.sigil != "/" or end.words != (name,):
            raise self._fail(f"{{{{{_spelled(end)}}}}} does not close the block of {name}", end.at)

    def _path(self, word: str, tag: _Tag) -> Path:
        if word[0] in "\"'":  # a literal names the key it spells
            return Path((re.sub(r"\\(.)", r"\1", word[1:-1]),))
        if word[0].isdigit() or (word[0] == "-" and word[1:2].isdigit()):
            return Path((word,))
        data = word.startswith("@")
        rest = word[1:] if data else word
        up = 0
        while rest.startswith("../"):
            up, rest = up + 1, rest[3:]
        if rest in (".", "this"):
            return Path((), up, data)
        parts = [p[1:-1] if p.startswith("[") else p for p in _split(rest)]
        if parts and parts[0] == "this" and not word.startswith("[") and not data:
            parts = parts[1:]
        if any(p in ("", "..") for p in parts):
            raise self._fail(f"{{{{{_spelled(tag)}}}}}: {word!r} is not a path", tag.at)
        return Path(tuple(parts), up, data)


def _split(path: str) -> list[str]:
    return re.findall(r"\[[^\]]*\]|[^./\[]+", path)


def _is_else(tag: _Tag) -> bool:
    return (tag.sigil == "" and tag.words[:1] == ("else",)) or (tag.sigil == "^" and not tag.words)


def _spelled(tag: _Tag) -> str:
    return tag.sigil.replace("{", "") + " ".join(tag.words)


# ---------------------------------------------------------------------------------------------
# Rendering


class _Full(Exception):
    """The output reached its limit: rendering stops."""


class _Output:
    def __init__(self, limit: int, steps: int) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit
        self.budget = self.steps = steps  # steps allowed, and left

    def step(self) -> None:
        """One more step of work (a node, a block, an item walked), within the budget."""
        self.steps -= 1
        if self.steps < 0:
            raise TemplateError(
                "rendering takes too long over these values: more than "
                f"{self.budget:,} steps (nested #each over long lists?)"
            )

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size >= self.limit:
            raise _Full


@dataclass(frozen=True)
class _Scope:
    """Where paths are looked up: the context, the contexts outside it, `@` variables."""

    context: Any
    outer: "_Scope | None" = None
    data: tuple[tuple[str, Any], ...] = ()
    root: Any = None

    def within(self, context: Any, **data: Any) -> "_Scope":
        root = self.root if self.outer is not None or self.root is not None else self.context
        return _Scope(context, self, tuple(data.items()), root)

    def lookup(self, path: Path) -> Any:
        if path.data:
            return self._data(path)
        scope = self
        for _ in range(path.up):
            scope = scope.outer or scope
        return _dig(scope.context, path.parts)

    def _data(self, path: Path) -> Any:
        name, rest = path.parts[0] if path.parts else "", path.parts[1:]
        if name == "root":
            return _dig(self.root if self.root is not None else self.context, rest)
        scope: _Scope | None = self
        while scope is not None:
            found = dict(scope.data)
            if name in found:
                return _dig(found[name], rest)
            scope = scope.outer
        return None


def _dig(node: Any, parts: Sequence[str]) -> Any:
    for part in parts:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list | str) and part == "length":
            node = len(node)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _render(nodes: Sequence[Node], scope: _Scope, out: _Output) -> None:
    for node in nodes:
        out.step()
        if isinstance(node, str):
            out.add(node)
        elif isinstance(node, Value):
            text = shown(scope.lookup(node.path))
            out.add(escape(text) if node.escape else text)
        elif isinstance(node, Helper):
            out.add(_HELPERS[node.name]())
        else:
            _block(node, scope, out)


def _block(block: Block, scope: _Scope, out: _Output) -> None:
    value = scope.lookup(block.path)
    kind = block.kind
    if kind == "section":  # `#path`: handlebars.js treats a list as #each, an object as #with
        kind = "each" if isinstance(value, list) else "with" if isinstance(value, dict) else "if"
    if kind in ("if", "with"):
        chosen = truthy(value) if kind == "if" else value is not None and value is not False
        inner = scope.within(value) if kind == "with" and chosen else scope
        _render(block.body if chosen else block.inverse, inner, out)
    elif kind in ("unless", "inverted"):
        _render(block.inverse if truthy(value) else block.body, scope, out)
    else:
        _each(block, value, scope, out)


def _each(block: Block, value: Any, scope: _Scope, out: _Output) -> None:
    items: Iterable[tuple[Any, Any]] = ()  # walked, not copied: the list may be long
    if isinstance(value, list):
        items = enumerate(value)
    elif isinstance(value, dict):
        items = value.items()
    last = len(value) - 1 if isinstance(value, list | dict) else -1
    if last < 0:
        _render(block.inverse, scope, out)
        return
    for index, (key, item) in enumerate(items):
        out.step()
        data = {"index": index, "first": index == 0, "last": index == last}
        if isinstance(value, dict):
            data["key"] = key
        _render(block.body, scope.within(item, **data), out)
