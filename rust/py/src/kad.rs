//! Glue for `rapidp2p-kad` (`_core.kad`): the routing table (`RoutingTable`), the
//! closest-peers lookup (`Query`), 256-bit keys and the kad protobuf codec. Peers cross the
//! boundary as peer-ID bytes and keys as 32-byte `bytes`; decoded messages come back as tuples
//! in field order (the Python layer wraps them in dataclasses). Bad wire input raises
//! `ProtobufError`, an oversized message `FrameTooLarge`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rapidp2p_kad::proto::{self, KadProtoError};
use rapidp2p_kad::{
    random_peer_id_in_bucket, ClosestPeersIter, Key, Next, QueryConfig, RoutingTable, TableConfig,
    Update,
};

use crate::errors::py_err;

type Bytes<'py> = Bound<'py, PyBytes>;

const UPDATE_INSERTED: u8 = 0;
const UPDATE_REFRESHED: u8 = 1;
const UPDATE_PENDING: u8 = 2;
const UPDATE_FULL: u8 = 3;
const UPDATE_REJECTED: u8 = 4;

const NEXT_WAITING: u8 = 0;
const NEXT_REQUEST: u8 = 1;
const NEXT_FINISHED: u8 = 2;

fn key32(data: &[u8]) -> PyResult<Key> {
    let arr: [u8; 32] = data
        .try_into()
        .map_err(|_| PyValueError::new_err("a kad key is 32 bytes"))?;
    Ok(Key(arr))
}

fn bytes_list<'py>(py: Python<'py>, items: impl IntoIterator<Item = Vec<u8>>) -> Vec<Bytes<'py>> {
    items.into_iter().map(|b| PyBytes::new(py, &b)).collect()
}

/// SHA-256 of `data`: the kad key of a peer ID or a record key.
#[pyfunction(name = "key")]
fn kad_key<'py>(py: Python<'py>, data: &[u8]) -> Bytes<'py> {
    PyBytes::new(py, &Key::from_preimage(data).0)
}

/// XOR of two 32-byte keys (compare results as big-endian bytes).
#[pyfunction(name = "distance")]
fn kad_distance<'py>(py: Python<'py>, a: &[u8], b: &[u8]) -> PyResult<Bytes<'py>> {
    Ok(PyBytes::new(py, &key32(a)?.distance(&key32(b)?).0))
}

/// The k-bucket routing table of one local peer.
#[pyclass(module = "rapidp2p._core.kad", name = "RoutingTable")]
pub struct KadRoutingTable {
    inner: RoutingTable,
}

#[pymethods]
impl KadRoutingTable {
    #[new]
    #[pyo3(signature = (local_peer, k = 20, max_group_per_bucket = None, max_group_per_table = None, now = 0.0))]
    fn new(
        local_peer: &[u8],
        k: usize,
        max_group_per_bucket: Option<usize>,
        max_group_per_table: Option<usize>,
        now: f64,
    ) -> Self {
        let cfg = TableConfig {
            k,
            max_group_per_bucket,
            max_group_per_table,
        };
        KadRoutingTable {
            inner: RoutingTable::new(local_peer, cfg, now),
        }
    }

