"""A string from a model folder (its name, protocol, a label...) as one line of plain text.

The one home of that cleaning: the web app's Markdown (:mod:`emovox.web.modeltext`) and the
service's wording (:func:`emovox.serving.service.cv_title`) both use it. A new line could
start a heading, a list or a table; a format character (category Cf: a bidi override such as
``U+202E``, a zero-width one) could make a name show other text than it holds; a lone
surrogate (``json.loads`` accepts ``"\\ud800"``) cannot be encoded as UTF-8 and broke the page.
"""

from __future__ import annotations

import unicodedata

__all__ = ["code_text", "one_line"]

#: per Unicode category: what a character of it becomes (others stay as they are)
_CATEGORIES = {"Cc": " ", "Zl": " ", "Zp": " ", "Cf": "", "Cs": "\ufffd"}


def one_line(value: object) -> str:
    """``value`` as one line: control characters and line breaks as spaces, runs of
    whitespace as one, format characters (category Cf) left out and lone surrogates
    (category Cs) as U+FFFD REPLACEMENT CHARACTER."""
    text = "".join(_CATEGORIES.get(unicodedata.category(ch), ch) for ch in str(value))
    return " ".join(text.split())


def code_text(value: object) -> str:
    """``value`` for inside a Markdown code span: :func:`one_line`, a backtick as ``'`` so
    that it cannot end the span and write Markdown after it."""
    return one_line(value).replace("`", "'")
