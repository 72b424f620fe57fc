"""Controller-side reports as text: the Jinja2 templates of the project's top-level ``templates/``,
rendered by one environment.

``StrictUndefined``: a field a template names that the data lacks is an error, never an empty line
in a report; HTML templates (``*.html.j2``) are autoescaped. The data a template gets is built by
the wing that owns it (:mod:`overflyt.cutover.report`, :mod:`overflyt.precheck.report`); JSON,
JUnit and CTRF stay data writers there, not templates.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import jinja2

from overflyt.project import find_project

# Characters a terminal or a markdown table must not get raw (a device banner's ESC sequences, BEL).
_CONTROL = re.compile("[\u0000-\u001f\u007f-\u009f]")


def one_line(text: str) -> str:
    """One line, control characters made harmless."""
    return _CONTROL.sub("\ufffd", " ".join(str(text).split()))


def md_cell(text: str) -> str:
    """A markdown table cell: one line, pipes escaped, HTML special characters as entities."""
    text = one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|")


@functools.lru_cache(maxsize=4)
def environment(directory: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md_cell"] = md_cell
    env.filters["one_line"] = one_line
    return env


def render(template: str, directory: Path | None = None, **context: Any) -> str:
    """``templates/<template>`` of the project (or of ``directory``) rendered with ``context``."""
    folder = directory or find_project() / "templates"
    return environment(folder).get_template(template).render(**context)
