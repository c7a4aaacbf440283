"""Raw connection -> secured, multiplexed connection.

multistream-select picks the security protocol (``/noise`` or ``/tls/1.0.0``;
``/plaintext/2.0.0`` only when enabled), the handshake proves the remote's identity, then the
muxer: taken from the Noise early-negotiation extension or the TLS ALPN when both sides list
one of ours, else negotiated with multistream-select inside the secured channel. Our muxers,
in order: ``/yamux/1.0.0``, then ``/mplex/6.7.0`` for old peers that speak nothing else
(py-libp2p's demos, older js-libp2p); a dialer proposes yamux first, so yamux wins whenever
both sides have it (a listener takes the dialer's first choice, as multistream-select
says). ``MuxerOptions(mplex=False)`` offers yamux alone. The whole upgrade runs under one
timeout.

Which protocols: a listener accepts ``/noise`` and ``/tls/1.0.0`` (go-libp2p's default pair).
A dialer with the default list proposes ``/noise`` alone, lazily (below): every libp2p
implementation speaks Noise, and proposing a second protocol would cost every dial a round
trip (the answer must be read before the handshake starts). An explicit
``security_protocols`` list is proposed in its order (``["/tls/1.0.0"]`` dials TLS lazily).

Who runs it: for Noise and TLS (the defaults) one ``_core.conn.Connection.upgrading(...)``,
installed in the driver before the upgrade's first byte, runs everything in Rust (one call
per socket read, one per flush); this module is then policy only: which protocols, our Noise
payload and TLS certificate, the stage watchdog, and the answers to the connection's
signature checks and stages (:class:`_Hooks`). Plaintext and private networks (the PSK
protector) take the one fallback, :meth:`Upgrader._upgrade_fallback`: multistream-select and
the handshake driven from Python over the driver's raw phase.

Round trips: with a single security protocol the dialer selects it lazily (as rust-libp2p's
``V1Lazy``): the multistream header, ``/noise`` and Noise message 1 leave in ONE write and the
listener's answers are checked when message 2 is read; the listener answers with its header,
``/noise`` and message 2 in one write too (Rust queues them in one ``receive``; the fallback's
writes go through a :class:`_CorkedStream`, which sends them only when the next read has to
wait).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rapidp2p import _core
from rapidp2p._aio.connection import MuxedConnection
from rapidp2p.exceptions import (
    ConnectionClosedError,
    ConnectionGated,
    ConnectionRefusedByPeer,
    DecodeError,
    HandshakeError,
    Libp2pError,
    NegotiationError,
    PeerIdMismatch,
    ProtocolNotSupported,
    ResourceLimitError,
    UpgradeError,
)
from rapidp2p.protocols.multistream import (
    LazyNegotiatedStream,
    select_inbound,
    select_outbound,
    select_outbound_lazy,
)
from rapidp2p.protocols.multistream._timeout import run_with_timeout
from rapidp2p.security.noise import (
    NOISE_PROTOCOL_ID,
    NoiseIdentity,
    SecureSession,
    noise_inbound,
    noise_outbound,
    verify_identity,
)
from rapidp2p.security.plaintext import PLAINTEXT_PROTOCOL_ID, plaintext_handshake
from rapidp2p.security.tls import TLS_PROTOCOL_ID, TlsIdentity, tls_inbound, tls_outbound

if TYPE_CHECKING:
    from rapidp2p.crypto import PrivateKey, PublicKey
    from rapidp2p.peer import PeerId
    from rapidp2p.pnet import PreSharedKey

__all__ = ["MPLEX_PROTOCOL_ID", "YAMUX_PROTOCOL_ID", "MuxerOptions", "StageTimeouts", "Upgrader"]

YAMUX_PROTOCOL_ID = "/yamux/1.0.0"
MPLEX_PROTOCOL_ID: str = _core.conn.MPLEX_PROTOCOL_ID

log = logging.getLogger("rapidp2p.upgrader")


@dataclass
class MuxerOptions:
    """Arguments of ``_core.conn.Connection`` (yamux limits and windows, mplex's buffer cap);
    the defaults are the crates' own (``_core.conn.YAMUX_DEFAULTS``, ``MPLEX_DEFAULTS``).

    ``mplex``: also offer and accept ``/mplex/6.7.0``, after yamux. mplex has no flow
    control: the connection stops reading once half of ``mplex_max_buffered`` is unread (so
    a slow reader blocks the whole connection, as with go-mplex) and, after 5 s blocked,
    resets the stream holding the most; a stream whose unread bytes would still pass
    ``mplex_max_buffered`` is reset at once (possible only below 2 MiB: one socket read is
    up to 1 MiB). ``max_streams`` bounds both muxers.
    """

    max_streams: int = _core.conn.YAMUX_DEFAULTS["max_streams"]
    initial_window: int = _core.conn.YAMUX_DEFAULTS["initial_window"]
    max_window: int = _core.conn.YAMUX_DEFAULTS["max_window"]
    ack_backlog: int = _core.conn.YAMUX_DEFAULTS["ack_backlog"]
    keepalive_interval: float | None = _core.conn.YAMUX_DEFAULTS["keepalive_interval"]
    mplex: bool = True
    mplex_max_buffered: int = _core.conn.MPLEX_DEFAULTS["max_buffered"]

    def connection_args(self) -> dict[str, Any]:
        """The keyword arguments of ``_core.conn.Connection`` (and of its ``upgrading``)."""
        return {
            "max_streams": self.max_streams,
            "initial_window": self.initial_window,
            "max_window": self.max_window,
            "ack_backlog": self.ack_backlog,
            "keepalive_interval": self.keepalive_interval,
            "mplex_max_buffered": self.mplex_max_buffered,
        }


@dataclass
class StageTimeouts:
    """Seconds each upgrade stage may take (None: only the whole upgrade's timeout).

    A connection that has not finished its upgrade is cheap to drop: short deadlines per stage
    keep silent or dripping sockets from holding a pending-handshake slot for the whole
    ``upgrade_timeout``.
    """

    first_byte: float | None = 5.0
    multistream: float | None = 5.0
    security: float | None = 10.0
    muxer: float | None = 5.0

    def as_tuple(self) -> tuple[float | None, ...]:
        return (self.first_byte, self.multistream, self.security, self.muxer)


#: Stage numbers reported to ``on_stage``: 1 first byte seen, 2 security protocol agreed,
#: 3 secured (remote peer known), 4 muxer running.
STAGE_FIRST_BYTE, STAGE_MULTISTREAM, STAGE_SECURED, STAGE_DONE = 1, 2, 3, 4
_STAGE_WAITS = ("first byte", "multistream-select answer", "security handshake", "muxer")


class _Watchdog:
    """Per-stage deadline of one upgrade; tells the host how far the connection got."""

    __slots__ = ("_handle", "_mux", "_on_stage", "_timeouts", "expired", "stage")

    def __init__(
        self,
        mux: MuxedConnection,
        timeouts: tuple[float | None, ...],
        on_stage: Callable[[MuxedConnection, int], None] | None,
    ) -> None:
        self._mux = mux
        self._timeouts = timeouts
        self._on_stage = on_stage
        self._handle: asyncio.TimerHandle | None = None
        self.stage = 0
        self.expired: str | None = None
        self._arm()

    def _arm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self.stage < len(self._timeouts):
            t = self._timeouts[self.stage]
            if t is not None:
                self._handle = self._mux.loop.call_later(t, self._expire, t)

    def advance(self, stage: int) -> None:
        if stage <= self.stage or self.expired is not None:
            return
        self.stage = stage
        self._arm()
        if self._on_stage is not None:
            self._on_stage(self._mux, stage)

    def _expire(self, t: float) -> None:
        self._handle = None
        self.expired = f"no {_STAGE_WAITS[self.stage]} within {t} s"
        self._mux.abort(UpgradeError(f"upgrade stalled: {self.expired}"))

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class Upgrader:
    """Secures and multiplexes raw connections for one local identity."""

    def __init__(
        self,
        key: PrivateKey,
        *,
        enable_plaintext: bool = False,
        timeout: float = 15.0,
        muxer_options: MuxerOptions | None = None,
        security_protocols: list[str] | None = None,
        early_muxer: bool = True,
        stage_timeouts: StageTimeouts | None = None,
        psk: PreSharedKey | None = None,
    ) -> None:
        self.key = key
        #: Private network key: every connection is protected with it before multistream.
        self.psk = psk
        self.timeout = timeout
        self.stage_timeouts = stage_timeouts or StageTimeouts()
        #: Called with (connection, stage) as an upgrade progresses (the pending table).
        self.on_stage: Callable[[MuxedConnection, int], None] | None = None
        self.muxer_options = muxer_options or MuxerOptions()
        #: Accepted from dialers, in our order of preference.
        self.security_protocols = [NOISE_PROTOCOL_ID, TLS_PROTOCOL_ID]
        #: Proposed when dialing, in order.
        self.dial_security_protocols = [NOISE_PROTOCOL_ID]
        if enable_plaintext:
            self.security_protocols.append(PLAINTEXT_PROTOCOL_ID)
            self.dial_security_protocols.append(PLAINTEXT_PROTOCOL_ID)
        if security_protocols is not None:
            if PLAINTEXT_PROTOCOL_ID in security_protocols and not enable_plaintext:
                raise ValueError("plaintext security needs enable_plaintext=True")
            known = {NOISE_PROTOCOL_ID, TLS_PROTOCOL_ID, PLAINTEXT_PROTOCOL_ID}
            unknown = [p for p in security_protocols if p not in known]
            if unknown or not security_protocols:
                raise ValueError(f"unknown or no security protocols: {unknown}")
            self.security_protocols = list(security_protocols)
            self.dial_security_protocols = list(security_protocols)
        #: Our muxers in order of preference (yamux, then mplex unless turned off).
        self.muxers = [YAMUX_PROTOCOL_ID]
        if self.muxer_options.mplex:
            self.muxers.append(MPLEX_PROTOCOL_ID)
        #: List our muxers in the Noise handshake (saves a round trip when both sides do).
        self.early_muxer = early_muxer
        #: Our Noise static key and signed payload, shared by every handshake of this key.
        self.noise_identity = NoiseIdentity(key)
        #: Our TLS certificate, made on first use (a signature with the identity key).
        self._tls_identity: TlsIdentity | None = None
        self._local_peer: tuple[PrivateKey, PeerId] | None = None

    def _peer_id(self) -> PeerId:
        """Our peer ID, derived once per key."""
        local = self._local_peer
        if local is None or local[0] is not self.key:
            local = self._local_peer = (self.key, _peer_id_of(self.key))
        return local[1]

    def tls_identity(self) -> TlsIdentity:
        """Our TLS certificate for the current key (made once per key)."""
        ident = self._tls_identity
        if ident is None or ident.key is not self.key:
            ident = self._tls_identity = TlsIdentity(self.key)
        return ident

    async def upgrade_outbound(
        self, mux: MuxedConnection, expected_peer: PeerId | None = None, *, as_server: bool = False
    ) -> None:
        """Upgrades a connection we dialed. ``as_server``: take the listener's part anyway
        (multistream listener, handshake responder, muxer server), as the DCUtR initiator does
        on a TCP simultaneous open, where both ends dialed; the remote must prove
        ``expected_peer`` all the same."""
        await self._run(mux, not as_server, expected_peer)

    async def upgrade_inbound(self, mux: MuxedConnection) -> None:
        await self._run(mux, False, None)

    async def _run(self, mux: MuxedConnection, initiator: bool, expected: PeerId | None) -> None:
        dog = _Watchdog(mux, self.stage_timeouts.as_tuple(), self.on_stage)
        try:
            await run_with_timeout(self._upgrade(mux, initiator, expected, dog), self.timeout)
        except asyncio.TimeoutError:
            err: Libp2pError = UpgradeError(f"upgrade did not finish within {self.timeout} s")
            err = _pnet_reason(mux, timed_out=True) or err
            mux.abort(err)
            raise err from None
        except (Libp2pError, asyncio.IncompleteReadError, OSError) as exc:
            pnet_err = _pnet_reason(mux, timed_out=dog.expired is not None)
            if pnet_err is not None:
                mux.close_reason = pnet_err  # the real cause, even after an EOF was recorded
                mux.abort(pnet_err)
                raise pnet_err from exc
            mux.abort(exc)
            if dog.expired is not None:
                raise UpgradeError(f"upgrade stalled: {dog.expired}") from exc
            if isinstance(exc, (HandshakeError, UpgradeError)):
                raise
            if isinstance(mux.close_reason, (ResourceLimitError, ConnectionGated)):  # say so
                raise UpgradeError(f"upgrade aborted: {mux.close_reason}") from exc
            raise UpgradeError(f"upgrade failed: {exc}") from exc
        except BaseException:
            mux.abort()
            raise
        finally:
            dog.cancel()
        dog.advance(STAGE_DONE)

    async def _upgrade(
        self, mux: MuxedConnection, initiator: bool, expected: PeerId | None, dog: _Watchdog
    ) -> None:
        protocols = self.dial_security_protocols if initiator else self.security_protocols
        if self.psk is None and PLAINTEXT_PROTOCOL_ID not in protocols:
            await self._upgrade_in_rust(mux, protocols, initiator, expected, dog)
        else:
            await self._upgrade_fallback(mux, initiator, expected, dog)

    async def _upgrade_in_rust(
        self,
        mux: MuxedConnection,
        protocols: list[str],
        initiator: bool,
        expected: PeerId | None,
        dog: _Watchdog,
    ) -> None:
        """Noise and TLS: one ``_core.conn.Connection`` runs the whole upgrade (security
        multistream-select, handshake, early muxer, muxer) from the first byte; this side
        only answers its Noise signature checks and follows its stages (:class:`_Hooks`)."""
        if mux.transport is None:
            raise ConnectionClosedError("connection closed before the upgrade")
        early = self.muxers if self.early_muxer else []
        noise = self._noise_identity() if NOISE_PROTOCOL_ID in protocols else None
        conn = _core.conn.Connection.upgrading(
            initiator=initiator,
            protocols=list(protocols),
            muxers=list(self.muxers),
            early_muxers=list(early),
            noise_static_secret=None if noise is None else noise.static_secret,
            noise_payload=None if noise is None else noise.payload(early),
            tls_identity=self.tls_identity().identity if TLS_PROTOCOL_ID in protocols else None,
            # A dialer taking the listener's part (DCUtR) checks the peer once secured.
            expected_peer=expected.to_bytes() if initiator and expected is not None else None,
            **self.muxer_options.connection_args(),
        )
        hooks = _Hooks(mux, dog, None if initiator else expected, self._peer_id())
        mux.start_upgrade(conn, hooks, speak_first=initiator)
        mux.muxer = await self._muxer_agreed(mux, initiator)

    def _noise_identity(self) -> NoiseIdentity:
        ident = self.noise_identity
        if ident.key is not self.key:  # the key was replaced after construction
            ident = self.noise_identity = NoiseIdentity(self.key)
        return ident

    async def _upgrade_fallback(
        self, mux: MuxedConnection, initiator: bool, expected: PeerId | None, dog: _Watchdog
    ) -> None:
        """Plaintext and private networks: the driver's raw phase (:class:`RawStream`) carries
        multistream-select and the handshake driven from Python, then a
        ``_core.conn.Connection`` takes the finished handshake."""
        raw = mux.raw_stream()
        if mux.transport is None:
            raise ConnectionClosedError("connection closed before the upgrade")
        if self.psk is not None:
            from rapidp2p.pnet import RawProtector

            raw.protect(RawProtector(self.psk))
        cork = _CorkedStream(raw, lambda: raw.buffered, dog)
        try:
            session = await self._secure(cork, initiator, expected, dog)
        except NegotiationError as exc:
            if initiator:
                await _raise_if_refused(cork, exc)
            raise
        cork.flush()  # the handshake's last message goes before any muxer byte
        if not initiator and expected is not None and session.remote_peer != expected:
            raise PeerIdMismatch(f"expected {expected}, the remote proved {session.remote_peer}")
        mux.remote_peer = session.remote_peer
        mux.remote_key = session.remote_key
        mux.local_peer = self._peer_id()
        mux.security = session.protocol
        dog.advance(STAGE_SECURED)  # the host's gater may abort the connection here
        if mux.is_closed or mux.close_reason is not None:  # aborted: the socket goes soon
            raise ConnectionClosedError(str(mux.close_reason or "closed once secured"))
        early = session.early_muxer if session.early_muxer in self.muxers else None
        conn = _core.conn.Connection(
            session.handshake,  # None: plaintext
            initiator=initiator,
            muxers=None if early else list(self.muxers),
            early_muxer=early,
            **self.muxer_options.connection_args(),
        )
        mux.start_muxer(conn)
        if not early:
            mux.muxer = await self._muxer_agreed(mux, initiator)

    async def _muxer_agreed(self, mux: MuxedConnection, initiator: bool) -> str:
        """Waits for multistream-select of the muxer (run inside the ``_core.conn.Connection``),
        saying plainly when the peer speaks none of ours (a peer offering only mplex when
        mplex is turned off here): an UpgradeError naming the muxers as dialer, a warning in
        our log as listener."""
        ours = ", ".join(self.muxers)
        try:
            return await mux.muxer_agreed()
        except NegotiationError as exc:
            if mux.security is None:  # the security protocol's negotiation failed
                raise
            if initiator:
                hint = (
                    ""
                    if MPLEX_PROTOCOL_ID in self.muxers
                    else " (it may offer only /mplex/6.7.0, which MuxerOptions(mplex=False) "
                    "turned off here)"
                )
                raise UpgradeError(
                    f"peer does not speak {ours}, the stream muxers rapidp2p offers{hint}"
                ) from exc
            refused = mux.muxers_refused
            if not refused:
                raise
            msg = f"peer offered only {', '.join(refused)} (rapidp2p speaks {ours})"
            log.warning("%s", msg)
            raise UpgradeError(msg) from exc
        except (Libp2pError, OSError) as exc:
            refused = mux.muxers_refused
            if initiator or not refused:
                raise
            msg = f"peer offered only {', '.join(refused)} (rapidp2p speaks {ours})"
            log.warning("%s", msg)
            raise UpgradeError(msg) from exc

    async def _secure(
        self, cork: _CorkedStream, initiator: bool, expected: PeerId | None, dog: _Watchdog
    ) -> SecureSession:
        """multistream-select for the security protocol, then its handshake."""
        secure: Any = cork
        protocols = self.dial_security_protocols if initiator else self.security_protocols
        if initiator and len(protocols) == 1:
            # Zero round trips: the answers are checked when the handshake first reads.
            secure = await select_outbound_lazy(cork, protocols[0], timeout=None)
            security = protocols[0]
        elif initiator:
            security = await select_outbound(cork, protocols, lazy=True, timeout=None)
            dog.advance(STAGE_MULTISTREAM)
        else:
            security = await select_inbound(cork, protocols, timeout=None)
            dog.advance(STAGE_MULTISTREAM)
        session: SecureSession
        if security == NOISE_PROTOCOL_ID:
            early = self.muxers if self.early_muxer else []
            ident = self._noise_identity()
            if initiator:
                session = await noise_outbound(secure, self.key, expected, early, identity=ident)
            else:
                session = await noise_inbound(secure, self.key, early, identity=ident)
        elif security == TLS_PROTOCOL_ID:
            early = self.muxers if self.early_muxer else []
            tls = self.tls_identity()
            if initiator:
                session = await tls_outbound(secure, tls, expected, early)
            else:
                session = await tls_inbound(secure, tls, early)
        elif security == PLAINTEXT_PROTOCOL_ID:
            session = await plaintext_handshake(secure, self.key, expected)
        else:  # pragma: no cover - select_* only returns what we offered
            raise NegotiationError(f"unexpected security protocol {security!r}")
        if isinstance(secure, LazyNegotiatedStream):
            await secure.confirm()  # a handshake that never read (cannot happen with Noise)
        return session


class _Hooks:
    """The policy side of one upgrade run by Rust (see ``MuxedConnection.start_upgrade``):
    stages for the watchdog and the host, the Noise signature check (with the verified cache
    of :func:`~rapidp2p.security.noise.verify_identity`), and the connection's identity once
    secured."""

    __slots__ = ("_dog", "_expected", "_local", "_mux", "_verified")

    def __init__(
        self, mux: MuxedConnection, dog: _Watchdog, expected: PeerId | None, local: PeerId
    ) -> None:
        self._mux = mux
        self._dog = dog
        self._expected = expected
        self._local = local
        self._verified: tuple[bytes, PeerId, PublicKey] | None = None

    def first_byte(self) -> None:
        self._dog.advance(STAGE_FIRST_BYTE)

    def security(self, protocol: str) -> None:
        self._dog.advance(STAGE_MULTISTREAM)

    def verify(self, key: bytes, signature: bytes, static_key: bytes) -> str | None:
        try:
            peer, remote_key = verify_identity(key, signature, static_key)
        except HandshakeError as exc:
            return str(exc)
        self._verified = (key, peer, remote_key)
        return None

    def secured(self, protocol: str, peer: bytes, key: bytes, muxer: str | None) -> None:
        known = self._verified
        if known is not None and known[0] == key:  # Noise: checked in verify()
            remote_peer, remote_key = known[1], known[2]
        else:
            from rapidp2p.crypto import public_key_from_protobuf
            from rapidp2p.peer import PeerId

            try:
                remote_key = public_key_from_protobuf(key)
            except DecodeError as exc:  # Rust verified it; Python may support fewer forms
                raise HandshakeError(f"identity key in the certificate: {exc}") from exc
            remote_peer = PeerId.from_bytes(peer)
        expected = self._expected
        if expected is not None and remote_peer != expected:
            raise PeerIdMismatch(f"expected {expected}, the remote proved {remote_peer}")
        mux = self._mux
        mux.remote_peer = remote_peer
        mux.remote_key = remote_key
        mux.local_peer = self._local
        mux.security = protocol
        self._dog.advance(STAGE_SECURED)  # the host's gater may abort the connection here


class _CorkedStream:
    """Handshake writes held back until a read has to wait (then sent in one write).

    ``buffered()`` tells how many received bytes are waiting to be read; without it every
    read that follows a write sends first. :meth:`flush` must run before bytes are written
    by anything else (the muxer).
    """

    __slots__ = ("_buffered", "_dog", "_inner", "_pending")

    def __init__(
        self, inner: Any, buffered: Callable[[], int] | None, dog: _Watchdog | None = None
    ) -> None:
        self._inner = inner
        self._buffered = buffered
        self._pending: list[bytes] = []
        self._dog = dog

    def write(self, data: bytes) -> None:
        self._pending.append(data)

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._inner.write(data)

    async def drain(self) -> None:
        if len(self._pending) > 64:
            self.flush()
        await self._inner.drain()

    def _before_read(self, need: int) -> None:
        if self._pending and (self._buffered is None or self._buffered() < need):
            self.flush()

    def _got_data(self) -> None:
        dog = self._dog
        if dog is not None and dog.stage == 0:
            dog.advance(STAGE_FIRST_BYTE)

    async def read(self, n: int = -1) -> bytes:
        self._before_read(1)
        data: bytes = await self._inner.read(n)
        if data:
            self._got_data()
        return data

    async def readexactly(self, n: int) -> bytes:
        self._before_read(n)
        data: bytes = await self._inner.readexactly(n)
        self._got_data()
        return data


#: Seconds a refused dialer waits for the listener's reason after its ``na``.
REASON_WAIT = 1.0


async def _raise_if_refused(stream: _CorkedStream, exc: NegotiationError) -> None:
    """After a ``na`` to our security protocol, read the listener's ``refused: <reason>``
    message (see :mod:`rapidp2p.host.refusal`) and raise ConnectionRefusedByPeer with it."""
    from rapidp2p.host.refusal import REFUSED_PREFIX
    from rapidp2p.protocols.multistream import read_message

    text = str(exc)
    at = text.find(REFUSED_PREFIX)
    if at >= 0:  # select_outbound read it as the answer to our next proposal
        reason = text[at + len(REFUSED_PREFIX) :].rstrip("'\"")
    else:
        if not isinstance(exc, ProtocolNotSupported):
            return
        try:
            msg = await asyncio.wait_for(read_message(stream), REASON_WAIT)
        except (Libp2pError, asyncio.TimeoutError, asyncio.IncompleteReadError, OSError):
            return
        if not msg.startswith(REFUSED_PREFIX):
            return
        reason = msg[len(REFUSED_PREFIX) :]
    raise ConnectionRefusedByPeer(f"the listener refused the connection: {reason}") from exc


def _pnet_reason(mux: MuxedConnection, *, timed_out: bool = False) -> Libp2pError | None:
    """The private-network explanation of a failed upgrade, if the PSK layer has one."""
    pnet = mux.protector
    if pnet is None or mux.security is not None:
        return None
    reason: Libp2pError | None = pnet.diagnose(timed_out=timed_out)
    return reason


def _peer_id_of(key: PrivateKey) -> PeerId:
    from rapidp2p.peer import PeerId

    return PeerId.from_public_key(key.public_key())