    /// `peer` was seen alive: `(UPDATE_*, least-recently-seen peer to check or None)`.
    #[pyo3(signature = (peer, now, group = None))]
    fn update<'py>(
        &mut self,
        py: Python<'py>,
        peer: &[u8],
        now: f64,
        group: Option<&[u8]>,
    ) -> (u8, Option<Bytes<'py>>) {
        match self.inner.update(peer, now, group) {
            Update::Inserted => (UPDATE_INSERTED, None),
            Update::Refreshed => (UPDATE_REFRESHED, None),
            Update::Pending { lrs } => (UPDATE_PENDING, Some(PyBytes::new(py, &lrs))),
            Update::Full => (UPDATE_FULL, None),
            Update::Rejected(_) => (UPDATE_REJECTED, None),
        }
    }

    /// Outcome of checking the least-recently-seen peer; returns the peer inserted, if any.
    fn resolve_pending<'py>(
        &mut self,
        py: Python<'py>,
        lrs: &[u8],
        alive: bool,
        now: f64,
    ) -> Option<Bytes<'py>> {
        self.inner
            .resolve_pending(lrs, alive, now)
            .map(|p| PyBytes::new(py, &p))
    }

    /// Removes a peer; returns the pending peer promoted into its slot, if any.
    fn remove<'py>(&mut self, py: Python<'py>, peer: &[u8]) -> Option<Bytes<'py>> {
        self.inner.remove(peer).map(|p| PyBytes::new(py, &p))
    }

    /// Up to `n` peers closest to the 32-byte `key`, closest first.
    fn closest<'py>(&self, py: Python<'py>, key: &[u8], n: usize) -> PyResult<Vec<Bytes<'py>>> {
        let target = key32(key)?;
        Ok(self
            .inner
            .closest(&target, n)
            .into_iter()
            .map(|e| PyBytes::new(py, &e.peer))
            .collect())
    }

    /// Up to `n` peers closest to SHA-256(`preimage`), closest first.
    fn closest_to<'py>(&self, py: Python<'py>, preimage: &[u8], n: usize) -> Vec<Bytes<'py>> {
        let target = Key::from_preimage(preimage);
        self.inner
            .closest(&target, n)
            .into_iter()
            .map(|e| PyBytes::new(py, &e.peer))
            .collect()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __contains__(&self, peer: &[u8]) -> bool {
        self.inner.contains(peer)
    }

    /// Every peer held.
    fn peers<'py>(&self, py: Python<'py>) -> Vec<Bytes<'py>> {
        bytes_list(py, self.inner.entries().map(|e| e.peer.clone()))
    }

    /// The bucket index of a 32-byte key (None for the local key).
    fn bucket_index(&self, key: &[u8]) -> PyResult<Option<usize>> {
        Ok(self.inner.bucket_index(&key32(key)?))
    }

    fn populated_buckets(&self) -> Vec<usize> {
        self.inner.populated_buckets()
    }

    /// Peers of bucket `i`, least recently seen first.
    fn bucket<'py>(&self, py: Python<'py>, i: usize) -> Vec<Bytes<'py>> {
        bytes_list(py, self.inner.bucket(i).iter().map(|e| e.peer.clone()))
    }

    /// The pending peer of bucket `i`.
    fn pending<'py>(&self, py: Python<'py>, i: usize) -> Option<Bytes<'py>> {
        self.inner.pending(i).map(|e| PyBytes::new(py, &e.peer))
    }

    #[pyo3(signature = (now, interval, max_cpl = 15))]
    fn stale_buckets(&self, now: f64, interval: f64, max_cpl: usize) -> Vec<usize> {
        self.inner.stale_buckets(now, interval, max_cpl)
    }

    fn mark_refreshed(&mut self, i: usize, now: f64) {
        self.inner.mark_refreshed(i, now);
    }

    /// Marks the bucket of a 32-byte key refreshed.
    fn touch(&mut self, key: &[u8], now: f64) -> PyResult<()> {
        self.inner.touch(&key32(key)?, now);
        Ok(())
    }

    fn last_refresh(&self, i: usize) -> Option<f64> {
        self.inner.last_refresh(i)
    }

    /// A valid (Ed25519 identity) peer ID whose key falls in bucket `i`, or None.
    #[pyo3(signature = (i, seed, max_tries = 65536))]
    fn random_peer_id_in_bucket<'py>(
        &self,
        py: Python<'py>,
        i: usize,
        seed: u64,
        max_tries: u32,
    ) -> Option<Bytes<'py>> {
        random_peer_id_in_bucket(self.inner.local_key(), i, seed, max_tries)
            .map(|p| PyBytes::new(py, &p))
    }

    #[getter]
    fn local_key<'py>(&self, py: Python<'py>) -> Bytes<'py> {
        PyBytes::new(py, &self.inner.local_key().0)
    }

    #[getter]
    fn k(&self) -> usize {
        self.inner.k()
    }
}

