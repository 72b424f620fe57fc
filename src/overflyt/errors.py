"""The one error family of overflyt.

Every error a user can cause or meet carries a message that names the place and the reason; the
CLI prints it and exits with the error's exit code. Third-party errors are translated at the
boundary (``raise ... from exc``) so nothing else reaches the user as a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Exit codes across the whole CLI.
EXIT_OK = 0
EXIT_FAILED = 1  # checks or migration failed (and were rolled back)
EXIT_BAD_INPUT = 2  # bad input or usage
EXIT_ROLLBACK_FAILED = 3  # rollback itself failed: a human must act


class OverflytError(Exception):
    """Base of every error overflyt raises on purpose."""

    exit_code: int = EXIT_FAILED


@dataclass(frozen=True)
class PlanIssue:
    """One thing wrong with a plan: where (file, line, field path), what value, and why."""

    file: str
    path: str
    reason: str
    line: int | None = None
    value: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {self.path}:" if self.path else ""
        value = f" (value: {self.value})" if self.value is not None else ""
        return f"{where}:{field} {self.reason}{value}"


class PlanInvalid(OverflytError):
    """The plan (or its inventory) cannot be used; every issue found is listed."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, issues: Sequence[PlanIssue]) -> None:
        self.issues = tuple(issues)
        count = len(self.issues)
        head = f"plan invalid: {count} error{'s' if count != 1 else ''}"
        super().__init__("\n".join([head, *(f"  {issue}" for issue in self.issues)]))


class UsageError(OverflytError):
    """A command was called with arguments that do not fit (unknown wave, missing file, ...)."""

    exit_code = EXIT_BAD_INPUT


class CredentialMissing(OverflytError):
    """A credentials reference resolved to nothing. The message names the reference, never a secret."""

    exit_code = EXIT_BAD_INPUT


class ProviderUnreachable(OverflytError):
    """A vCenter or device could not be reached or refused us (network, TLS, host key, login)."""

    exit_code = EXIT_FAILED


class PlaybookFailed(OverflytError):
    """An Ansible playbook failed; carries the hosts that failed."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, failed_hosts: Sequence[str] = ()) -> None:
        self.failed_hosts = tuple(failed_hosts)
        super().__init__(message)


class MigrationStepFailed(OverflytError):
    """One step of a migration (move a VM, power it, create its folder) failed or did not finish in
    time; the message names the VM, the step and vCenter's reason. Connectivity problems are
    :class:`ProviderUnreachable` instead."""

    exit_code = EXIT_FAILED


class RollbackFailed(OverflytError):
    """Rollback could not finish: the site is not as it was and a human must act."""

    exit_code = EXIT_ROLLBACK_FAILED
