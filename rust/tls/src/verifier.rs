//! The certificate verifier both sides plug into rustls (and QUIC will): every check of
//! [`verify_certificate`], the dialled peer id on the client side, and TLS 1.3 handshake
//! signatures checked with the certificate's own key (rustls' `verify_tls13_signature_with_raw_key`
//! and the provider's algorithms; webpki would refuse the critical libp2p extension).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature_with_raw_key, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, PeerIncompatible,
    SignatureScheme,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::cert::verify_certificate;
use crate::error::TlsError;
use rapidp2p_wire::peerid;

/// Checks a libp2p peer's certificate; `expected` (peer id bytes) is the dialled peer.
#[derive(Debug)]
pub struct Libp2pVerifier {
    expected: Option<Vec<u8>>,
    algorithms: WebPkiSupportedAlgorithms,
}

/// A `TlsError` carried through rustls (recovered with [`from_rustls`]).
pub(crate) fn to_rustls(e: TlsError) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
}

/// The typed error inside a rustls error, or a generic handshake error.
pub(crate) fn from_rustls(e: &rustls::Error) -> TlsError {
    if let rustls::Error::InvalidCertificate(CertificateError::Other(other)) = e {
        if let Some(ours) = other.0.downcast_ref::<TlsError>() {
            return ours.clone();
        }
    }
    match e {
        rustls::Error::AlertReceived(alert) => TlsError::Alert(format!("{alert:?}")),
        other => TlsError::Handshake(other.to_string()),
    }
}

impl Libp2pVerifier {
    /// `expected`: the peer id (bytes) the client dialled; None on the server side.
    pub fn new(expected: Option<Vec<u8>>, algorithms: WebPkiSupportedAlgorithms) -> Self {
        Self {
            expected,
            algorithms,
        }
    }

    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        if !intermediates.is_empty() {
            return Err(to_rustls(TlsError::BadCertificate(format!(
                "a chain of {} certificates (exactly one is allowed)",
                intermediates.len() + 1
            ))));
        }
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let cert = verify_certificate(end_entity, now).map_err(to_rustls)?;
        if let Some(expected) = &self.expected {
            if *expected != cert.peer_id {
                return Err(to_rustls(TlsError::PeerIdMismatch {
                    expected: peerid::to_base58(expected),
                    actual: peerid::to_base58(&cert.peer_id),
                }));
            }
        }
        Ok(())
    }

    fn verify_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The certificate passed `verify` already; only its key is needed here.
        let (_, parsed) = X509Certificate::from_der(cert)
            .map_err(|e| to_rustls(TlsError::BadCertificate(format!("not X.509: {e}"))))?;
        let spki = SubjectPublicKeyInfoDer::from(parsed.public_key().raw);
        verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algorithms)
    }
}

impl ServerCertVerifier for Libp2pVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verify(end_entity, intermediates, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(PeerIncompatible::Tls13RequiredForQuic.into())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for Libp2pVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verify(end_entity, intermediates, now)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(PeerIncompatible::Tls13RequiredForQuic.into())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
