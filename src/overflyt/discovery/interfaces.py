"""A device's interfaces from its show commands, parsed by maintained parsers (TextFSM).

The ``net_facts`` role reads them with ``ansible.utils.cli_parse`` (``net_facts_interfaces``):
which command and which parser per platform is :data:`PARSERS`, the role's own
``vars/main.yml`` (read here, one definition for both). IOS's ``show ip interface brief`` is
parsed by ntc-templates' ``cisco_ios`` template; what ntc-templates has no template for — FRR's
``show interface brief``, AOS-CX's ``show ip interface brief``, the interface sections of an IOS
``show running-config`` (ntc-templates' refuses every other line of a whole configuration) — by
the project's TextFSM templates in ``roles/net_facts/templates/<os>_<command>.textfsm``, the path
cli_parse looks in.

:func:`from_parsed` turns the parsed rows into the estate's interfaces (name, up or down, addresses
with their prefix length):

* FRR: every interface listed, with its addresses (each subnet's primary; ``+`` marks dropped).
* IOS: every interface ``show ip interface brief`` lists, up when both its status and protocol
  are up; its addresses from the running configuration's ``ip address A MASK [secondary]`` lines
  (the brief has no mask), primary first.
* AOS-CX: every interface ``show ip interface brief`` lists, up when link and admin are up; its
  address as listed (with prefix), none for ``No Address``.

:func:`parse` runs the same parsers in Python (discovery's own reading and the unit tests).
"""

from __future__ import annotations

import re
from functools import cache
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

import yaml

from overflyt.errors import OverflytError

ROLE = "net_facts"


class NotParsed(OverflytError):
    """A device's answer the parser does not understand; the message names the command and line."""


@cache
def parsers(project: Path) -> dict[str, dict[str, Any]]:
    """The role's parsers per platform: ``{platform: {"brief": {command, parser}, "config": ...}}``."""
    data = yaml.safe_load((project / "roles" / ROLE / "vars" / "main.yml").read_text(encoding="utf-8"))
    found: dict[str, dict[str, Any]] = data["__net_facts_parsers"]
    return found


def parse(project: Path, platform: str, which: str, text: str) -> list[dict[str, Any]]:
    """``text`` (the answer to the platform's ``which`` command: ``brief`` or ``config``) parsed as
    the role's cli_parse parses it; rows with lower-case keys. NotParsed names the line refused."""
    import textfsm
    from ntc_templates.parse import ParsingException, parse_output

    spec = parsers(project)[platform][which]
    parser = spec["parser"]
    command = str(parser.get("command") or spec["command"])
    try:
        if parser["name"] == "ansible.netcommon.ntc_templates":
            rows: list[dict[str, Any]] = parse_output(platform=parser["os"], command=command, data=text)
            return [{k.lower(): v for k, v in row.items()} for row in rows]
        template = project / "roles" / ROLE / "templates" / f"{parser['os']}_{command.replace(' ', '_')}.textfsm"
        with template.open(encoding="utf-8") as handle:
            fsm = textfsm.TextFSM(handle)
        table = fsm.ParseText(text)
        return [{h.lower(): v for h, v in zip(fsm.header, row, strict=True)} for row in table]
    except (ParsingException, textfsm.Error) as exc:
        raise NotParsed(_refused(command, text, exc)) from None


def _refused(command: str, text: str, exc: Exception) -> str:
    found = re.search(r"Input Line: (.*)$", str(exc), re.S)
    if found:
        line = found.group(1).rstrip("\n")
        number = next((n for n, x in enumerate(text.splitlines(), 1) if x == line), None)
        if number is not None:
            return f"{command}: line {number} not understood: {line.strip()!r}"
    return f"{command}: not understood: {str(exc).strip()}"


def from_parsed(
    platform: str, brief: list[dict[str, Any]], config: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The interfaces (``{"name", "state", "addresses"}``) of rows parsed from the platform's brief
    listing and, for IOS, its running configuration. Keys are read case-blind (cli_parse's textfsm
    parser keeps the template's upper-case names; ntc-templates lower-cases them)."""
    rows = [{str(k).lower(): v for k, v in row.items()} for row in brief]
    if platform == "frr":
        return [{"name": r["name"], "state": r["status"], "addresses": list(r["addresses"])} for r in rows]
    if platform == "aoscx":
        return [
            {
                "name": r["interface"],
                "state": "up" if (r["link"], r["admin"]) == ("up", "up") else "down",
                "addresses": [r["ip_address"]] if "/" in str(r["ip_address"]) else [],
            }
            for r in rows
        ]
    if platform == "ios":
        sections = {
            str(s["interface"]): list(s["addresses"])
            for s in ({str(k).lower(): v for k, v in row.items()} for row in config or [])
        }
        return [
            {
                "name": r["interface"],
                "state": "up" if (r["status"], r["proto"]) == ("up", "up") else "down",
                "addresses": _ios_addresses(sections.get(str(r["interface"]), [])),
            }
            for r in rows
        ]
    raise NotParsed(f"no interface parser for platform {platform!r}")


def _ios_addresses(lines: list[str]) -> list[str]:
    """``A MASK [secondary]`` as ``A/LEN``, the primary first."""
    parsed = [(line.split()[0], line.split()[1], line.endswith("secondary")) for line in lines]
    ordered = [p for p in parsed if not p[2]] + [p for p in parsed if p[2]]
    return [str(IPv4Interface(f"{address}/{mask}")) for address, mask, _ in ordered]
