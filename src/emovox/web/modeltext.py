"""Strings from a model folder as the page's Markdown: data, not ours (code review).

A model folder's strings (its name, corpus, labels...) and its ``MODEL_CARD.md`` are shown
as text: :func:`md_text` escapes every character Markdown could read as markup,
:func:`md_code` writes inline code, :func:`card_markdown` keeps a card's own Markdown but
escapes what would link, load or format beyond it.

Escaping is not enough against GitHub's autolink literals: Streamlit renders Markdown with
remark-gfm, which finds ``https://...``, ``http://...``, ``www....`` and ``name@host.tld``
in the text after backslash escapes are resolved, and makes them links. The text is
therefore given an invisible U+2060 WORD JOINER (:data:`JOINER`) where those patterns need
a plain character: after ``http``/``https``/``ftp`` before ``:``, after ``www`` before
``.``, and before ``@`` (:func:`unlinked`). It shows nothing and the text reads the same;
copied, it carries the joiner.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict

from emovox.serving.oneline import code_text, one_line

__all__ = ["JOINER", "card_markdown", "md_code", "md_name", "md_named", "md_text", "unlinked"]

#: U+2060 WORD JOINER: invisible, not a character of any GFM autolink literal
JOINER = "\u2060"
#: the places a GFM autolink literal needs a plain character (the joiner goes there)
_AUTOLINK = re.compile(r"(https?|ftp)(?=:)|(www)(?=\.)|(?=@)", re.IGNORECASE)
#: ASCII punctuation a backslash escapes in Markdown (CommonMark: all of it), less ``& < >``
_MD_PUNCT = frozenset("!\"#$%'()*+,-./:;=?@[\\]^_`{|}~")
#: written as entities instead: text both where the page allows raw HTML and where not
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
#: what a model card may not use (links, images, footnotes, Streamlit's ``:red[...]``, raw
#: HTML, autolinks, maths); a backslash first, so that ``\[`` in a card stays escaped
_CARD_SPECIALS = "\\[]<$"


def unlinked(text: str) -> str:
    """``text`` with :data:`JOINER` wherever a GFM autolink literal would start: no
    ``http(s)://``, ``ftp:``, ``www.`` nor ``@`` of it is linked, and it reads the same."""
    return _AUTOLINK.sub(lambda m: f"{m.group(1) or m.group(2) or ''}{JOINER}", text)


def md_text(value: object) -> str:
    """``value`` (a string from a model folder: its name, corpus, a label...) as Markdown
    that shows exactly its text on one line: no link (autolink literals included:
    :func:`unlinked`), image, emphasis, code, heading, Streamlit colour or badge, maths,
    nor HTML (also inside the headline's ``<span>``, where the page allows HTML), nor a
    character reference (``&`` is ``&amp;``); one line as :func:`~emovox.serving.oneline.one_line`
    writes it (bidi overrides left out, lone surrogates as U+FFFD). Every page string a model
    folder supplies goes through it."""
    return "".join(_MD_ENTITIES.get(ch) or (f"\\{ch}" if ch in _MD_PUNCT else ch)
                   for ch in unlinked(one_line(value)))


#: what makes a file name Markdown: emphasis, code, links, HTML, headings, tables,
#: strikethrough, Streamlit's ``:colour[...]`` and maths (a "." or "-" inside a name is text)
_NAME_MARKUP = re.compile(r"[\\`*_\[\]<>#|~:$&!]|^[-+=]|^\d+[.)]|www\.|@")


def md_name(name: str) -> str:
    """A file's name as page Markdown showing exactly its text: unchanged when nothing in it
    is markup (``clip 03.wav``), else :func:`md_text` (``# __big__ take.mp3`` was a heading
    with bold letters: web review, stop 52)."""
    return md_text(name) if _NAME_MARKUP.search(name) else name


def md_named(text: str, *names: str) -> str:
    """``text`` (one of emovox's messages, Markdown of its own) with every occurrence of
    each of ``names`` (a file's name in it) written by :func:`md_name`, outside its inline
    code: a name in a command to copy stays as it is there (``ffmpeg -i rec_01.raw``
    showed ``rec\\_01\\.raw``: review, stop 52)."""
    wanted = sorted({n for n in names if n and md_name(n) != n}, key=len, reverse=True)
    if not wanted:
        return text
    parts = _CODE_SPAN.split(text)  # odd items: the code spans, kept as they are
    for i in range(0, len(parts), 2):
        for name in wanted:
            parts[i] = parts[i].replace(name, md_name(name))
    return "".join(parts)


_CODE_SPAN = re.compile(r"(`[^`]*`)")


def md_code(value: object) -> str:
    """``value`` as inline code (e.g. a protocol name): its text on one line, a backtick in
    it replaced, so that it cannot end the code span and write Markdown after it
    (:func:`~emovox.serving.oneline.code_text`)."""
    return f"`{code_text(value) or ' '}`"


def card_markdown(text: str) -> str:
    """A MODEL_CARD.md as the page renders it: its headings, lists, tables, emphasis and
    code stay, but links, images (which make the browser fetch a URL), raw HTML, autolinks,
    footnotes, Streamlit's colour and badge directives and maths show as literal text (their
    brackets, ``<``, ``$`` and backslashes escaped), and bare URLs and e-mail addresses are
    not linked (:func:`unlinked`, outside the code blocks and code spans this can tell for
    sure: code links nothing); there ``&`` is written ``&amp;``, so that a character
    reference shows as written and spells no link. A model folder is data: a card from one
    may not fetch, link or format beyond plain Markdown. The bundled cards use none of the
    escaped characters and render as before; in a card's code, an escaped one shows its
    backslash."""
    text = re.sub(r"\r\n?", "\n", text)  # a lone CR ends a line too (CommonMark)
    escaped = "".join(f"\\{ch}" if ch in _CARD_SPECIALS else ch for ch in text)
    out, at = [], 0
    for start, end in _code_ranges(escaped):
        out += [_card_text(escaped[at:start]), escaped[start:end]]
        at = end
    return "".join(out) + _card_text(escaped[at:])


