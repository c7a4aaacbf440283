"""MkDocs hook: render the Sphinx roles of the docstrings (``:class:`~a.b.C```) as code.

mkdocstrings renders docstrings as Markdown, where ``:class:`X``` would show the role's name;
this keeps the code span, and for ``~a.b.C`` shows ``C`` as Sphinx does.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|attr|mod|exc|data|obj|const):<code>(~?)([^<]*)</code>")


def _code(match: re.Match[str]) -> str:
    tilde, target = match.group(1), match.group(2)
    return f"<code>{target.rsplit('.', 1)[-1] if tilde else target}</code>"


def on_page_content(html: str, **kwargs: Any) -> str:
    return _ROLE.sub(_code, html)
