//! The dialer's certificate verifier: rust/tls's libp2p verifier, keeping the typed reason
//! of a refusal. quinn-proto turns a rustls error into a QUIC CRYPTO_ERROR carrying only text;
//! the dial must still end in `PeerIdMismatch` / `CertificateError`, not a generic failure.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use rapidp2p_tls::{provider, Libp2pVerifier, TlsError};

/// Wraps [`Libp2pVerifier`]; the first refusal is kept in `refusal`.
#[derive(Debug)]
pub(crate) struct CapturingVerifier {
    inner: Libp2pVerifier,
    refusal: Mutex<Option<TlsError>>,
}

impl CapturingVerifier {
    pub(crate) fn new(expected_peer: Option<&[u8]>) -> Arc<Self> {
        Arc::new(Self {
            inner: Libp2pVerifier::new(
                expected_peer.map(<[u8]>::to_vec),
                provider().signature_verification_algorithms,
            ),
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
        self.keep(self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.keep(self.inner.verify_tls12_signature(message, cert, dss))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.keep(self.inner.verify_tls13_signature(message, cert, dss))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
