//! Glue for `rapidp2p-wire`: varints, framing, key protobufs, multibase, multihash, CID,
//! peer IDs and multiaddrs. Every function does one whole job per call.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use rapidp2p_wire::multibase::Base;
use rapidp2p_wire::WireError;
use rapidp2p_wire::{cid, frame, keyproto, multiaddr, multibase, multihash, peerid, varint};

use crate::errors::py_err;

/// Maps the crate's error to its exception class in `rapidp2p.exceptions`.
fn wire_err(py: Python<'_>, e: WireError) -> PyErr {
    let class = match &e {
        WireError::Varint(_) => "VarintError",
        WireError::FrameTooLarge { .. } => "FrameTooLarge",
        WireError::Multibase(_) => "MultibaseError",
        WireError::Multihash(_) => "MultihashError",
        WireError::Cid(_) => "CidError",
        WireError::Multiaddr(_) => "MultiaddrError",
        WireError::Protobuf(_) => "ProtobufError",
        WireError::PeerId(_) => "PeerIdError",
        WireError::Eof(_) => "DecodeError",
    };
    py_err(py, class, e.to_string())
}

/// Encodes a non-negative integer below 2**63 as an unsigned varint.
#[pyfunction]
fn varint_encode<'py>(py: Python<'py>, value: u64) -> PyResult<Bound<'py, PyBytes>> {
    if value >= 1 << 63 {
        return Err(py_err(
            py,
            "VarintError",
            "varint value must be below 2**63".into(),
        ));
    }
    let mut out = Vec::with_capacity(varint::MAX_VARINT_LEN);
    varint::encode(value, &mut out);
    Ok(PyBytes::new(py, &out))
}

/// Decodes one varint from the start of `data`; returns (value, bytes consumed).
#[pyfunction]
fn varint_decode(py: Python<'_>, data: &[u8]) -> PyResult<(u64, usize)> {
    varint::decode(data).map_err(|e| wire_err(py, e.into()))
}

/// Encodes a PublicKey/PrivateKey protobuf (Type, Data) deterministically.
#[pyfunction]
fn encode_key_protobuf<'py>(
    py: Python<'py>,
    key_type: u64,
    data: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::new();
    keyproto::encode(key_type, data, &mut out).map_err(|e| wire_err(py, e))?;
    Ok(PyBytes::new(py, &out))
}

/// Decodes a PublicKey/PrivateKey protobuf strictly; returns (key_type, data).
#[pyfunction]
fn decode_key_protobuf<'py>(py: Python<'py>, data: &[u8]) -> PyResult<(u64, Bound<'py, PyBytes>)> {
    let (key_type, body) = keyproto::decode(data).map_err(|e| wire_err(py, e))?;
    Ok((key_type, PyBytes::new(py, body)))
}

/// Borrows a str argument as UTF-8; lone surrogates raise `class`, a DecodeError subclass.
fn utf8<'a>(py: Python<'_>, s: &'a Bound<'_, PyString>, class: &str) -> PyResult<&'a str> {
    s.to_str()
        .map_err(|_| py_err(py, class, "text is not valid Unicode".into()))
}

fn base_arg(py: Python<'_>, base: &str) -> PyResult<Base> {
    Base::from_name(base).map_err(|e| wire_err(py, e))
}

/// Splits every complete varint-length-prefixed frame off `data`.
///
/// Returns (frames, consumed): keep `data[consumed:]` for the next call. A length over
/// `max_len` raises FrameTooLarge before its body arrives; with `eof=True` a partial tail
/// raises DecodeError (the stream ended inside a frame).
#[pyfunction]
#[pyo3(signature = (data, max_len, eof = false))]
fn split_frames<'py>(
    py: Python<'py>,
    data: &[u8],
    max_len: u64,
    eof: bool,
) -> PyResult<(Bound<'py, PyList>, usize)> {
    let mut it = frame::Frames::new(data, max_len);
    let list = PyList::empty(py);
    for f in it.by_ref() {
        let f = f.map_err(|e| wire_err(py, e))?;
        list.append(PyBytes::new(py, f))?;
    }
    if eof {
        it.check_eof().map_err(|e| wire_err(py, e))?;
    }
    Ok((list, it.consumed()))
}

/// Prefixes `payload` with its varint length.
#[pyfunction]
fn encode_frame<'py>(py: Python<'py>, payload: &[u8]) -> Bound<'py, PyBytes> {
    let mut out = Vec::with_capacity(varint::MAX_VARINT_LEN + payload.len());
    frame::encode(payload, &mut out);
    PyBytes::new(py, &out)
}

