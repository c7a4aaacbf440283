//! The self-signed certificates of a WebTransport listener. Browsers accept a certificate
//! they cannot chain to a root only through `serverCertificateHashes`, and only when it is
//! ECDSA (P-256 here) and valid for at most 14 days; the listener's multiaddr carries the
//! hashes as `/certhash/<multibase base64url sha2-256 multihash>`.

use data_encoding::BASE64URL_NOPAD;
use rcgen::{CertificateParams, DistinguishedName, KeyPair, PKCS_ECDSA_P256_SHA256};
use ring::digest::{digest, SHA256};
use thiserror::Error;
use time::OffsetDateTime;

/// The longest validity `serverCertificateHashes` accepts (W3C WebTransport: 14 days).
pub const MAX_VALIDITY_SECS: i64 = 14 * 24 * 3600;

/// Multihash code of sha2-256 and its digest length.
const SHA2_256: u8 = 0x12;
const SHA2_256_LEN: u8 = 32;

/// A certificate could not be made.
#[derive(Debug, Error)]
#[error("WebTransport certificate: {0}")]
pub struct CertError(String);

/// A DER certificate and its PKCS#8 private key, with the validity it was made for.
#[derive(Clone, Debug)]
pub struct Certificate {
    pub der: Vec<u8>,
    pub private_key: Vec<u8>,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
}

/// A new ECDSA P-256 certificate valid from `not_before` for `validity_secs` (clamped to
/// [`MAX_VALIDITY_SECS`]), Unix seconds.
pub fn new_certificate(not_before: i64, validity_secs: i64) -> Result<Certificate, CertError> {
    let validity = validity_secs.clamp(60, MAX_VALIDITY_SECS);
    let not_after = not_before + validity;
    let key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| CertError(e.to_string()))?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])
        .map_err(|e| CertError(e.to_string()))?;
    params.distinguished_name = DistinguishedName::new();
    // Chromium's parser of hash-pinned certificates refuses one without extensions: a
    // subject alternative name (never checked: the hash is what a browser trusts) and the
    // key usage of a TLS server key.
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let at = |s: i64| OffsetDateTime::from_unix_timestamp(s).map_err(|e| CertError(e.to_string()));
    params.not_before = at(not_before)?;
    params.not_after = at(not_after)?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| CertError(e.to_string()))?;
    Ok(Certificate {
        der: cert.der().to_vec(),
        private_key: key.serialize_der(),
        not_before,
        not_after,
    })
}

/// The sha2-256 multihash of a DER certificate (what NoiseExtensions carries).
pub fn certhash_multihash(der: &[u8]) -> Vec<u8> {
    let mut out = vec![SHA2_256, SHA2_256_LEN];
    out.extend_from_slice(digest(&SHA256, der).as_ref());
    out
}

/// The `/certhash` value of a DER certificate: `u` + base64url of its multihash.
pub fn certhash(der: &[u8]) -> String {
    format!("u{}", BASE64URL_NOPAD.encode(&certhash_multihash(der)))
}

/// The SHA-256 digest a multihash names, when it is a sha2-256 multihash.
pub fn certhash_digest(multihash: &[u8]) -> Option<[u8; 32]> {
    match multihash {
        [SHA2_256, SHA2_256_LEN, rest @ ..] if rest.len() == 32 => rest.try_into().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_and_hash() {
        let c = new_certificate(1_700_000_000, 30 * 24 * 3600).unwrap();
        assert_eq!(c.not_after - c.not_before, MAX_VALIDITY_SECS);
        let mh = certhash_multihash(&c.der);
        assert_eq!(mh.len(), 34);
        assert_eq!(
            certhash_digest(&mh).unwrap().as_slice(),
            digest(&SHA256, &c.der).as_ref()
        );
        let text = certhash(&c.der);
        assert!(text.starts_with("uEi"));
        assert_eq!(BASE64URL_NOPAD.decode(&text.as_bytes()[1..]).unwrap(), mh);
        assert!(certhash_digest(&[0x13, 32]).is_none());
        // Two certificates never share a key.
        let d = new_certificate(1_700_000_000, 3600).unwrap();
        assert_ne!(c.private_key, d.private_key);
    }
}