def _card_text(text: str) -> str:
    """A card's text outside its code: :func:`unlinked`, and ``&`` as ``&amp;`` so that a
    character reference (``&#104;ttps://``, ``www&#46;``, ``me&#64;host``) shows as written
    instead of becoming, after the joiner went in, the autolink literal it spells."""
    return unlinked(text).replace("&", "&amp;")


# --------------------------------------------------------------------------------------------
# Where a card's code is: only what is certain (elsewhere the joiner goes in, harmless)
# --------------------------------------------------------------------------------------------

#: a fence at column 0: a backtick fence's info string holds no backtick
_FENCE = re.compile(r"(`{3,}|~{3,})([^`]*)$|(~{3,}).*$")
#: a list item's or block quote's marker at the start of a line
#: (a marker that ends its line starts an item too: ``-`` then the item's lines indented)
_CONTAINER = re.compile(r" {0,3}(?:>[ \t]?|[-+*](?:[ \t]|$)|\d{1,9}[.)](?:[ \t]|$))")
#: what starts a block of its own (it ends a paragraph, so its code spans), a table's
#: ``|`` and a directive's ``:`` included; tested on a line without its indentation
_BLOCK_START = re.compile(r"(?:>|[-+*](?:[ \t]|$)|\d{1,9}[.)](?:[ \t]|$)|#{1,6}(?:[ \t]|$)"
                          r"|`{3}|~{3}|[-=*_ \t]+$|:)|.*\|")
_ATX = re.compile(r"#{1,6}(?:[ \t]|$)")


def _indent(line: str) -> int:
    """Columns of ``line``'s leading whitespace (tab stops every 4)."""
    col = 0
    for ch in line:
        if ch == "\t":
            col += 4 - col % 4
        elif ch == " ":
            col += 1
        else:
            break
    return col


def _code_lines(lines: list[str]) -> list[bool]:
    """Per line: in a top-level fenced code block (opened at column 0) or an indented one
    (after a blank line that follows a paragraph, heading or code at the top level, in no
    list or quote). None once a fence is opened elsewhere (indented, in a list item or a
    quote): where that one ends depends on its container, which is not told here."""
    code = [False] * len(lines)
    fence: tuple[str, int] | None = None
    trusted = clean = blank = True
    indented = False
    for k, line in enumerate(lines):
        if fence:
            code[k] = True
            char, n = fence
            if re.fullmatch(rf" {{0,3}}{re.escape(char)}{{{n},}}[ \t]*", line):
                fence, clean = None, True
            blank = False
            continue
        if not line.strip(" \t"):  # (a line of other spaces, e.g. U+00A0, is no blank one)
            code[k], blank = indented, True
            continue
        if _indent(line) >= 4 and trusted and (indented or blank and clean):
            code[k] = indented = True
            blank = False
            continue
        indented = False
        if trusted and (m := _FENCE.match(line)):
            fence = ((m[1] or m[3])[0], len(m[1] or m[3]))
            code[k], blank = True, False
            continue
        if re.match(r"[ \t>*+\-\d.)]*(?:```|~~~)", line):  # a fence in a container
            trusted = False
        clean = (_indent(line) == 0 if blank else clean) and not _CONTAINER.match(line)
        blank = False
    return code


def _simple(group: list[str]) -> bool:
    """Whether the lines ``group`` (no blank one between) are one paragraph's (or one
    heading's) text, so that its code spans pair as GFM pairs them: no line in it starts
    another block or a table row."""
    rest = group[0]
    if _indent(rest) >= 4:  # code, or text: not told here
        return False
    while m := _CONTAINER.match(rest):
        rest = rest[m.end():]
    if not rest or rest[0] in " \t":
        return False
    if _ATX.match(rest):
        return len(group) == 1 and "|" not in rest
    return not any(_BLOCK_START.match(line.lstrip(" \t")) for line in [rest, *group[1:]])


def _spans(text: str) -> list[tuple[int, int]]:
    """The contents of the code spans of one paragraph's ``text`` (CommonMark: a backtick
    run opens one closed by the next run of as many; one with none is literal). No backtick
    in a card is escaped: its backslashes are doubled."""
    runs = [(m.start(), m.end()) for m in re.finditer(r"`+", text)]
    by_length: dict[int, list[int]] = defaultdict(list)
    for k, (s, e) in enumerate(runs):
        by_length[e - s].append(k)
    spans, k = [], 0
    while k < len(runs):
        same = by_length[runs[k][1] - runs[k][0]]
        nxt = bisect.bisect_right(same, k)
        if nxt == len(same):
            k += 1
            continue
        spans.append((runs[k][1], runs[same[nxt]][0]))
        k = same[nxt] + 1
    return spans


def _code_ranges(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` of the code in ``text`` (a card, escaped), in order."""
    lines = text.split("\n")
    code = _code_lines(lines)
    ranges: list[tuple[int, int]] = []
    group: list[int] = []  # lines of the current paragraph
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    for k in range(len(lines) + 1):
        if k < len(lines) and not code[k] and lines[k].strip(" \t"):
            group.append(k)
            continue
        if group and _simple([lines[i] for i in group]):
            at = starts[group[0]]
            joined = "\n".join(lines[i] for i in group)
            ranges += [(at + s, at + e) for s, e in _spans(joined)]
        group = []
        if k < len(lines) and code[k]:
            ranges.append((starts[k], starts[k] + len(lines[k])))
    return ranges
