"""The Ansible inventory beside a plan, read by Ansible itself (issue 17): every layout Ansible
accepts (``host_vars/x.yaml``, ``group_vars/<group>/`` directories, INI or YAML hosts files),
Ansible's variable precedence, inline ``!vault`` values decrypted with the usual password sources
(``ANSIBLE_VAULT_PASSWORD_FILE``, ``ANSIBLE_VAULT_IDENTITY_LIST`` vault ids, ``ansible.cfg``; and
overflyt's ``OVERFLYT_VAULT_PASSWORD_FILE``), and where Ansible read each variable (file, line).

Ansible's inventory code keeps process-wide state (the vault secrets can be set once per
process), so :func:`read` runs it in a child process (``python -m overflyt.plan.ansible_inventory
SOURCE``, about a second) and caches the answer per inventory files and vault settings: a command
reads the inventory once, however often it loads its plan. :func:`main` is that child.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SOURCES = ("hosts.yml", "hosts.yaml", "hosts.ini", "hosts")
_MAGIC = frozenset({"inventory_file", "inventory_dir", "inventory_hostname", "inventory_hostname_short", "group_names"})
_VAULT_ENV = (
    "ANSIBLE_VAULT_PASSWORD_FILE",
    "ANSIBLE_VAULT_IDENTITY_LIST",
    "ANSIBLE_CONFIG",
    "OVERFLYT_VAULT_PASSWORD_FILE",
)


@dataclass(frozen=True)
class HostVars:
    """One host as Ansible sees it: its variables after precedence, where each was set, and which
    were vault-encrypted (secrets: never written in clear)."""

    values: dict[str, Any]
    origins: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    secret: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AnsibleInventory:
    source: Path
    hosts: dict[str, HostVars]
    groups: dict[str, tuple[str, ...]]
    error: str | None = None  # Ansible's own message when it could not read the inventory
    error_at: tuple[str, int | None] | None = None  # the file and line it names


def source_of(directory: Path) -> Path | None:
    """The inventory file beside a plan: the first of :data:`SOURCES` that exists."""
    return next((directory / name for name in SOURCES if (directory / name).is_file()), None)


_CACHE: dict[tuple[Any, ...], AnsibleInventory] = {}


def _stamp(source: Path) -> tuple[Any, ...]:
    """What Ansible reads for ``source``: the file, ``group_vars/`` and ``host_vars/`` beside it."""
    files = [source, *(p for d in ("group_vars", "host_vars") for p in sorted((source.parent / d).rglob("*")))]
    stats = tuple((str(p), s.st_mtime_ns, s.st_size) for p in files if p.is_file() and (s := p.stat()))
    return (str(source.resolve()), stats, tuple(os.environ.get(k) for k in _VAULT_ENV))


def read(source: Path) -> AnsibleInventory:
    """Ansible's reading of the inventory ``source`` (cached while its files and vault settings
    stay the same)."""
    key = _stamp(source)
    if key not in _CACHE:
        _CACHE[key] = _read(source)
    return _CACHE[key]


def _read(source: Path) -> AnsibleInventory:
    env = dict(os.environ)
    if not env.get("ANSIBLE_VAULT_PASSWORD_FILE") and env.get("OVERFLYT_VAULT_PASSWORD_FILE"):
        env["ANSIBLE_VAULT_PASSWORD_FILE"] = env["OVERFLYT_VAULT_PASSWORD_FILE"]
    env.setdefault("ANSIBLE_NOCOLOR", "1")
    env["ANSIBLE_DEPRECATION_WARNINGS"] = "0"
    env["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "1"  # a malformed hosts file is an error, not "no hosts"
    env["ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "overflyt.plan.ansible_inventory", str(source)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError:
        last = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        return AnsibleInventory(source, {}, {}, error=f"Ansible could not read it: {last}")
    hosts = {
        name: HostVars(
            values=h["values"],
            origins={k: (str(v[0]), v[1]) for k, v in h["origins"].items()},
            secret=frozenset(h["secret"]),
        )
        for name, h in data.get("hosts", {}).items()
    }
    groups = {g: tuple(members) for g, members in data.get("groups", {}).items()}
    at = data.get("at")
    return AnsibleInventory(
        source, hosts, groups, error=data.get("error"), error_at=(str(at[0]), at[1]) if at else None
    )


# -- the child process: Ansible's own code ------------------------------------------------------------


def _listing(source: str) -> dict[str, Any]:  # pragma: no cover - runs in the child process
    from ansible import constants as C
    from ansible.cli import CLI
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    # Ansible reads group_vars/ and host_vars/ beside the inventory and in the loader's base
    # directory, the working directory by default: another project's group_vars/ there must not
    # leak into this municipality's inventory
    loader.set_basedir(os.path.dirname(os.path.abspath(source)))
    password_file = C.config.get_config_value("DEFAULT_VAULT_PASSWORD_FILE")
    secrets = CLI.setup_vault_secrets(
        loader,
        vault_ids=C.config.get_config_value("DEFAULT_VAULT_IDENTITY_LIST"),
        vault_password_files=[password_file] if password_file else [],
        ask_vault_pass=False,
        auto_prompt=False,
    )
    loader.set_vault_secrets(secrets)
    try:
        inventory = InventoryManager(loader=loader, sources=[source])
        return _hosts(inventory, VariableManager(loader=loader, inventory=inventory), source)
    except AnsibleError as exc:
        return _said(exc)


def _said(exc: Any) -> dict[str, Any]:  # pragma: no cover - the child
    """Ansible's message, with the file and line it names (a malformed group_vars file, say)."""
    from ansible._internal._datatag._tags import Origin

    message = str(exc.message).removesuffix(".")
    origin = None
    cause = exc
    while cause is not None and origin is None:  # the error a vars plugin raises wraps the parser's
        obj = getattr(cause, "obj", None)
        origin = obj if isinstance(obj, Origin) else Origin.get_tag(obj)
        cause = cause.__cause__ or cause.__context__
    if origin is not None and origin.path:
        return {"error": message, "at": [origin.path, origin.line_num]}
    return {"error": message}


