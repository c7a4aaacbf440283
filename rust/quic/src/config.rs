//! The endpoint's limits and the quinn-proto and rustls configurations built from them: the
//! libp2p TLS configurations of rust/tls with `libp2p` as the only ALPN, QUIC v1 only, no
//! unidirectional streams (libp2p streams are bidirectional), bounded streams and windows.

use std::sync::Arc;
use std::time::Duration;

use quinn_proto::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn_proto::{
    ClientConfig, EndpointConfig, IdleTimeout, ServerConfig, TransportConfig, VarInt,
};
use rapidp2p_tls::{client_config, server_config, Clock, Identity, ALPN_LIBP2P};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::QuicError;
use crate::verifier::CapturingVerifier;

/// The ALPN of HTTP/3, which WebTransport runs on.
pub const ALPN_H3: &[u8] = b"h3";
/// Unidirectional streams a WebTransport peer may have open (HTTP/3 needs three).
const WT_MAX_UNI_STREAMS: u32 = 8;
/// Bytes of received QUIC datagrams held (they are dropped: libp2p uses none).
const WT_DATAGRAM_BUFFER: usize = 64 * 1024;

/// QUIC version 1 (RFC 9000): the only version `/quic-v1` speaks.
pub const QUIC_V1: u32 = 1;

/// Limits of one endpoint and of every connection it makes or accepts.
#[derive(Clone, Debug)]
pub struct QuicConfig {
    /// A connection silent this long is gone (during the handshake too).
    pub max_idle_timeout: Duration,
    /// PINGs keep an idle connection alive (NAT bindings) at this interval.
    pub keep_alive_interval: Option<Duration>,
    /// A handshake not finished within this is abandoned with a typed timeout.
    pub handshake_timeout: Duration,
    /// Concurrent bidirectional streams the peer may open on one connection.
    pub max_streams_per_connection: u32,
    /// Bytes one stream may hold unread (the stream's flow-control window).
    pub stream_receive_window: u32,
    /// Bytes all streams of a connection may hold unread together, at most (the caller's
    /// memory budget raises a connection's window up to this, see
    /// `Endpoint::set_receive_window`).
    pub connection_receive_window: u32,
    /// The window every connection starts with, before the caller grants it memory (the
    /// part of a connection's buffers no budget pays for, like yamux's initial windows).
    pub initial_connection_window: u32,
    /// Bytes of ours one connection may hold unacknowledged.
    pub send_window: u64,
    /// Inbound handshakes in progress at once; more Initials are refused.
    pub max_handshakes: usize,
    /// Above this many inbound handshakes in progress, unvalidated clients get a Retry
    /// (address validation) before any state is kept for them.
    pub retry_above: usize,
}

impl Default for QuicConfig {
    fn default() -> Self {
        Self {
            max_idle_timeout: Duration::from_secs(30),
            keep_alive_interval: Some(Duration::from_secs(10)),
            handshake_timeout: Duration::from_secs(10),
            max_streams_per_connection: 256,
            stream_receive_window: 8 << 20,
            connection_receive_window: 16 << 20,
            initial_connection_window: 1 << 20,
            send_window: 16 << 20,
            max_handshakes: 256,
            retry_above: 64,
        }
    }
}

impl QuicConfig {
    pub(crate) fn transport(&self) -> Result<Arc<TransportConfig>, QuicError> {
        let mut t = TransportConfig::default();
        let idle = IdleTimeout::try_from(self.max_idle_timeout)
            .map_err(|_| QuicError::Config("idle timeout out of range".into()))?;
        t.max_idle_timeout(Some(idle))
            .keep_alive_interval(self.keep_alive_interval)
            .max_concurrent_bidi_streams(VarInt::from_u32(self.max_streams_per_connection))
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .stream_receive_window(VarInt::from_u32(self.stream_receive_window))
            .receive_window(VarInt::from_u32(
                self.initial_connection_window
                    .min(self.connection_receive_window),
            ))
            .send_window(self.send_window)
            .datagram_receive_buffer_size(None);
        Ok(Arc::new(t))
    }