/// One iterative closest-peers lookup (sans-IO).
#[pyclass(module = "rapidp2p._core.kad", name = "Query")]
pub struct KadQuery {
    inner: ClosestPeersIter,
}

#[pymethods]
impl KadQuery {
    #[new]
    #[pyo3(signature = (key, seeds, alpha = 3, k = 20, timeout = 10.0, max_candidates = 1024, local = None))]
    fn new(
        key: &[u8],
        seeds: Vec<Vec<u8>>,
        alpha: usize,
        k: usize,
        timeout: f64,
        max_candidates: usize,
        local: Option<&[u8]>,
    ) -> PyResult<Self> {
        let cfg = QueryConfig {
            alpha,
            k,
            timeout,
            max_candidates,
        };
        Ok(KadQuery {
            inner: ClosestPeersIter::new(key32(key)?, seeds, cfg, local),
        })
    }

    /// One step: `(NEXT_WAITING, None)`, `(NEXT_REQUEST, peer)` or `(NEXT_FINISHED, None)`.
    fn next<'py>(&mut self, py: Python<'py>, now: f64) -> (u8, Option<Bytes<'py>>) {
        match self.inner.next(now) {
            Next::Waiting => (NEXT_WAITING, None),
            Next::Request(p) => (NEXT_REQUEST, Some(PyBytes::new(py, &p))),
            Next::Finished => (NEXT_FINISHED, None),
        }
    }

    /// Every request to send now, and whether the lookup is finished.
    fn poll<'py>(&mut self, py: Python<'py>, now: f64) -> (Vec<Bytes<'py>>, bool) {
        let mut out = Vec::new();
        loop {
            match self.inner.next(now) {
                Next::Request(p) => out.push(PyBytes::new(py, &p)),
                Next::Waiting => return (out, false),
                Next::Finished => return (out, true),
            }
        }
    }

    fn on_success(&mut self, peer: &[u8], closer: Vec<Vec<u8>>) -> bool {
        self.inner.on_success(peer, closer)
    }

    fn on_failure(&mut self, peer: &[u8]) -> bool {
        self.inner.on_failure(peer)
    }

    fn finish(&mut self) {
        self.inner.finish();
    }

    #[getter]
    fn finished(&self) -> bool {
        self.inner.is_finished()
    }

    fn next_deadline(&self) -> Option<f64> {
        self.inner.next_deadline()
    }

    /// Up to k peers that answered, closest first.
    fn result<'py>(&self, py: Python<'py>) -> Vec<Bytes<'py>> {
        bytes_list(py, self.inner.result())
    }

    fn hops(&self, peer: &[u8]) -> Option<u32> {
        self.inner.hops(peer)
    }

    #[getter]
    fn num_waiting(&self) -> usize {
        self.inner.num_waiting()
    }

    /// (requests sent, successes, failures).
    #[getter]
    fn stats(&self) -> (u64, u64, u64) {
        self.inner.stats()
    }
}

type PeerTuple = (Vec<u8>, Vec<Vec<u8>>, i32);

fn to_peers(items: Vec<PeerTuple>) -> Vec<proto::Peer> {
    items
        .into_iter()
        .map(|(id, addrs, connection)| proto::Peer {
            id,
            addrs,
            connection,
        })
        .collect()
}