/// Multibase text of `data`; `base` is a name ("base58btc", "base32", ...) or a prefix.
#[pyfunction]
fn multibase_encode(py: Python<'_>, base: &str, data: &[u8]) -> PyResult<String> {
    Ok(multibase::encode(base_arg(py, base)?, data))
}

/// Decodes multibase text; returns (base name, bytes).
#[pyfunction]
fn multibase_decode<'py>(
    py: Python<'py>,
    text: &Bound<'py, PyString>,
) -> PyResult<(&'static str, Bound<'py, PyBytes>)> {
    let (base, data) =
        multibase::decode(utf8(py, text, "MultibaseError")?).map_err(|e| wire_err(py, e))?;
    Ok((base.name(), PyBytes::new(py, &data)))
}

/// Multihash bytes of `digest` under `code` (identity 0x00, sha2-256 0x12, sha2-512 0x13).
#[pyfunction]
fn multihash_encode<'py>(
    py: Python<'py>,
    code: u64,
    digest: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::with_capacity(4 + digest.len());
    multihash::encode(code, digest, &mut out).map_err(|e| wire_err(py, e))?;
    Ok(PyBytes::new(py, &out))
}

/// Decodes a multihash that fills `data`; returns (code, digest).
#[pyfunction]
fn multihash_decode<'py>(py: Python<'py>, data: &[u8]) -> PyResult<(u64, Bound<'py, PyBytes>)> {
    let mh = multihash::decode(data).map_err(|e| wire_err(py, e))?;
    Ok((mh.code, PyBytes::new(py, mh.digest)))
}

/// The sha2-256 multihash of `data`.
#[pyfunction]
fn multihash_sha256<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
    let mut out = Vec::with_capacity(34);
    multihash::sha256(data, &mut out);
    PyBytes::new(py, &out)
}

/// CIDv1 text of `multihash` under `codec`.
#[pyfunction]
#[pyo3(signature = (codec, multihash, base = "base32"))]
fn cid_encode(py: Python<'_>, codec: u64, multihash: &[u8], base: &str) -> PyResult<String> {
    cid::encode_v1_text(codec, multihash, base_arg(py, base)?).map_err(|e| wire_err(py, e))
}

/// Decodes CID text (v0 "Qm..." or multibase v1); returns (version, codec, multihash).
#[pyfunction]
fn cid_decode<'py>(
    py: Python<'py>,
    text: &Bound<'py, PyString>,
) -> PyResult<(u64, u64, Bound<'py, PyBytes>)> {
    let c = cid::decode_text(utf8(py, text, "CidError")?).map_err(|e| wire_err(py, e))?;
    Ok((c.version, c.codec, PyBytes::new(py, &c.multihash)))
}

/// Peer-ID bytes of a public-key protobuf (identity multihash up to 42 bytes, else sha2-256).
#[pyfunction(name = "from_public_key")]
fn peer_id_from_public_key<'py>(py: Python<'py>, key: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::with_capacity(44);
    peerid::from_public_key_protobuf(key, &mut out).map_err(|e| wire_err(py, e))?;
    Ok(PyBytes::new(py, &out))
}

/// Raises PeerIdError unless `data` is a valid peer ID.
#[pyfunction(name = "validate")]
fn peer_id_validate(py: Python<'_>, data: &[u8]) -> PyResult<()> {
    peerid::validate(data).map_err(|e| wire_err(py, e))
}

/// Base58btc text of peer-ID bytes (not re-validated: callers hold validated bytes).
#[pyfunction(name = "to_base58")]
fn peer_id_to_base58(data: &[u8]) -> String {
    peerid::to_base58(data)
}

/// Peer-ID bytes from base58btc text.
#[pyfunction(name = "from_base58")]
fn peer_id_from_base58<'py>(
    py: Python<'py>,
    text: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyBytes>> {
    let id = peerid::from_base58(utf8(py, text, "PeerIdError")?).map_err(|e| wire_err(py, e))?;
    Ok(PyBytes::new(py, &id))
}

/// Peer-ID bytes from either text form (base58btc or libp2p-key CIDv1).
#[pyfunction(name = "from_string")]
fn peer_id_from_string<'py>(
    py: Python<'py>,
    text: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyBytes>> {
    let id = peerid::from_text(utf8(py, text, "PeerIdError")?).map_err(|e| wire_err(py, e))?;
    Ok(PyBytes::new(py, &id))
}