    /// A WebTransport connection's transport: as libp2p QUIC's, plus the peer's HTTP/3
    /// unidirectional streams (control, QPACK encoder and decoder, a few spare) and QUIC
    /// datagrams, which Chromium requires of a WebTransport server (we drop what arrives).
    pub(crate) fn webtransport_transport(&self) -> Result<Arc<TransportConfig>, QuicError> {
        let base = self.transport()?;
        let mut t = Arc::try_unwrap(base).unwrap_or_else(|_| TransportConfig::default());
        t.max_concurrent_uni_streams(VarInt::from_u32(WT_MAX_UNI_STREAMS))
            .datagram_receive_buffer_size(Some(WT_DATAGRAM_BUFFER))
            .datagram_send_buffer_size(0);
        Ok(Arc::new(t))
    }

    /// The server configuration of a WebTransport listener: the self-signed certificate
    /// whose hash the multiaddr carries, ALPN `h3`, no client certificate (the browser has
    /// none: Noise authenticates it).
    pub(crate) fn webtransport_server(
        &self,
        cert_der: &[u8],
        key_der: &[u8],
        transport: Arc<TransportConfig>,
    ) -> Result<Arc<ServerConfig>, QuicError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.to_vec()));
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| QuicError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(cert_der.to_vec())], key)
            .map_err(|e| QuicError::Config(format!("WebTransport certificate: {e}")))?;
        tls.alpn_protocols = vec![ALPN_H3.to_vec()];
        tls.max_early_data_size = 0;
        let crypto = QuicServerConfig::try_from(Arc::new(tls))
            .map_err(|e| QuicError::Config(e.to_string()))?;
        let mut cfg = ServerConfig::with_crypto(Arc::new(crypto));
        cfg.transport_config(transport);
        cfg.max_incoming(self.max_handshakes);
        Ok(Arc::new(cfg))
    }

    /// A WebTransport dial's configuration: ALPN `h3`, no client certificate (Noise proves
    /// who we are), and `verifier` accepting only a certificate the multiaddr's `/certhash`
    /// values name.
    pub(crate) fn webtransport_client(
        transport: Arc<TransportConfig>,
        verifier: Arc<CapturingVerifier>,
    ) -> Result<ClientConfig, QuicError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| QuicError::Config(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        tls.alpn_protocols = vec![ALPN_H3.to_vec()];
        tls.enable_early_data = false;
        // Every connection shows its certificate (a resumed one would not, and its hash is
        // what the Noise handshake checks).
        tls.resumption = rustls::client::Resumption::disabled();
        let crypto = QuicClientConfig::try_from(Arc::new(tls))
            .map_err(|e| QuicError::Config(e.to_string()))?;
        let mut cfg = ClientConfig::new(Arc::new(crypto));
        cfg.transport_config(transport);
        Ok(cfg)
    }

    pub(crate) fn endpoint(&self) -> Arc<EndpointConfig> {
        let mut e = EndpointConfig::default();
        e.supported_versions(vec![QUIC_V1]);
        Arc::new(e)
    }

    pub(crate) fn server(
        &self,
        identity: &Identity,
        transport: Arc<TransportConfig>,
        clock: &Clock,
    ) -> Result<Arc<ServerConfig>, QuicError> {
        let tls = server_config(identity, &[ALPN_LIBP2P], clock).map_err(QuicError::Tls)?;
        let crypto = QuicServerConfig::try_from(Arc::new(tls))
            .map_err(|e| QuicError::Config(e.to_string()))?;
        let mut cfg = ServerConfig::with_crypto(Arc::new(crypto));
        cfg.transport_config(transport);
        cfg.max_incoming(self.max_handshakes);
        Ok(Arc::new(cfg))
    }

    /// A dial's configuration: only `expected_peer` (peer id bytes) is accepted, and the
    /// verifier keeps the typed reason of a refusal for the connection's close event.
    pub(crate) fn client(
        identity: &Identity,
        expected_peer: Option<&[u8]>,
        transport: Arc<TransportConfig>,
        verifier: Arc<CapturingVerifier>,
        clock: &Clock,
    ) -> Result<ClientConfig, QuicError> {
        let mut tls = client_config(identity, expected_peer, &[ALPN_LIBP2P], clock)
            .map_err(QuicError::Tls)?;
        tls.dangerous().set_certificate_verifier(verifier);
        let crypto = QuicClientConfig::try_from(Arc::new(tls))
            .map_err(|e| QuicError::Config(e.to_string()))?;
        let mut cfg = ClientConfig::new(Arc::new(crypto));
        cfg.transport_config(transport);
        Ok(cfg)
    }
}
