"""Sessions on a vCenter: connecting, TLS trust, login, logout, and the translation of what
pyVmomi, sockets and TLS raise into overflyt's errors.

* :func:`connect` / :func:`disconnect` (or ``with connect(...) as session``) — one logged-in
  session on one vCenter, trusted the way its :class:`VCenterConnection` says (CA file, SHA-256
  pin, system CA store or an explicit insecure override), failing closed: the TLS handshake is
  completed and checked before any credentials leave this machine;
* :func:`boundary` — the context every call on a session runs in: connectivity, TLS and login
  problems become :class:`~overflyt.errors.ProviderUnreachable` (one sentence naming the endpoint
  and the reason; never a secret), a refusal by vCenter the error class the caller names.

This module, :mod:`.collector`, :mod:`.reads` and :mod:`.changes` are where pyVmomi is imported;
its dynamic types are ``Any`` to the type checker and stay inside this package.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from pyVim import connect as _pyvim_connect
from pyVmomi import vim as _vim
from pyVmomi import vmodl as _vmodl

from overflyt.errors import OverflytError, ProviderUnreachable
from overflyt.precheck.facts import TLSMode
from overflyt.providers.vsphere.models import DEFAULT_TIMEOUT_S, VCenterConnection

log = logging.getLogger(__name__)

# pyVmomi's dynamic types are Any to the type checker; this package is where they stay.
vim: Any = _vim
vmodl: Any = _vmodl
SmartConnect: Any = _pyvim_connect.SmartConnect
Disconnect: Any = _pyvim_connect.Disconnect

# OpenSSL verify codes (X509_V_ERR_*) that mean "not issued by a CA we trust".
_UNKNOWN_CA = {2, 18, 19, 20, 21, 27}
_HOST_MISMATCH = {62, 64}


class LoginFailed(ProviderUnreachable):
    """The vCenter answered but refused the credentials (vim.fault.InvalidLogin)."""


def _fingerprint(der: bytes, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm, der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


class _FingerprintMismatch(ssl.SSLError):
    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"certificate fingerprint mismatch (expected {expected}, got {actual})")
        self.expected = expected
        self.actual = actual


class _Socket(ssl.SSLSocket):
    """Every TLS connection of a session: bounded by the timeout, pin checked after the handshake."""

    def do_handshake(self, block: bool = False) -> None:
        context = self.context
        if not isinstance(context, _Context):  # pragma: no cover - only _Context creates us
            raise ssl.SSLError("overflyt TLS socket created outside its context")
        if self.gettimeout() is None:
            self.settimeout(context.timeout_s)
        super().do_handshake(block)
        der = self.getpeercert(binary_form=True)
        if der is None:
            raise ssl.SSLError("the server presented no certificate")
        context.peer_der = der
        if context.pin is not None:
            actual = _fingerprint(der)
            if actual != context.pin:
                raise _FingerprintMismatch(context.pin, actual)


class _Context(ssl.SSLContext):
    """An SSL context that also pins a SHA-256 fingerprint on every connection it makes (not only
    when chain verification fails, as pyVmomi's own ``thumbprint`` does), bounds every handshake
    and read by the endpoint's timeout and remembers the last peer certificate."""

    sslsocket_class = _Socket
    pin: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    peer_der: bytes | None = None


def _context(endpoint: VCenterConnection) -> _Context:
    context = _Context(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.timeout_s = endpoint.timeout_s
    if endpoint.insecure or (endpoint.thumbprint and not endpoint.ca_file):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif endpoint.ca_file:
        try:
            context.load_verify_locations(cafile=endpoint.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ProviderUnreachable(
                f"{endpoint.where}: cannot read its CA file {endpoint.ca_file}: {_os_reason(exc)}"
            ) from exc
    else:
        context.load_default_certs()
    context.pin = endpoint.thumbprint
    return context


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower() if exc.strerror[:1].isupper() and exc.strerror[1:2].islower() else exc.strerror
    return str(exc) or type(exc).__name__


def _tls_reason(exc: ssl.SSLCertVerificationError, endpoint: VCenterConnection) -> str:
    code = exc.verify_code
    detail = exc.verify_message or exc.reason or str(exc)
    if code in _HOST_MISMATCH:
        return f"hostname mismatch: the certificate is not valid for {endpoint.hostname} ({detail})"
    if code in _UNKNOWN_CA:
        store = f"CA file {endpoint.ca_file}" if endpoint.ca_file else "the system CA store"
        return f"unknown CA: the certificate is not issued by a CA in {store} ({detail})"
    if code == 10:
        return f"the certificate has expired ({detail})"
    return str(detail)


def _handshake(endpoint: VCenterConnection, context: _Context) -> bytes:
    """Connect and complete the TLS handshake once, before any credentials leave this machine."""
    where = endpoint.where
    try:
        with (
            socket.create_connection((endpoint.hostname, endpoint.port), timeout=endpoint.timeout_s) as raw,
            context.wrap_socket(raw, server_hostname=endpoint.hostname) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except _FingerprintMismatch as exc:
        raise ProviderUnreachable(
            f"{where}: TLS verification failed: fingerprint mismatch (expected {exc.expected}, got {exc.actual})"
        ) from exc
    except ssl.SSLCertVerificationError as exc:
        raise ProviderUnreachable(f"{where}: TLS verification failed: {_tls_reason(exc, endpoint)}") from exc
    except ssl.SSLError as exc:
        raise ProviderUnreachable(f"{where}: TLS handshake failed: {exc.reason or exc}") from exc
    except ConnectionRefusedError as exc:
        raise ProviderUnreachable(f"{where}: connection refused") from exc
    except TimeoutError as exc:
        raise ProviderUnreachable(f"{where}: no answer within {endpoint.timeout_s:g} s") from exc
    except socket.gaierror as exc:
        raise ProviderUnreachable(f"{where}: cannot resolve {endpoint.hostname}: {exc.strerror}") from exc
    except OSError as exc:
        raise ProviderUnreachable(f"{where}: cannot connect: {_os_reason(exc)}") from exc
    if der is None:
        raise ProviderUnreachable(f"{where}: TLS verification failed: the server presented no certificate")
    return der


class VSphereSession:
    """A logged-in session on one vCenter. Use as a context manager or call :func:`disconnect`."""

    def __init__(self, endpoint: VCenterConnection, si: Any, content: Any, certificate: bytes) -> None:
        self.endpoint = endpoint
        self.si = si
        self.content = content
        self.certificate_sha256 = _fingerprint(certificate)
        self.certificate_sha1 = _fingerprint(certificate, "sha1")
        self.closed = False

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def tls(self) -> TLSMode:
        return self.endpoint.tls

    @property
    def version(self) -> str:
        return str(self.content.about.version)

    @property
    def instance_uuid(self) -> str:
        return str(self.content.about.instanceUuid)

    def __enter__(self) -> VSphereSession:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        disconnect(self)

    def __repr__(self) -> str:
        return f"VSphereSession({self.name!r}, {self.url!r}, tls={self.tls!r})"


def connect(endpoint: VCenterConnection) -> VSphereSession:
    """Log in to ``endpoint``. Raises ProviderUnreachable (LoginFailed for refused credentials)."""
    where = endpoint.where
    if endpoint.insecure:
        log.warning("%s: TLS certificate NOT verified (explicit insecure override)", where)
    context = _context(endpoint)
    certificate = _handshake(endpoint, context)
    try:
        si = SmartConnect(
            host=endpoint.hostname,
            port=endpoint.port,
            user=endpoint.username,
            pwd=endpoint.password.get_secret_value(),
            sslContext=context,
            httpConnectionTimeout=endpoint.timeout_s,
        )
        content = si.RetrieveContent()
    except vim.fault.InvalidLogin as exc:
        raise LoginFailed(f"{where}: login failed for user {endpoint.username}: {exc.msg}") from exc
    except _FingerprintMismatch as exc:
        raise ProviderUnreachable(
            f"{where}: TLS verification failed: fingerprint mismatch (expected {exc.expected}, got {exc.actual})"
        ) from exc
    except ssl.SSLCertVerificationError as exc:
        raise ProviderUnreachable(f"{where}: TLS verification failed: {_tls_reason(exc, endpoint)}") from exc
    except TimeoutError as exc:
        raise ProviderUnreachable(f"{where}: no answer within {endpoint.timeout_s:g} s") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise ProviderUnreachable(f"{where}: connection failed: {_os_reason(exc)}") from exc
    except vmodl.MethodFault as exc:
        raise ProviderUnreachable(f"{where}: vCenter refused the session: {fault_text(exc)}") from exc
    except Exception as exc:  # pyVim raises a plain Exception for "not a VIM server"
        raise ProviderUnreachable(f"{where}: not a vSphere API endpoint: {exc}") from exc
    session = VSphereSession(endpoint, si, content, context.peer_der or certificate)
    log.info("%s: logged in as %s (vCenter %s, TLS %s)", where, endpoint.username, session.version, session.tls)
    return session


def disconnect(session: VSphereSession) -> None:
    """Log out; errors on the way out are logged, not raised."""
    if session.closed:
        return
    session.closed = True
    try:
        Disconnect(session.si)
    except (vmodl.MethodFault, OSError, http.client.HTTPException) as exc:
        log.info("%s: logout failed (%s); the session expires on its own", session.endpoint.where, exc)


def fault_text(exc: BaseException) -> str:
    """A vCenter fault in a few words: its type and its message."""
    msg = getattr(exc, "msg", None) or getattr(exc, "localizedMessage", None)
    return f"{type(exc).__name__.rsplit('.', 1)[-1]}: {msg}" if msg else type(exc).__name__.rsplit(".", 1)[-1]


@contextmanager
def boundary(session: VSphereSession, doing: str, refused: type[OverflytError] = ProviderUnreachable) -> Iterator[None]:
    """Translate what pyVmomi and the network raise while ``doing`` something on ``session``."""
    where = session.endpoint.where
    try:
        yield
    except vim.fault.NotAuthenticated as exc:
        raise ProviderUnreachable(f"{where}: the session is no longer logged in while {doing}") from exc
    except TimeoutError as exc:
        raise ProviderUnreachable(f"{where}: no answer within {session.endpoint.timeout_s:g} s while {doing}") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise ProviderUnreachable(f"{where}: connection lost while {doing}: {_os_reason(exc)}") from exc
    except vmodl.MethodFault as exc:
        raise refused(f"{where}: vCenter refused {doing}: {fault_text(exc)}") from exc
