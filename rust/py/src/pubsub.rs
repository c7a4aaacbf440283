//! Glue for `rapidp2p-pubsub`: the pubsub RPC codec. Decoded RPCs come back as plain tuples
//! (cheap to build; the Python router wraps what it keeps). Messages are encoded once and then
//! spliced into per-peer RPC frames as already-encoded bytes, so a message forwarded to D
//! peers costs one encoding. Decode errors raise `rapidp2p.exceptions.ProtobufError`
//! (`FrameTooLarge` when over the size cap).

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rapidp2p_pubsub as ps;

use crate::errors::py_err;

type Bytes<'py> = Bound<'py, PyBytes>;
type MsgTuple<'py> = (
    Option<Bytes<'py>>,
    Option<Bytes<'py>>,
    Option<Bytes<'py>>,
    Option<String>,
    Option<Bytes<'py>>,
    Option<Bytes<'py>>,
);
type PruneTuple<'py> = (
    String,
    Vec<(Option<Bytes<'py>>, Option<Bytes<'py>>)>,
    Option<u64>,
);
type ControlTuple<'py> = (
    Vec<(String, Vec<Bytes<'py>>)>,
    Vec<Bytes<'py>>,
    Vec<String>,
    Vec<PruneTuple<'py>>,
    Vec<Bytes<'py>>,
);
type RpcTuple<'py> = (
    Vec<(bool, String)>,
    Vec<MsgTuple<'py>>,
    Option<ControlTuple<'py>>,
);

fn ob<'py>(py: Python<'py>, v: Option<Vec<u8>>) -> Option<Bytes<'py>> {
    v.map(|b| PyBytes::new(py, &b))
}

fn ids<'py>(py: Python<'py>, v: Vec<Vec<u8>>) -> Vec<Bytes<'py>> {
    v.into_iter().map(|b| PyBytes::new(py, &b)).collect()
}

/// Decodes one RPC frame -> (subscriptions, messages, control | None).
///
/// subscriptions: [(subscribe, topic)]; messages: [(from, data, seqno, topic, signature, key)]
/// with None for absent fields; control: (ihave [(topic, [id])], iwant [id], graft [topic],
/// prune [(topic, [(peer_id, signed_peer_record)], backoff | None)], idontwant [id]).
/// Entries without a topic are dropped; lists are trimmed to the crate's caps (100
/// subscriptions, 5000 IDs per kind, 100 PX peers per PRUNE).
#[pyfunction(name = "decode_rpc")]
#[pyo3(signature = (data, max_size = ps::DEFAULT_MAX_RPC_SIZE))]
fn decode_pubsub_rpc<'py>(
    py: Python<'py>,
    data: &[u8],
    max_size: usize,
) -> PyResult<RpcTuple<'py>> {
    let limits = ps::DecodeLimits {
        max_size,
        ..ps::DecodeLimits::default()
    };
    let rpc = ps::decode_rpc(data, &limits).map_err(|e| match e {
        ps::RpcError::TooLarge { .. } => py_err(py, "FrameTooLarge", e.to_string()),
        ps::RpcError::Invalid(_) => py_err(py, "ProtobufError", e.to_string()),
    })?;
    let subs = rpc
        .subscriptions
        .into_iter()
        .filter_map(|s| Some((s.subscribe.unwrap_or(false), s.topic_id?)))
        .collect();
    let msgs = rpc
        .publish
        .into_iter()
        .map(|m| {
            (
                ob(py, m.from),
                ob(py, m.data),
                ob(py, m.seqno),
                m.topic,
                ob(py, m.signature),
                ob(py, m.key),
            )
        })
        .collect();
    let control = rpc.control.map(|c| {
        let ihave = c
            .ihave
            .into_iter()
            .filter_map(|h| Some((h.topic_id?, ids(py, h.message_ids))))
            .collect();
        let iwant = ids(
            py,
            c.iwant.into_iter().flat_map(|w| w.message_ids).collect(),
        );
        let graft = c.graft.into_iter().filter_map(|g| g.topic_id).collect();
        let prune = c
            .prune
            .into_iter()
            .filter_map(|p| {
                let peers = p
                    .peers
                    .into_iter()
                    .map(|i| (ob(py, i.peer_id), ob(py, i.signed_peer_record)))
                    .collect();
                Some((p.topic_id?, peers, p.backoff))
            })
            .collect();
        let idontwant = ids(
            py,
            c.idontwant
                .into_iter()
                .flat_map(|w| w.message_ids)
                .collect(),
        );
        (ihave, iwant, graft, prune, idontwant)
    });
    Ok((subs, msgs, control))
}