/// Encodes a kad `Message`. `record`: `(key, value, time_received)`; peers:
/// `(id, [addr bytes], connection)`.
#[pyfunction(name = "encode_message")]
#[pyo3(signature = (r#type, key = Vec::new(), record = None, closer_peers = Vec::new(), provider_peers = Vec::new(), cluster_level = 0))]
fn kad_encode_message<'py>(
    py: Python<'py>,
    r#type: i32,
    key: Vec<u8>,
    record: Option<(Vec<u8>, Vec<u8>, String)>,
    closer_peers: Vec<PeerTuple>,
    provider_peers: Vec<PeerTuple>,
    cluster_level: i32,
) -> Bytes<'py> {
    let msg = proto::Message {
        r#type,
        key,
        record: record.map(|(key, value, time_received)| proto::Record {
            key,
            value,
            time_received,
        }),
        closer_peers: to_peers(closer_peers),
        provider_peers: to_peers(provider_peers),
        cluster_level_raw: cluster_level,
    };
    PyBytes::new(py, &proto::encode_message(&msg))
}

type PeerOut<'py> = (Bytes<'py>, Vec<Bytes<'py>>, i32);
type RecordOut<'py> = (Bytes<'py>, Bytes<'py>, String);
type MessageOut<'py> = (
    i32,
    Bytes<'py>,
    Option<RecordOut<'py>>,
    Vec<PeerOut<'py>>,
    Vec<PeerOut<'py>>,
    i32,
);

fn peers_out<'py>(py: Python<'py>, peers: Vec<proto::Peer>) -> Vec<PeerOut<'py>> {
    peers
        .into_iter()
        .map(|p| {
            (
                PyBytes::new(py, &p.id),
                bytes_list(py, p.addrs),
                p.connection,
            )
        })
        .collect()
}

/// Decodes a kad `Message` of at most `max_size` bytes keeping at most `max_peers` closer
/// and provider peers: `(type, key, record | None, closer, providers, cluster_level)`.
#[pyfunction(name = "decode_message")]
#[pyo3(signature = (data, max_size = proto::DEFAULT_MAX_MESSAGE_SIZE, max_peers = 20))]
fn kad_decode_message<'py>(
    py: Python<'py>,
    data: &[u8],
    max_size: usize,
    max_peers: usize,
) -> PyResult<MessageOut<'py>> {
    let msg = proto::decode_message(data, max_size, max_peers).map_err(|e| match e {
        KadProtoError::TooLarge { .. } => py_err(py, "FrameTooLarge", e.to_string()),
        KadProtoError::Invalid(_) => py_err(py, "ProtobufError", e.to_string()),
    })?;
    Ok((
        msg.r#type,
        PyBytes::new(py, &msg.key),
        msg.record.map(|r| {
            (
                PyBytes::new(py, &r.key),
                PyBytes::new(py, &r.value),
                r.time_received,
            )
        }),
        peers_out(py, msg.closer_peers),
        peers_out(py, msg.provider_peers),
        msg.cluster_level_raw,
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<KadRoutingTable>()?;
    m.add_class::<KadQuery>()?;
    m.add_function(wrap_pyfunction!(kad_key, m)?)?;
    m.add_function(wrap_pyfunction!(kad_distance, m)?)?;
    m.add_function(wrap_pyfunction!(kad_encode_message, m)?)?;
    m.add_function(wrap_pyfunction!(kad_decode_message, m)?)?;
    m.add("UPDATE_INSERTED", UPDATE_INSERTED)?;
    m.add("UPDATE_REFRESHED", UPDATE_REFRESHED)?;
    m.add("UPDATE_PENDING", UPDATE_PENDING)?;
    m.add("UPDATE_FULL", UPDATE_FULL)?;
    m.add("UPDATE_REJECTED", UPDATE_REJECTED)?;
    m.add("NEXT_WAITING", NEXT_WAITING)?;
    m.add("NEXT_REQUEST", NEXT_REQUEST)?;
    m.add("NEXT_FINISHED", NEXT_FINISHED)?;
    m.add("MAX_MESSAGE_SIZE", proto::DEFAULT_MAX_MESSAGE_SIZE)?;
    Ok(())
}
