//! Glue for `rapidp2p-proto`: encode/decode the Noise handshake payload, Identify, the signed
//! Envelope and the PeerRecord. Decoded messages come back as tuples in field-number order
//! (cheaper to build than objects; the Python layer wraps them in dataclasses). Every decode
//! error raises `rapidp2p.exceptions.ProtobufError`.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rapidp2p_proto as proto;

use crate::errors::py_err;

type Bytes<'py> = Bound<'py, PyBytes>;

fn proto_err(py: Python<'_>, e: proto::ProtoError) -> PyErr {
    py_err(py, "ProtobufError", e.to_string())
}

fn to_vecs(items: &[Bytes<'_>]) -> Vec<Vec<u8>> {
    items.iter().map(|b| b.as_bytes().to_vec()).collect()
}

fn opt_bytes<'py>(py: Python<'py>, v: Option<Vec<u8>>) -> Option<Bytes<'py>> {
    v.map(|b| PyBytes::new(py, &b))
}

fn bytes_list<'py>(py: Python<'py>, v: &[Vec<u8>]) -> Vec<Bytes<'py>> {
    v.iter().map(|b| PyBytes::new(py, b)).collect()
}

/// Encodes a NoiseHandshakePayload; `extensions` is sent only when it carries something.
#[pyfunction]
#[pyo3(signature = (identity_key, identity_sig, stream_muxers = Vec::new(), webtransport_certhashes = Vec::new()))]
fn encode_noise_payload<'py>(
    py: Python<'py>,
    identity_key: &[u8],
    identity_sig: &[u8],
    stream_muxers: Vec<String>,
    webtransport_certhashes: Vec<Bytes<'py>>,
) -> Bytes<'py> {
    let extensions = if stream_muxers.is_empty() && webtransport_certhashes.is_empty() {
        None
    } else {
        Some(proto::NoiseExtensions {
            webtransport_certhashes: to_vecs(&webtransport_certhashes),
            stream_muxers,
        })
    };
    let msg = proto::NoiseHandshakePayload {
        identity_key: Some(identity_key.to_vec()),
        identity_sig: Some(identity_sig.to_vec()),
        extensions,
    };
    PyBytes::new(py, &proto::encode(&msg))
}

/// Decodes a NoiseHandshakePayload -> (identity_key, identity_sig, stream_muxers).
#[pyfunction]
fn decode_noise_payload<'py>(
    py: Python<'py>,
    data: &[u8],
) -> PyResult<(Bytes<'py>, Bytes<'py>, Vec<String>)> {
    let msg = proto::decode_noise_payload(data).map_err(|e| proto_err(py, e))?;
    let muxers = msg.extensions.map(|x| x.stream_muxers).unwrap_or_default();
    Ok((
        PyBytes::new(py, msg.identity_key.as_deref().unwrap_or_default()),
        PyBytes::new(py, msg.identity_sig.as_deref().unwrap_or_default()),
        muxers,
    ))
}

/// The `webtransport_certhashes` of a NoiseHandshakePayload's extensions (what a
/// WebTransport server lists; empty when it has none).
#[pyfunction]
fn decode_noise_certhashes<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Vec<Bytes<'py>>> {
    let msg = proto::decode_noise_payload(data).map_err(|e| proto_err(py, e))?;
    Ok(msg
        .extensions
        .map(|x| x.webtransport_certhashes)
        .unwrap_or_default()
        .iter()
        .map(|h| PyBytes::new(py, h))
        .collect())
}

/// Encodes an Identify message; `None` fields are omitted (identify-push sends only changes).
#[pyfunction]
#[pyo3(signature = (*, public_key = None, listen_addrs = Vec::new(), protocols = Vec::new(),
    observed_addr = None, protocol_version = None, agent_version = None, signed_peer_record = None))]
#[allow(clippy::too_many_arguments)]
fn encode_identify<'py>(
    py: Python<'py>,
    public_key: Option<&[u8]>,
    listen_addrs: Vec<Bytes<'py>>,
    protocols: Vec<String>,
    observed_addr: Option<&[u8]>,
    protocol_version: Option<String>,
    agent_version: Option<String>,
    signed_peer_record: Option<&[u8]>,
) -> Bytes<'py> {
    let msg = proto::Identify {
        public_key: public_key.map(<[u8]>::to_vec),
        listen_addrs: to_vecs(&listen_addrs),
        protocols,
        observed_addr: observed_addr.map(<[u8]>::to_vec),
        protocol_version,
        agent_version,
        signed_peer_record: signed_peer_record.map(<[u8]>::to_vec),
    };
    PyBytes::new(py, &proto::encode(&msg))
}

type IdentifyTuple<'py> = (
    Option<Bytes<'py>>,
    Vec<Bytes<'py>>,
    Vec<String>,
    Option<Bytes<'py>>,
    Option<String>,
    Option<String>,
    Option<Bytes<'py>>,
);

/// Decodes an Identify message (at most 8 KiB) -> (public_key, listen_addrs, protocols,
/// observed_addr, protocol_version, agent_version, signed_peer_record).
#[pyfunction]
fn decode_identify<'py>(py: Python<'py>, data: &[u8]) -> PyResult<IdentifyTuple<'py>> {
    let msg = proto::decode_identify(data).map_err(|e| proto_err(py, e))?;
    Ok((
        opt_bytes(py, msg.public_key),
        bytes_list(py, &msg.listen_addrs),
        msg.protocols,
        opt_bytes(py, msg.observed_addr),
        msg.protocol_version,
        msg.agent_version,
        opt_bytes(py, msg.signed_peer_record),
    ))
}

