"""Line wrapping: generated source is laid out as the project's formatter (``ruff format``, 120 columns) lays it out.

Emitters write each statement on one line; :func:`wrap` splits a line that does not fit the way the formatter does,
so that ``ruff format`` leaves generated modules unchanged (``make lint`` checks the goldens):

- an assignment whose right side has two or more operators of its loosest kind is split inside parentheses
  around that side;
- otherwise the line is split at its last bracket whose opening line fits (trailing calls such as ``.view(...)``
  stay on the closing line when splitting before them would not fit), a signature at its parameters;
- an assignment with no such bracket is split inside parentheses around its right side;
- the bracket's contents go on one indented line if they fit and it is not a literal of several items, else one
  item per line with a trailing comma (or one operand per line, before its operator), each wrapped again.

Comment lines are refilled to the width.  It knows only what codegen writes: strings without quotes inside, binary
operators between spaces, comments after two spaces.
"""

from __future__ import annotations

import itertools
import textwrap

WIDTH = 120
INDENT = "    "
_OPEN, _CLOSE = "([{", ")]}"
#: binary operators by how loosely they bind (the formatter splits at the loosest first)
_OPERATORS = ((" + ", " - "), (" * ", " @ ", " / ", " // "))


def wrap(line: str) -> list[str]:
    """A line of source, split as the formatter would split it."""
    code = line.lstrip(" ")
    indent = line[: len(line) - len(code)]
    if not code:
        return [""]
    if code.startswith("#"):  # a comment line: its words, refilled
        return textwrap.wrap(code[1:], WIDTH, initial_indent=f"{indent}#", subsequent_indent=f"{indent}# ")
    return [indent + piece for piece in _fit(*_comment(code), len(indent))]


def _comment(code: str) -> tuple[str, str]:
    """``code`` without, and its trailing comment (with the two spaces before it)."""
    quote = None
    for i, ch in enumerate(code):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return code[:i].rstrip(), ("  " if i else "") + code[i:]
    return code, ""


def _scan(code: str) -> tuple[list[tuple[int, int]], list[int]]:
    """The top-level bracket pairs of ``code`` and the positions of its top-level commas."""
    pairs, commas, stack, quote = [], [], [], None
    for i, ch in enumerate(code):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in _OPEN:
            stack.append(i)
        elif ch in _CLOSE and stack:  # an unmatched closer opens a tail: `) -> tuple[...]:` after the parameters
            start = stack.pop()
            if not stack:
                pairs.append((start, i))
        elif ch == "," and not stack:
            commas.append(i)
    return pairs, commas


def _operators(code: str) -> list[tuple[int, str]]:
    """The top-level binary operators of the loosest kind in ``code``: (position, operator)."""
    inside = _bracketed(code)
    for kind in _OPERATORS:
        found = [(i, op) for op in kind for i in _find(code, op) if i not in inside]
        if found:
            return sorted(found)
    return []


def _find(code: str, sub: str) -> list[int]:
    found, i = [], code.find(sub)
    while i >= 0:
        found.append(i)
        i = code.find(sub, i + 1)
    return found


def _fits(text: str, indent: int) -> bool:
    return indent + len(text) <= WIDTH


def _fit(code: str, comment: str, indent: int) -> list[str]:
    if _fits(code + comment, indent):
        return [code + comment]
    split = _parenthesized(code, 2) or _at_bracket(code, indent) or _parenthesized(code, 0)
    if split is None:
        return [code + comment]  # nothing to split at: the formatter leaves it long too
    head, body, tail = split
    inner = indent + len(INDENT)
    if _fits(body, inner) and not (_literal(head) and _scan(body.removesuffix(","))[1]):
        lines = [body]
    else:
        lines = [piece for item in _items(body) for piece in _fit(item, "", inner)]
    return [head, *(INDENT + piece for piece in lines), *_fit(tail, comment, indent)]


def _literal(head: str) -> bool:
    """Whether the bracket ending ``head`` opens a literal (a tuple, list or dict: exploded one item per line as soon
    as it is split) rather than a call's arguments or a subscript."""
    return head[-1] == "{" or len(head) == 1 or not (head[-2].isalnum() or head[-2] in "_)]")


def _parenthesized(code: str, operators: int) -> tuple[str, str, str] | None:
    """``name = value`` as ``name = (``, ``value``, ``)`` where the value has this many loosest operators or more."""
    target, sep, value = code.partition(" = ")
    if not sep or not target.isidentifier() or len(_operators(value)) < operators:
        return None
    return f"{target} = (", value, ")"


def _at_bracket(code: str, indent: int) -> tuple[str, str, str] | None:
    """Split at the last bracket whose opening line fits, moving trailing calls (``.view(...)``) to the closing line."""
    pairs, _ = _scan(code)
    if code.startswith("def "):  # a signature splits in its parameters
        pairs = pairs[:1]
    for start, stop in reversed(pairs):
        if stop != pairs[-1][1] and _top_level(code[stop + 1 :], " "):
            return None  # only trailers may follow the bracket split at
        if stop > start + 1 and _fits(code[: start + 1], indent):
            return code[: start + 1], code[start + 1 : stop], code[stop:]
    return None


def _top_level(code: str, char: str) -> bool:
    """Whether ``char`` occurs in ``code`` outside brackets and strings."""
    inside = _bracketed(code)
    return any(ch == char and i not in inside for i, ch in enumerate(code))


def _bracketed(code: str) -> set[int]:
    """The positions of ``code`` inside a top-level bracket pair, the brackets included."""
    return {i for start, stop in _scan(code)[0] for i in range(start, stop + 1)}


def _items(body: str) -> list[str]:
    """The lines of a bracket's exploded contents: items with a trailing comma, or operands led by operators."""
    _, commas = _scan(body)
    if commas:
        cuts = [-1, *commas, len(body)]
        items = [body[a + 1 : b].strip() for a, b in itertools.pairwise(cuts)]
        return [f"{item}," for item in items if item]
    operators = _operators(body)
    if not operators:
        return [body]
    ends = [i for i, _ in operators[1:]] + [len(body)]
    led = [f"{op.strip()} {body[i + len(op) : end]}" for (i, op), end in zip(operators, ends, strict=True)]
    return [body[: operators[0][0]], *led]
