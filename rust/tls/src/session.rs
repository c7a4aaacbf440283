//! The TLS-over-TCP handshake without IO: feed received bytes with `receive`, send what
//! `write_output` produces, until `is_finished`; then `remote` says who the peer proved to be
//! and `into_transport` gives the record layer for the connection.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, Connection, ServerConnection};

use crate::cert::{verify_certificate, Identity};
use crate::clock::Clock;
use crate::config::{client_config, server_config, ALPN_LIBP2P};
use crate::error::TlsError;
use crate::transport::Transport;
use crate::verifier::from_rustls;

/// Who the peer proved to be, and the muxer ALPN agreed (None: negotiate it afterwards).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    pub peer_id: Vec<u8>,
    pub public_key: Vec<u8>,
    pub muxer: Option<String>,
}

/// One side of a libp2p TLS 1.3 handshake.
pub struct Handshake {
    conn: Connection,
    /// The caller's wall-clock time (certificate validity), shared with rustls.
    clock: Clock,
    /// Application data that arrived with the last handshake records (kept for the caller).
    early: Vec<u8>,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

/// The ALPN list: early muxers first, `libp2p` last.
fn alpn(muxers: &[&str]) -> Vec<&'static [u8]> {
    let mut out: Vec<&'static [u8]> = Vec::new();
    for m in muxers {
        if *m == "/yamux/1.0.0" {
            out.push(crate::config::YAMUX_ALPN);
        }
    }
    out.push(ALPN_LIBP2P);
    out
}

impl Handshake {
    /// The dialer. `expected_peer`: the dialled peer id (bytes); `muxers`: early muxer
    /// negotiation (only `/yamux/1.0.0` is known), empty to negotiate it after the handshake;
    /// `now`: the wall-clock time in Unix seconds (certificate validity; see `set_time`).
    pub fn client(
        identity: &Identity,
        expected_peer: Option<&[u8]>,
        muxers: &[&str],
        now: i64,
    ) -> Result<Self, TlsError> {
        let clock = Clock::at(now);
        let cfg = client_config(identity, expected_peer, &alpn(muxers), &clock)?;
        // An IP address as the server name: rustls sends no SNI for one (the spec forbids SNI).
        let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED).into());
        let conn = ClientConnection::new(Arc::new(cfg), name)
            .map_err(|e| TlsError::Local(e.to_string()))?;
        Ok(Self::wrap(conn.into(), clock))
    }

    /// The listener (see `client` for `muxers` and `now`).
    pub fn server(identity: &Identity, muxers: &[&str], now: i64) -> Result<Self, TlsError> {
        let clock = Clock::at(now);
        let cfg = server_config(identity, &alpn(muxers), &clock)?;
        let conn =
            ServerConnection::new(Arc::new(cfg)).map_err(|e| TlsError::Local(e.to_string()))?;
        Ok(Self::wrap(conn.into(), clock))
    }

    fn wrap(mut conn: Connection, clock: Clock) -> Self {
        conn.set_buffer_limit(None);
        Self {
            conn,
            clock,
            early: Vec::new(),
        }
    }

    /// The wall-clock time moved on: `now` in Unix seconds, for the certificate checks still
    /// to come.
    pub fn set_time(&mut self, now: i64) {
        self.clock.set(now);
    }

    /// True on the dialer's side.
    pub fn is_client(&self) -> bool {
        matches!(self.conn, Connection::Client(_))
    }

    /// Processes received bytes (any split). A refused certificate, a protocol violation or
    /// an alert fails with the typed reason; the alert for the peer is left in the output.
    pub fn receive(&mut self, data: &[u8]) -> Result<(), TlsError> {
        let mut rd = data;
        while !rd.is_empty() {
            let n = self
                .conn
                .read_tls(&mut rd)
                .map_err(|e| TlsError::Handshake(e.to_string()))?;
            let state = self
                .conn
                .process_new_packets()
                .map_err(|e| from_rustls(&e))?;
            if state.plaintext_bytes_to_read() > 0 {
                read_plaintext(&mut self.conn, &mut self.early)?;
            }
            if n == 0 {
                break;
            }
        }
        Ok(())
    }

    /// True when `write_output` has bytes to send.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Appends every pending handshake byte (records, or an alert after a failure) to `out`.
    pub fn write_output(&mut self, out: &mut Vec<u8>) -> Result<(), TlsError> {
        while self.conn.wants_write() {
            self.conn
                .write_tls(out)
                .map_err(|e| TlsError::Local(e.to_string()))?;
        }
        Ok(())
    }

    /// True once the handshake is complete on our side (the client may still be refused by
    /// the server afterwards: it then sees the connection close).
    pub fn is_finished(&self) -> bool {
        !self.conn.is_handshaking()
    }

    /// The proven peer and the agreed muxer (after `is_finished`).
    pub fn remote(&self) -> Result<Remote, TlsError> {
        if !self.is_finished() {
            return Err(TlsError::Local("the handshake is not finished".into()));
        }
        let certs = self
            .conn
            .peer_certificates()
            .ok_or_else(|| TlsError::BadCertificate("the peer sent no certificate".into()))?;
        let [cert] = certs else {
            return Err(TlsError::BadCertificate(
                "not exactly one certificate".into(),
            ));
        };
        let proven = verify_certificate(cert, self.clock.now())?;
        let muxer = match self.conn.alpn_protocol() {
            Some(p) if p == crate::config::YAMUX_ALPN => Some("/yamux/1.0.0".to_owned()),
            _ => None,
        };
        Ok(Remote {
            peer_id: proven.peer_id,
            public_key: proven.public_key,
            muxer,
        })
    }

    /// Application plaintext received with the handshake (taken, so it is handed out once).
    pub fn take_early_data(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.early)
    }

    /// The record layer for the rest of the connection (after `is_finished`). Early data not
    /// taken with `take_early_data` is an error: it would be lost.
    pub fn into_transport(self) -> Result<Transport, TlsError> {
        if !self.is_finished() {
            return Err(TlsError::Local("the handshake is not finished".into()));
        }
        if !self.early.is_empty() {
            return Err(TlsError::Local(
                "take_early_data() before into_transport()".into(),
            ));
        }
        Ok(Transport::new(self.conn))
    }
}

/// Moves every decrypted byte rustls holds to the end of `out`.
pub(crate) fn read_plaintext(conn: &mut Connection, out: &mut Vec<u8>) -> Result<(), TlsError> {
    match conn.reader().read_to_end(out) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(TlsError::Record(e.to_string())),
    }
}
