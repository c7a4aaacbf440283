//! The dialer's certificate verifiers, keeping the typed reason of a refusal. quinn-proto
//! turns a rustls error into a QUIC CRYPTO_ERROR carrying only text; the dial must still end
//! in `PeerIdMismatch` / `CertificateError`, not a generic failure.
//!
//! - libp2p QUIC: rust/tls's libp2p verifier (the certificate proves the peer id);
//! - WebTransport: the server's self-signed certificate is accepted only when its SHA-256 is
//!   one of the multiaddr's `/certhash` values (what a browser's `serverCertificateHashes`
//!   does); the server's identity is proved later, by Noise.

use std::sync::{Arc, Mutex};

use ring::digest::{digest, SHA256};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

use rapidp2p_tls::{provider, Libp2pVerifier, TlsError};

/// The certificate check a dial makes.
#[derive(Debug)]
enum Check {
    Libp2p(Libp2pVerifier),
    /// SHA-256 digests of the certificates the multiaddr names, and the algorithms that
    /// check the handshake signature with the certificate's key.
    CertHash {
        digests: Vec<[u8; 32]>,
        algorithms: WebPkiSupportedAlgorithms,
    },
}

/// A verifier whose first refusal is kept in `refusal`.
#[derive(Debug)]
pub(crate) struct CapturingVerifier {
    inner: Check,
    refusal: Mutex<Option<TlsError>>,
}

fn refuse(e: TlsError) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
}

impl CapturingVerifier {
    pub(crate) fn new(expected_peer: Option<&[u8]>) -> Arc<Self> {
        Arc::new(Self {
            inner: Check::Libp2p(Libp2pVerifier::new(
                expected_peer.map(<[u8]>::to_vec),
                provider().signature_verification_algorithms,
            )),
            refusal: Mutex::new(None),
        })
    }

    /// A WebTransport dial: only a certificate whose SHA-256 is in `digests`.
    pub(crate) fn certhash(digests: Vec<[u8; 32]>) -> Arc<Self> {
        Arc::new(Self {
            inner: Check::CertHash {
                digests,
                algorithms: provider().signature_verification_algorithms,
            },
            refusal: Mutex::new(None),
        })
    }

    /// Why the peer's certificate was refused, if it was.
    pub(crate) fn refusal(&self) -> Option<TlsError> {
        self.refusal.lock().ok().and_then(|r| r.clone())
    }

    fn keep<T>(&self, r: Result<T, rustls::Error>) -> Result<T, rustls::Error> {
        if let Err(rustls::Error::InvalidCertificate(CertificateError::Other(other))) = &r {
            if let Some(ours) = other.0.downcast_ref::<TlsError>() {
                if let Ok(mut slot) = self.refusal.lock() {
                    slot.get_or_insert_with(|| ours.clone());
                }
            }
        }
        r
    }
}

impl ServerCertVerifier for CapturingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let r = match &self.inner {
            Check::Libp2p(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            Check::CertHash { digests, .. } => {
                let got = digest(&SHA256, end_entity.as_ref());
                if digests.iter().any(|d| d.as_slice() == got.as_ref()) {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(refuse(TlsError::BadCertificate(
                        "the WebTransport server's certificate hash is not among the \
                         multiaddr's /certhash values"
                            .into(),
                    )))
                }
            }
        };
        self.keep(r)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match &self.inner {
            Check::Libp2p(v) => self.keep(v.verify_tls12_signature(message, cert, dss)),
            // TLS 1.3 only (QUIC).
            Check::CertHash { .. } => Err(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::Tls13RequiredForQuic,
            )),
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match &self.inner {
            Check::Libp2p(v) => self.keep(v.verify_tls13_signature(message, cert, dss)),
            Check::CertHash { algorithms, .. } => {
                self.keep(verify_tls13_signature(message, cert, dss, algorithms))
            }
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        match &self.inner {
            Check::Libp2p(v) => v.supported_verify_schemes(),
            Check::CertHash { algorithms, .. } => algorithms.supported_schemes(),
        }
    }
}