/// Encodes one message (the bytes `encode_pubsub_rpc` splices in as `messages`).
#[pyfunction(name = "encode_message")]
#[pyo3(signature = (from_, data, seqno, topic, signature = None, key = None))]
fn encode_pubsub_message<'py>(
    py: Python<'py>,
    from_: Option<&[u8]>,
    data: Option<&[u8]>,
    seqno: Option<&[u8]>,
    topic: Option<&str>,
    signature: Option<&[u8]>,
    key: Option<&[u8]>,
) -> Bytes<'py> {
    let msg = ps::Message {
        from: from_.map(<[u8]>::to_vec),
        data: data.map(<[u8]>::to_vec),
        seqno: seqno.map(<[u8]>::to_vec),
        topic: topic.map(str::to_owned),
        signature: signature.map(<[u8]>::to_vec),
        key: key.map(<[u8]>::to_vec),
    };
    PyBytes::new(py, &ps::encode_message(&msg))
}

/// `"libp2p-pubsub:" || encode(Message{from, data, seqno, topic})`.
#[pyfunction(name = "signing_bytes")]
#[pyo3(signature = (from_, data, seqno, topic))]
fn pubsub_signing_bytes<'py>(
    py: Python<'py>,
    from_: Option<&[u8]>,
    data: Option<&[u8]>,
    seqno: Option<&[u8]>,
    topic: Option<&str>,
) -> Bytes<'py> {
    PyBytes::new(py, &ps::signing_bytes(from_, data, seqno, topic))
}

/// Encodes an RPC frame (no length prefix). `messages` are already-encoded messages.
#[pyfunction(name = "encode_rpc")]
#[pyo3(signature = (*, subscriptions = Vec::new(), messages = Vec::new(), ihave = Vec::new(),
    iwant = Vec::new(), graft = Vec::new(), prune = Vec::new(), idontwant = Vec::new()))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn encode_pubsub_rpc<'py>(
    py: Python<'py>,
    subscriptions: Vec<(bool, String)>,
    messages: Vec<Bytes<'py>>,
    ihave: Vec<(String, Vec<Vec<u8>>)>,
    iwant: Vec<Vec<u8>>,
    graft: Vec<String>,
    prune: Vec<(String, Vec<(Option<Vec<u8>>, Option<Vec<u8>>)>, Option<u64>)>,
    idontwant: Vec<Vec<u8>>,
) -> Bytes<'py> {
    let subscriptions = subscriptions
        .into_iter()
        .map(|(s, t)| ps::SubOpts {
            subscribe: Some(s),
            topic_id: Some(t),
        })
        .collect();
    let has_control = !(ihave.is_empty()
        && iwant.is_empty()
        && graft.is_empty()
        && prune.is_empty()
        && idontwant.is_empty());
    let control = has_control.then(|| ps::ControlMessage {
        ihave: ihave
            .into_iter()
            .map(|(t, ids)| ps::ControlIHave {
                topic_id: Some(t),
                message_ids: ids,
            })
            .collect(),
        iwant: if iwant.is_empty() {
            Vec::new()
        } else {
            vec![ps::ControlIWant { message_ids: iwant }]
        },
        graft: graft
            .into_iter()
            .map(|t| ps::ControlGraft { topic_id: Some(t) })
            .collect(),
        prune: prune
            .into_iter()
            .map(|(t, peers, backoff)| ps::ControlPrune {
                topic_id: Some(t),
                peers: peers
                    .into_iter()
                    .map(|(p, r)| ps::PeerInfo {
                        peer_id: p,
                        signed_peer_record: r,
                    })
                    .collect(),
                backoff,
            })
            .collect(),
        idontwant: if idontwant.is_empty() {
            Vec::new()
        } else {
            vec![ps::ControlIDontWant {
                message_ids: idontwant,
            }]
        },
    });
    let head = ps::Rpc {
        subscriptions,
        publish: Vec::new(),
        control: None,
    };
    let mut out = ps::encode_rpc(&head);
    for m in &messages {
        ps::append_field(&mut out, 2, m.as_bytes());
    }
    if let Some(c) = control {
        ps::append_field(&mut out, 3, &ps::encode_control(&c));
    }
    PyBytes::new(py, &out)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode_pubsub_rpc, m)?)?;
    m.add_function(wrap_pyfunction!(encode_pubsub_message, m)?)?;
    m.add_function(wrap_pyfunction!(pubsub_signing_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(encode_pubsub_rpc, m)?)?;
    m.add("DEFAULT_MAX_RPC_SIZE", ps::DEFAULT_MAX_RPC_SIZE)?;
    Ok(())
}