/// CIDv1 text (libp2p-key) of peer-ID bytes.
#[pyfunction(name = "to_cid")]
#[pyo3(signature = (data, base = "base32"))]
fn peer_id_to_cid(py: Python<'_>, data: &[u8], base: &str) -> PyResult<String> {
    peerid::to_cid(data, base_arg(py, base)?).map_err(|e| wire_err(py, e))
}

/// The public-key protobuf inlined in an identity peer ID, else None.
#[pyfunction(name = "public_key")]
fn peer_id_public_key<'py>(py: Python<'py>, data: &[u8]) -> Option<Bound<'py, PyBytes>> {
    peerid::inline_public_key(data).map(|k| PyBytes::new(py, k))
}

/// Binary form of multiaddr text.
#[pyfunction]
fn multiaddr_from_string<'py>(
    py: Python<'py>,
    text: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyBytes>> {
    let bin =
        multiaddr::from_text(utf8(py, text, "MultiaddrError")?).map_err(|e| wire_err(py, e))?;
    Ok(PyBytes::new(py, &bin))
}

/// Canonical text of a binary multiaddr (validates it).
#[pyfunction]
fn multiaddr_to_string(py: Python<'_>, data: &[u8]) -> PyResult<String> {
    multiaddr::to_text(data).map_err(|e| wire_err(py, e))
}

/// Raises MultiaddrError unless `data` is a valid binary multiaddr.
#[pyfunction]
fn multiaddr_validate(py: Python<'_>, data: &[u8]) -> PyResult<()> {
    multiaddr::validate(data).map_err(|e| wire_err(py, e))
}

type ComponentTuple = (u32, &'static str, Option<String>, usize, usize);

/// Components of a binary multiaddr: (code, name, value text or None, start, value_start).
#[pyfunction]
fn multiaddr_components(py: Python<'_>, data: &[u8]) -> PyResult<Vec<ComponentTuple>> {
    multiaddr::components(data)
        .map(|c| {
            c.map(|c| {
                (
                    c.protocol.code,
                    c.protocol.name,
                    c.value_text(),
                    c.start,
                    c.value_start,
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| wire_err(py, e))
}

/// The protocol table: (code, name, has_value) for every protocol the codec knows.
#[pyfunction]
fn multiaddr_protocols() -> Vec<(u32, &'static str, bool)> {
    multiaddr::ALL
        .iter()
        .map(|p| (p.code, p.name, p.kind != multiaddr::Kind::Empty))
        .collect()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(varint_encode, m)?)?;
    m.add_function(wrap_pyfunction!(varint_decode, m)?)?;
    m.add_function(wrap_pyfunction!(encode_key_protobuf, m)?)?;
    m.add_function(wrap_pyfunction!(decode_key_protobuf, m)?)?;
    m.add_function(wrap_pyfunction!(split_frames, m)?)?;
    m.add_function(wrap_pyfunction!(encode_frame, m)?)?;
    m.add_function(wrap_pyfunction!(multibase_encode, m)?)?;
    m.add_function(wrap_pyfunction!(multibase_decode, m)?)?;
    m.add_function(wrap_pyfunction!(multihash_encode, m)?)?;
    m.add_function(wrap_pyfunction!(multihash_decode, m)?)?;
    m.add_function(wrap_pyfunction!(multihash_sha256, m)?)?;
    m.add_function(wrap_pyfunction!(cid_encode, m)?)?;
    m.add_function(wrap_pyfunction!(cid_decode, m)?)?;
    m.add_function(wrap_pyfunction!(multiaddr_from_string, m)?)?;
    m.add_function(wrap_pyfunction!(multiaddr_to_string, m)?)?;
    m.add_function(wrap_pyfunction!(multiaddr_validate, m)?)?;
    m.add_function(wrap_pyfunction!(multiaddr_components, m)?)?;
    m.add_function(wrap_pyfunction!(multiaddr_protocols, m)?)?;
    Ok(())
}

/// `_core.peer_id`: peer IDs as bytes, in text (base58 or CID) and back.
pub fn register_peer_id(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(peer_id_from_public_key, m)?)?;
    m.add_function(wrap_pyfunction!(peer_id_validate, m)?)?;
    m.add_function(wrap_pyfunction!(peer_id_to_base58, m)?)?;
    m.add_function(wrap_pyfunction!(peer_id_from_base58, m)?)?;
    m.add_function(wrap_pyfunction!(peer_id_from_string, m)?)?;
    m.add_function(wrap_pyfunction!(peer_id_to_cid, m)?)?;
    m.add_function(wrap_pyfunction!(peer_id_public_key, m)?)?;
    Ok(())
}
