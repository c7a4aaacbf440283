//! The host's self-signed certificate with the libp2p public-key extension, and the checks run
//! on a peer's certificate.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use x509_parser::prelude::{ASN1Time, FromDer, X509Certificate};

use crate::der::{decode_signed_key, encode_signed_key};
use crate::error::TlsError;
use crate::identity::verify_identity_signature;
use rapidp2p_wire::peerid;

/// OID of the libp2p public-key extension.
pub const LIBP2P_EXTENSION_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 53594, 1, 1];
const LIBP2P_EXTENSION_OID_TEXT: &str = "1.3.6.1.4.1.53594.1.1";
/// What the identity key signs, followed by the certificate's SubjectPublicKeyInfo DER.
pub const SIGNING_PREFIX: &[u8] = b"libp2p-tls-handshake:";
/// Certificates larger than this are refused before parsing (ours are ~450 bytes; an RSA
/// identity key and signature add ~1.3 KiB).
const MAX_CERT_LEN: usize = 16 * 1024;

/// `SIGNING_PREFIX || spki`.
fn signing_message(spki: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_PREFIX.len() + spki.len());
    msg.extend_from_slice(SIGNING_PREFIX);
    msg.extend_from_slice(spki);
    msg
}

/// A fresh certificate key (ECDSA P-256) waiting for the identity key's signature.
pub struct CertKey {
    key: rcgen::KeyPair,
}

impl std::fmt::Debug for CertKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertKey").finish_non_exhaustive()
    }
}

impl CertKey {
    /// Generates the certificate key (unrelated to the identity key, as the spec asks).
    pub fn generate() -> Result<Self, TlsError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| TlsError::Local(format!("certificate key: {e}")))?;
        Ok(Self { key })
    }

    /// The certificate's SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> Vec<u8> {
        self.key.public_key_der()
    }

    /// The bytes the identity key must sign: "libp2p-tls-handshake:" + SPKI.
    pub fn message_to_sign(&self) -> Vec<u8> {
        signing_message(&self.spki_der())
    }

    /// Builds the self-signed certificate carrying `SignedKey{public_key, signature}`.
    /// `public_key` is the identity key protobuf; the signature is checked here first, so a
    /// caller's mistake is a local error rather than a certificate every peer refuses.
    pub fn certify(self, public_key: &[u8], signature: &[u8]) -> Result<Identity, TlsError> {
        let local = |e: TlsError| TlsError::Local(format!("our own identity signature: {e}"));
        verify_identity_signature(public_key, &self.message_to_sign(), signature).map_err(local)?;
        self.build(Some((public_key, signature)))
    }

    /// Test support for hostile peers: a certificate with `extension` as given, unchecked
    /// (`None`: no libp2p extension at all). Never use it for a real host.
    #[doc(hidden)]
    pub fn certify_unchecked(
        self,
        extension: Option<(&[u8], &[u8])>,
    ) -> Result<Identity, TlsError> {
        self.build(extension)
    }

    fn build(self, extension: Option<(&[u8], &[u8])>) -> Result<Identity, TlsError> {
        let mut peer_id = Vec::new();
        if let Some((public_key, _)) = extension {
            // Hostile test certificates may carry garbage here: no peer id then.
            let _ = peerid::from_public_key_protobuf(public_key, &mut peer_id);
        }
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|e| TlsError::Local(format!("certificate parameters: {e}")))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        // Valid from long ago to far ahead: the key proves identity, dates prove nothing, and
        // a peer with a skewed clock must still accept it (go- and rust-libp2p do the same).
        params.not_before = rcgen::date_time_ymd(1975, 1, 1);
        params.not_after = rcgen::date_time_ymd(4096, 1, 1);
        if let Some((public_key, signature)) = extension {
            let mut ext = rcgen::CustomExtension::from_oid_content(
                LIBP2P_EXTENSION_OID,
                encode_signed_key(public_key, signature)?,
            );
            ext.set_criticality(true);
            params.custom_extensions.push(ext);
        }
        let cert = params
            .self_signed(&self.key)
            .map_err(|e| TlsError::Local(format!("self-signing: {e}")))?;
        Ok(Identity {
            inner: Arc::new(IdentityInner {
                cert: cert.der().clone(),
                key: self.key.serialize_der(),
                peer_id,
            }),
        })
    }
}

#[derive(Debug)]
struct IdentityInner {
    cert: CertificateDer<'static>,
    key: Vec<u8>,
    peer_id: Vec<u8>,
}

/// The host's certificate and its private key: made once per host, shared by every TLS
/// connection and QUIC endpoint (cheap to clone).
#[derive(Clone, Debug)]
pub struct Identity {
    inner: Arc<IdentityInner>,
}

impl Identity {
    /// The certificate (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.inner.cert
    }

    /// The certificate's private key (PKCS#8), for a rustls configuration.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.inner.key.clone()))
    }

    /// The peer id the certificate proves (bytes).
    pub fn peer_id(&self) -> &[u8] {
        &self.inner.peer_id
    }
}

/// What a verified peer certificate proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The identity key protobuf from the extension.
    pub public_key: Vec<u8>,
    /// The peer id derived from it (bytes).
    pub peer_id: Vec<u8>,
    /// The certificate's SubjectPublicKeyInfo DER (the key of the TLS handshake signatures).
    pub spki: Vec<u8>,
}

fn bad_cert(msg: impl Into<String>) -> TlsError {
    TlsError::BadCertificate(msg.into())
}

/// Runs every check the spec asks of a peer's certificate, at `now` (Unix seconds): it parses
/// as one X.509 certificate, is within its validity, carries a valid self-signature and
/// exactly one well-formed libp2p extension whose identity signature verifies. Unknown
/// extensions (critical or not) are ignored, as the spec says.
pub fn verify_certificate(der: &[u8], now: i64) -> Result<PeerCertificate, TlsError> {
    if der.len() > MAX_CERT_LEN {
        return Err(bad_cert(format!("{} bytes", der.len())));
    }
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| bad_cert(format!("not X.509: {e}")))?;
    if !rest.is_empty() {
        return Err(bad_cert("trailing bytes after the certificate"));
    }
    let now = ASN1Time::from_timestamp(now).map_err(|e| TlsError::Local(e.to_string()))?;
    if !cert.validity().is_valid_at(now) {
        return Err(bad_cert("not valid now (expired or not yet valid)"));
    }
    let alg = cert.signature_algorithm.algorithm.to_id_string();
    if alg == "1.2.840.113549.1.1.5" || alg == "1.3.14.3.2.29" {
        return Err(bad_cert("SHA-1 self-signature"));
    }
    cert.verify_signature(None)
        .map_err(|e| bad_cert(format!("self-signature: {e}")))?;
    let mut found = None;
    for ext in cert.tbs_certificate.extensions() {
        if ext.oid.to_id_string() == LIBP2P_EXTENSION_OID_TEXT {
            if found.is_some() {
                return Err(TlsError::BadExtension("the extension appears twice".into()));
            }
            found = Some(ext.value);
        }
    }
    let value = found.ok_or(TlsError::MissingExtension)?;
    let (public_key, signature) = decode_signed_key(value)?;
    let spki = cert.public_key().raw;
    verify_identity_signature(public_key, &signing_message(spki), signature)?;
    let mut peer_id = Vec::new();
    peerid::from_public_key_protobuf(public_key, &mut peer_id)
        .map_err(|e| TlsError::BadExtension(e.to_string()))?;
    Ok(PeerCertificate {
        public_key: public_key.to_vec(),
        peer_id,
        spki: spki.to_vec(),
    })
}
