"""Controller-side reports as text: the Jinja2 templates of the project's top-level ``templates/``,
rendered by one environment.

``StrictUndefined``: a field a template names that the data lacks is an error, never an empty line
in a report; HTML templates (``*.html.j2``) are autoescaped. The data a template gets is built by
the wing that owns it (:mod:`overflyt.cutover.report`, :mod:`overflyt.precheck.report`); JSON,
JUnit and CTRF stay data writers there, not templates.

Labels of the reports people read are in ``templates/i18n/<lang>.yml`` (:func:`labels`): the language
``--lang`` asks for, else ``$OVERFLYT_LANG``, else Danish (:func:`default_lang`). Times are shown in
Europe/Copenhagen with their offset (the ``local`` filter), and an HTML report becomes a PDF through
headless Chromium's print to PDF (:func:`html_to_pdf`).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import yaml

from overflyt.errors import OverflytError, UsageError
from overflyt.project import find_project

TIMEZONE = ZoneInfo("Europe/Copenhagen")
NONE = "\u2013"  # an en dash: what a report shows for a value that is not there
DEFAULT_LANG = "da"
LANG_ENV = "OVERFLYT_LANG"  # the language of reports when no --lang is given (default: DEFAULT_LANG)
CHROMIUM_ENV = "OVERFLYT_CHROMIUM"  # the browser that prints PDFs; default: chromium on PATH
# Headless Chromium that talks to nobody: no first-run, sync, component updates or QUIC, a fresh profile.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip

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
    env.filters["local"] = local_time
    env.filters["seconds"] = seconds_text
    return env


def render(template: str, directory: Path | None = None, **context: Any) -> str:
    """``templates/<template>`` of the project (or of ``directory``) rendered with ``context``."""
    folder = directory or find_project() / "templates"
    return environment(folder).get_template(template).render(**context)


def local_time(value: datetime | str | None) -> str:
    """A moment in Europe/Copenhagen with its offset, ``2026-12-06 10:37:12 +01:00`` (a time without
    an offset is UTC, as the run records write it); :data:`NONE` for none."""
    if value is None or value == "":
        return NONE
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(TIMEZONE)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}"


def seconds_text(value: float | int | None) -> str:
    """A duration for people: ``42.5 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if value is None:
        return NONE
    total = float(value)
    if total < 60:
        return f"{total:.1f} s"
    minutes, secs = divmod(round(total), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def languages(directory: Path | None = None) -> list[str]:
    """The languages reports can be written in: one ``templates/i18n/<lang>.yml`` each."""
    folder = (directory or find_project() / "templates") / "i18n"
    return sorted(p.stem for p in folder.glob("*.yml"))


def default_lang() -> str:
    """The language of reports when none is asked for: ``$OVERFLYT_LANG``, else :data:`DEFAULT_LANG`."""
    return os.environ.get(LANG_ENV) or DEFAULT_LANG


def named(name: str | None, ident: str) -> str:
    """What a report calls a site or municipality: ``Grenaa Rådhus (grenaa-raadhus)``; the id alone
    when the name is not known (or is the id)."""
    return f"{name} ({ident})" if name and name != ident else ident


def labels(lang: str = DEFAULT_LANG, directory: Path | None = None) -> dict[str, Any]:
    """The labels of ``templates/i18n/<lang>.yml``; an unknown language is a UsageError naming the known."""
    folder = (directory or find_project() / "templates") / "i18n"
    path = folder / f"{lang}.yml"
    if not re.fullmatch(r"[a-z]{2}(-[A-Z]{2})?", lang) or not path.is_file():
        raise UsageError(f"unknown language {lang!r}: reports are written in {', '.join(languages(directory))}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise OverflytError(f"{path}: the labels must be a YAML mapping")
    return data


def chromium() -> str:
    """The Chromium binary that prints PDFs: $OVERFLYT_CHROMIUM, else ``chromium`` on PATH."""
    found = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise OverflytError(
            "no Chromium to print the PDF with: install Debian's chromium (make deps), set "
            f"${CHROMIUM_ENV}, or write --format html"
        )
    return found


def html_to_pdf(html: Path, pdf: Path, timeout_s: int = 120) -> Path:
    """Print ``html`` (a self-contained file) to ``pdf`` with headless Chromium, in a fresh profile."""
    with tempfile.TemporaryDirectory(prefix="overflyt-chromium-") as profile:
        command = [
            chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}", html.resolve().as_uri(),
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise OverflytError(f"Chromium did not print {html} to PDF within {timeout_s} s") from exc
    if done.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise OverflytError(f"Chromium could not print {html} to PDF (exit {done.returncode}): {tail}")
    return pdf
