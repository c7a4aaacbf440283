//! Verifies the identity key's signature carried in the libp2p extension, for the four libp2p
//! key types, in Rust: rustls calls the certificate verifier synchronously in the middle of the
//! handshake (and quinn-proto will too), so the check cannot wait for Python.
//! Ed25519, ECDSA and RSA use ring (already in the workspace); secp256k1 uses `k256`.

use ring::signature::{self, UnparsedPublicKey};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::error::TlsError;
use rapidp2p_wire::keyproto;

const KEY_RSA: u64 = 0;
const KEY_ED25519: u64 = 1;
const KEY_SECP256K1: u64 = 2;
const KEY_ECDSA: u64 = 3;

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

/// Largest key `Data` accepted (an 8192-bit RSA SPKI is ~1.1 KiB): bounded before any work.
const MAX_KEY_DATA: usize = 2048;

fn unsupported(msg: impl Into<String>) -> TlsError {
    TlsError::UnsupportedKey(msg.into())
}

/// Parses a PKIX SubjectPublicKeyInfo exactly (no trailing bytes): `(algorithm, curve, key)`.
fn parse_spki(der: &[u8]) -> Result<(String, Option<String>, &[u8]), TlsError> {
    let (rest, spki) = SubjectPublicKeyInfo::from_der(der)
        .map_err(|e| TlsError::BadExtension(format!("key SubjectPublicKeyInfo: {e}")))?;
    if !rest.is_empty() {
        return Err(TlsError::BadExtension(
            "trailing bytes after the key SubjectPublicKeyInfo".into(),
        ));
    }
    let alg = spki.algorithm.algorithm.to_id_string();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    // The key bits borrow from `der`, not from the parsed structure.
    let bits: &[u8] = spki.subject_public_key.data.as_ref();
    let start = bits.as_ptr() as usize - der.as_ptr() as usize;
    Ok((alg, curve, &der[start..start + bits.len()]))
}

/// Checks `signature` over `message` with the identity key in `public_key` (a libp2p key
/// protobuf). Signatures follow go-libp2p: Ed25519 plain; ECDSA and secp256k1 DER over
/// SHA-256; RSA PKCS#1 v1.5 with SHA-256 (2048 to 8192 bits).
pub fn verify_identity_signature(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), TlsError> {
    let (key_type, data) =
        keyproto::decode(public_key).map_err(|e| TlsError::BadExtension(e.to_string()))?;
    if data.len() > MAX_KEY_DATA {
        return Err(unsupported(format!("key data of {} bytes", data.len())));
    }
    let ok = match key_type {
        KEY_ED25519 => {
            if data.len() != 32 {
                return Err(TlsError::BadExtension("Ed25519 key is not 32 bytes".into()));
            }
            UnparsedPublicKey::new(&signature::ED25519, data)
                .verify(message, signature)
                .is_ok()
        }
        KEY_SECP256K1 => verify_secp256k1(data, message, signature)?,
        KEY_ECDSA => {
            let (alg, curve, point) = parse_spki(data)?;
            let algorithm: &'static signature::EcdsaVerificationAlgorithm =
                match (alg.as_str(), curve.as_deref()) {
                    (OID_EC_PUBLIC_KEY, Some(OID_P256)) => &signature::ECDSA_P256_SHA256_ASN1,
                    (OID_EC_PUBLIC_KEY, Some(OID_P384)) => &signature::ECDSA_P384_SHA256_ASN1,
                    _ => return Err(unsupported(format!("ECDSA key {alg} {curve:?}"))),
                };
            UnparsedPublicKey::new(algorithm, point)
                .verify(message, signature)
                .is_ok()
        }
        KEY_RSA => {
            let (alg, _, pkcs1) = parse_spki(data)?;
            if alg != OID_RSA {
                return Err(unsupported(format!("RSA key with algorithm {alg}")));
            }
            // ring takes the PKCS#1 RSAPublicKey and refuses keys outside 2048..=8192 bits
            // before the expensive part.
            UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, pkcs1)
                .verify(message, signature)
                .is_ok()
        }
        other => return Err(unsupported(format!("key type {other}"))),
    };
    if ok {
        Ok(())
    } else {
        Err(TlsError::BadSignature)
    }
}

fn verify_secp256k1(data: &[u8], message: &[u8], signature: &[u8]) -> Result<bool, TlsError> {
    use k256::ecdsa::signature::Verifier;
    use k256::ecdsa::{Signature, VerifyingKey};
    let key = VerifyingKey::from_sec1_bytes(data)
        .map_err(|_| TlsError::BadExtension("secp256k1 key is not a valid point".into()))?;
    let Ok(sig) = Signature::from_der(signature) else {
        return Ok(false);
    };
    // k256 accepts only low-S signatures; go-libp2p and `cryptography` may produce either.
    let sig = sig.normalize_s().unwrap_or(sig);
    Ok(key.verify(message, &sig).is_ok())
}