/// Encodes a signed Envelope; `public_key` is the encoded PublicKey protobuf.
#[pyfunction]
fn encode_envelope<'py>(
    py: Python<'py>,
    public_key: &[u8],
    payload_type: &[u8],
    payload: &[u8],
    signature: &[u8],
) -> Bytes<'py> {
    let env = proto::Envelope {
        public_key: public_key.to_vec(),
        payload_type: payload_type.to_vec(),
        payload: payload.to_vec(),
        signature: signature.to_vec(),
    };
    PyBytes::new(py, &proto::encode(&env))
}

/// Decodes an Envelope -> (public_key, payload_type, payload, signature); no verification.
#[pyfunction]
fn decode_envelope<'py>(
    py: Python<'py>,
    data: &[u8],
) -> PyResult<(Bytes<'py>, Bytes<'py>, Bytes<'py>, Bytes<'py>)> {
    let env = proto::decode_envelope(data).map_err(|e| proto_err(py, e))?;
    Ok((
        PyBytes::new(py, &env.public_key),
        PyBytes::new(py, &env.payload_type),
        PyBytes::new(py, &env.payload),
        PyBytes::new(py, &env.signature),
    ))
}

/// The bytes an envelope signature covers (RFC 0002 domain separation).
#[pyfunction]
fn envelope_signing_buffer<'py>(
    py: Python<'py>,
    domain: &[u8],
    payload_type: &[u8],
    payload: &[u8],
) -> Bytes<'py> {
    PyBytes::new(
        py,
        &proto::envelope_signing_buffer(domain, payload_type, payload),
    )
}

/// Encodes a PeerRecord from the peer id bytes, seq and binary multiaddrs.
#[pyfunction]
fn encode_peer_record<'py>(
    py: Python<'py>,
    peer_id: &[u8],
    seq: u64,
    addrs: Vec<Bytes<'py>>,
) -> Bytes<'py> {
    let rec = proto::PeerRecord {
        peer_id: peer_id.to_vec(),
        seq,
        addresses: addrs
            .iter()
            .map(|a| proto::AddressInfo {
                multiaddr: a.as_bytes().to_vec(),
            })
            .collect(),
    };
    PyBytes::new(py, &proto::encode(&rec))
}

/// Decodes a PeerRecord -> (peer_id, seq, addrs).
#[pyfunction]
fn decode_peer_record<'py>(
    py: Python<'py>,
    data: &[u8],
) -> PyResult<(Bytes<'py>, u64, Vec<Bytes<'py>>)> {
    let rec = proto::decode_peer_record(data).map_err(|e| proto_err(py, e))?;
    let addrs = rec
        .addresses
        .iter()
        .map(|a| PyBytes::new(py, &a.multiaddr))
        .collect();
    Ok((PyBytes::new(py, &rec.peer_id), rec.seq, addrs))
}

/// Encodes a `/plaintext/2.0.0` Exchange (`public_key` is the encoded PublicKey protobuf).
#[pyfunction]
fn encode_plaintext_exchange<'py>(
    py: Python<'py>,
    peer_id: &[u8],
    public_key: &[u8],
) -> Bytes<'py> {
    let msg = proto::PlaintextExchange {
        id: Some(peer_id.to_vec()),
        pubkey: Some(public_key.to_vec()),
    };
    PyBytes::new(py, &proto::encode(&msg))
}

/// Decodes a `/plaintext/2.0.0` Exchange -> (peer_id, public_key protobuf); both required.
#[pyfunction]
fn decode_plaintext_exchange<'py>(
    py: Python<'py>,
    data: &[u8],
) -> PyResult<(Bytes<'py>, Bytes<'py>)> {
    let msg = proto::decode_plaintext_exchange(data).map_err(|e| proto_err(py, e))?;
    Ok((
        PyBytes::new(py, msg.id.as_deref().unwrap_or_default()),
        PyBytes::new(py, msg.pubkey.as_deref().unwrap_or_default()),
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("MAX_IDENTIFY_SIZE", proto::MAX_IDENTIFY_SIZE)?;
    m.add("MAX_ENVELOPE_SIZE", proto::MAX_ENVELOPE_SIZE)?;
    m.add("MAX_NOISE_PAYLOAD_SIZE", proto::MAX_NOISE_PAYLOAD_SIZE)?;
    m.add_function(wrap_pyfunction!(encode_noise_payload, m)?)?;
    m.add_function(wrap_pyfunction!(decode_noise_payload, m)?)?;
    m.add_function(wrap_pyfunction!(decode_noise_certhashes, m)?)?;
    m.add_function(wrap_pyfunction!(encode_identify, m)?)?;
    m.add_function(wrap_pyfunction!(decode_identify, m)?)?;
    m.add_function(wrap_pyfunction!(encode_envelope, m)?)?;
    m.add_function(wrap_pyfunction!(decode_envelope, m)?)?;
    m.add_function(wrap_pyfunction!(envelope_signing_buffer, m)?)?;
    m.add_function(wrap_pyfunction!(encode_peer_record, m)?)?;
    m.add_function(wrap_pyfunction!(decode_peer_record, m)?)?;
    m.add(
        "MAX_PLAINTEXT_EXCHANGE_SIZE",
        proto::MAX_PLAINTEXT_EXCHANGE_SIZE,
    )?;
    m.add_function(wrap_pyfunction!(encode_plaintext_exchange, m)?)?;
    m.add_function(wrap_pyfunction!(decode_plaintext_exchange, m)?)?;
    Ok(())
}
