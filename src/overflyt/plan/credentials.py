"""Resolves a plan's credentials references at run time.

A plan names a reference (``credentials: ndj-network``); the secret comes from an environment
variable, an ansible-vault file, or a Prefect Secret block. Secrets are held as
:class:`pydantic.SecretStr` so they print as ``**********``; error messages name the reference and
where it was looked for, never a value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import SecretStr

from overflyt.errors import CredentialMissing
from overflyt.plan.model import Plan, SecretRef

VAULT_PASSWORD_FILE_ENV = "OVERFLYT_VAULT_PASSWORD_FILE"


@dataclass(frozen=True)
class ResolvedCredential:
    reference: str
    username: str
    secret: SecretStr

    def __repr__(self) -> str:  # never show the secret, even in a debugger or a traceback
        return f"ResolvedCredential({self.reference!r}, username={self.username!r}, secret=**********)"


def resolve(plan: Plan, reference: str, plan_dir: Path) -> ResolvedCredential:
    """The username and secret of one credentials reference of the plan."""
    credential = plan.credentials.get(reference)
    if credential is None:
        raise CredentialMissing(f"credentials {reference!r}: not defined in the plan's credentials")
    secret = _secret(reference, credential.secret, plan_dir)
    return ResolvedCredential(reference, credential.username, SecretStr(secret))


def references(plan: Plan) -> list[str]:
    """Every credentials reference the plan uses, in first-use order."""
    names = [plan.source.vcenter.credentials, plan.target.vcenter.credentials]
    names += [d.credentials for d in plan.devices]
    names += [s.probe.ssh.credentials for s in plan.sites if s.probe is not None and s.probe.ssh is not None]
    return list(dict.fromkeys(names))


def resolve_all(plan: Plan, plan_dir: Path) -> dict[str, ResolvedCredential]:
    """Resolve every reference, reporting all that fail in one error."""
    resolved: dict[str, ResolvedCredential] = {}
    failures: list[str] = []
    for name in references(plan):
        try:
            resolved[name] = resolve(plan, name, plan_dir)
        except CredentialMissing as exc:
            failures.append(str(exc))
    if failures:
        raise CredentialMissing("\n".join(failures))
    return resolved


def _secret(reference: str, ref: SecretRef, plan_dir: Path) -> str:
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if not value:
            state = "is empty" if value == "" else "is not set"
            raise CredentialMissing(f"credentials {reference!r}: environment variable {ref.env} {state}")
        return value
    if ref.vault is not None:
        return _from_vault(reference, plan_dir / ref.vault.file, ref.vault.key)
    assert ref.prefect_block is not None  # SecretRef guarantees exactly one source
    return _from_prefect(reference, ref.prefect_block)


def _from_vault(reference: str, path: Path, key: str) -> str:
    from ansible.parsing.vault import AnsibleVaultError, VaultLib, VaultSecret

    password_file = os.environ.get(VAULT_PASSWORD_FILE_ENV)
    if not password_file:
        raise CredentialMissing(
            f"credentials {reference!r}: vault file {path} needs {VAULT_PASSWORD_FILE_ENV} to be set"
        )
    try:
        password = Path(password_file).read_bytes().strip()
        data = path.read_bytes()
    except OSError as exc:
        raise CredentialMissing(f"credentials {reference!r}: cannot read {exc.filename}: {exc.strerror}") from None
    try:
        plain = VaultLib([("default", VaultSecret(password))]).decrypt(data)
    except AnsibleVaultError:
        raise CredentialMissing(
            f"credentials {reference!r}: vault file {path} could not be decrypted with the given password"
        ) from None
    content = yaml.safe_load(plain)
    value = content.get(key) if isinstance(content, dict) else None
    if not isinstance(value, str) or not value:
        raise CredentialMissing(f"credentials {reference!r}: vault file {path} has no key {key!r}")
    return value


def _from_prefect(reference: str, block: str) -> str:
    from prefect.blocks.system import Secret

    try:
        loaded = Secret.load(block)  # a sync call outside an async context
    except (ValueError, RuntimeError, OSError) as exc:
        raise CredentialMissing(
            f"credentials {reference!r}: Prefect Secret block {block!r} could not be loaded ({type(exc).__name__})"
        ) from None
    value = loaded.get()  # type: ignore[union-attr]
    if not isinstance(value, str) or not value:
        raise CredentialMissing(f"credentials {reference!r}: Prefect Secret block {block!r} is empty")
    return value