def _hosts(inventory: Any, manager: Any, source: str) -> dict[str, Any]:  # pragma: no cover - the child
    from ansible._internal._datatag._tags import Origin
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import EncryptedString

    def plain(value: Any, where: str) -> tuple[Any, bool]:
        if isinstance(value, EncryptedString):
            return str(value), True
        if isinstance(value, dict):
            out = {str(k): plain(v, where) for k, v in value.items()}
            return {k: v[0] for k, v in out.items()}, any(v[1] for v in out.values())
        if isinstance(value, list | tuple):
            items = [plain(v, where) for v in value]
            return [i[0] for i in items], any(i[1] for i in items)
        if isinstance(value, bool | int | float | str) or value is None:
            return json.loads(json.dumps(value)), False
        return str(value), False

    hosts: dict[str, Any] = {}
    for host in inventory.get_hosts():
        own = set(host.get_vars())
        for group in host.get_groups():
            own |= set(group.get_vars())
        values: dict[str, Any] = {}
        origins: dict[str, Any] = {}
        secret: list[str] = []
        for key, value in manager.get_vars(host=host, include_hostvars=False).items():
            origin = Origin.get_tag(value)
            if origin is not None and origin.path:
                origins[key] = [origin.path, origin.line_num]
            if key in _MAGIC or (origin is None and key not in own):
                continue  # a magic variable, not the inventory's
            try:
                values[key], is_secret = plain(value, key)
            except AnsibleError as exc:
                return {
                    "error": f"{key} of {host.name}: a vault value that could not be decrypted "
                    f"({exc.message}); give its password with ANSIBLE_VAULT_PASSWORD_FILE or vault ids "
                    "(ANSIBLE_VAULT_IDENTITY_LIST)",
                    "at": [origin.path, origin.line_num] if origin and origin.path else [source, None],
                }
            if is_secret:
                secret.append(key)
        hosts[host.name] = {"values": values, "origins": origins, "secret": secret}
    groups = {g.name: [h.name for h in g.get_hosts()] for g in inventory.groups.values()}
    return {"hosts": hosts, "groups": groups}


def main() -> None:  # pragma: no cover - runs in the child process
    print(json.dumps(_listing(sys.argv[1])))


if __name__ == "__main__":  # pragma: no cover
    main()
