"""Connection security: the libp2p Noise handshake (default), TLS 1.3 and opt-in plaintext."""

from __future__ import annotations

from rapidp2p.security.noise import (
    NOISE_PROTOCOL_ID,
    NoiseIdentity,
    SecureSession,
    noise_inbound,
    noise_outbound,
    select_early_muxer,
)
from rapidp2p.security.plaintext import PLAINTEXT_PROTOCOL_ID, plaintext_handshake
from rapidp2p.security.tls import TLS_PROTOCOL_ID, TlsIdentity, tls_inbound, tls_outbound

__all__ = [
    "NOISE_PROTOCOL_ID",
    "PLAINTEXT_PROTOCOL_ID",
    "TLS_PROTOCOL_ID",
    "NoiseIdentity",
    "SecureSession",
    "TlsIdentity",
    "noise_inbound",
    "noise_outbound",
    "plaintext_handshake",
    "select_early_muxer",
    "tls_inbound",
    "tls_outbound",
]
