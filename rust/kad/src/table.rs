//! The k-bucket routing table.
//!
//! Bucket `i` holds peers whose distance to the local key has its highest set bit at `i`
//! (bucket 255: the far half of the key space; bucket 0: the single closest key). Only
//! populated buckets are allocated. Entries are kept least-recently-seen first; when a full
//! bucket meets a new peer, the newcomer waits in the bucket's pending slot while the caller
//! checks (pings) the least-recently-seen entry, then reports the outcome with
//! [`RoutingTable::resolve_pending`]: a live entry stays (and the newcomer is dropped), a dead
//! one is evicted and the newcomer takes its place.

use std::collections::HashMap;

use crate::key::{Distance, Key, KEY_BITS};

/// One peer in the table.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The peer ID bytes (the key's preimage).
    pub peer: Vec<u8>,
    pub key: Key,
    /// When the peer was last seen alive (caller's clock, seconds).
    pub last_seen: f64,
    /// The peer's network group (e.g. the /16 of its IPv4 address) for the diversity filter.
    pub group: Option<Vec<u8>>,
}

#[derive(Default)]
struct Bucket {
    entries: Vec<Entry>,
    pending: Option<Entry>,
}

/// Table parameters.
#[derive(Clone, Copy, Debug)]
pub struct TableConfig {
    /// Bucket size (the replication parameter k).
    pub k: usize,
    /// Max peers of one network group in a bucket (None: no diversity filter).
    pub max_group_per_bucket: Option<usize>,
    /// Max peers of one network group in the whole table (None: no cap).
    pub max_group_per_table: Option<usize>,
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            k: 20,
            max_group_per_bucket: None,
            max_group_per_table: None,
        }
    }
}

/// What [`RoutingTable::update`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// The peer was new and took a free slot.
    Inserted,
    /// The peer was already present: marked most recently seen.
    Refreshed,
    /// The bucket is full: the peer is now pending; check `lrs` (least recently seen) and call
    /// `resolve_pending`.
    Pending { lrs: Vec<u8> },
    /// The bucket is full and already has a pending peer: not added.
    Full,
    /// The peer is the local node, or the diversity filter refused its group.
    Rejected(&'static str),
}

/// A k-bucket table around one local key.
pub struct RoutingTable {
    local: Key,
    cfg: TableConfig,
    buckets: Vec<Option<Box<Bucket>>>,
    /// Last refresh time of each bucket (a lookup for a key in it, or a refresh).
    refreshed: Vec<f64>,
    /// peer bytes -> bucket index, for O(1) membership.
    index: HashMap<Vec<u8>, usize>,
    groups: HashMap<Vec<u8>, usize>,
}

impl RoutingTable {
    /// An empty table for the peer whose ID bytes are `local_peer`; every bucket counts as
    /// refreshed at `now`.
    pub fn new(local_peer: &[u8], cfg: TableConfig, now: f64) -> Self {
        let cfg = TableConfig {
            k: cfg.k.max(1),
            ..cfg
        };
        RoutingTable {
            local: Key::from_preimage(local_peer),
            cfg,
            buckets: (0..KEY_BITS).map(|_| None).collect(),
            refreshed: vec![now; KEY_BITS],
            index: HashMap::new(),
            groups: HashMap::new(),
        }
    }

    pub fn local_key(&self) -> &Key {
        &self.local
    }

    pub fn k(&self) -> usize {
        self.cfg.k
    }

    /// Number of peers held (pending ones excluded).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn contains(&self, peer: &[u8]) -> bool {
        self.index.contains_key(peer)
    }

    /// The bucket index of `key` relative to the local key (None for the local key).
    pub fn bucket_index(&self, key: &Key) -> Option<usize> {
        self.local.distance(key).bucket_index()
    }

    /// Indices of the buckets that hold at least one peer, ascending.
    pub fn populated_buckets(&self) -> Vec<usize> {
        (0..KEY_BITS)
            .filter(|&i| {
                self.buckets[i]
                    .as_ref()
                    .is_some_and(|b| !b.entries.is_empty())
            })
            .collect()
    }

    /// The entries of bucket `i`, least recently seen first.
    pub fn bucket(&self, i: usize) -> &[Entry] {
        match self.buckets.get(i).and_then(|b| b.as_ref()) {
            Some(b) => &b.entries,
            None => &[],
        }
    }

    /// The pending entry of bucket `i`, if any.
    pub fn pending(&self, i: usize) -> Option<&Entry> {
        self.buckets
            .get(i)
            .and_then(|b| b.as_ref())
            .and_then(|b| b.pending.as_ref())
    }

    /// Every peer held, bucket by bucket.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flatten().flat_map(|b| b.entries.iter())
    }

    fn group_ok(&self, bucket: &Bucket, group: Option<&[u8]>) -> bool {
        let Some(g) = group else { return true };
        if let Some(max) = self.cfg.max_group_per_bucket {
            let n = bucket
                .entries
                .iter()
                .filter(|e| e.group.as_deref() == Some(g))
                .count();
            if n >= max {
                return false;
            }
        }
        if let Some(max) = self.cfg.max_group_per_table {
            if self.groups.get(g).copied().unwrap_or(0) >= max {
                return false;
            }
        }
        true
    }

    fn add_group(&mut self, group: &Option<Vec<u8>>) {
        if let Some(g) = group {
            *self.groups.entry(g.clone()).or_insert(0) += 1;
        }
    }

    fn drop_group(&mut self, group: &Option<Vec<u8>>) {
        if let Some(g) = group {
            if let Some(n) = self.groups.get_mut(g) {
                *n -= 1;
                if *n == 0 {
                    self.groups.remove(g);
                }
            }
        }
    }

    /// Records that `peer` was seen alive at `now` (inserting it if there is room).
    pub fn update(&mut self, peer: &[u8], now: f64, group: Option<&[u8]>) -> Update {
        let key = Key::from_preimage(peer);
        let Some(idx) = self.bucket_index(&key) else {
            return Update::Rejected("local peer");
        };
        let k = self.cfg.k;
        if self.index.contains_key(peer) {
            let bucket = self.buckets[idx].as_mut().expect("indexed bucket exists");
            if let Some(pos) = bucket.entries.iter().position(|e| e.peer == peer) {
                let mut e = bucket.entries.remove(pos);
                e.last_seen = now;
                bucket.entries.push(e);
            }
            return Update::Refreshed;
        }
        let bucket = self.buckets[idx].get_or_insert_with(Box::default);
        if let Some(p) = bucket.pending.as_mut() {
            if p.peer == peer {
                p.last_seen = now;
                let lrs = bucket
                    .entries
                    .first()
                    .map(|e| e.peer.clone())
                    .unwrap_or_default();
                return Update::Pending { lrs };
            }
        }
        // Check diversity against a detached view to keep the borrow checker happy.
        let bucket = self.buckets[idx].take().expect("just inserted");
        let ok = self.group_ok(&bucket, group);
        let mut bucket = bucket;
        let result = if !ok {
            Update::Rejected("diversity limit")
        } else if bucket.entries.len() < k {
            let entry = Entry {
                peer: peer.to_vec(),
                key,
                last_seen: now,
                group: group.map(<[u8]>::to_vec),
            };
            self.add_group(&entry.group);
            bucket.entries.push(entry);
            self.index.insert(peer.to_vec(), idx);
            Update::Inserted
        } else if bucket.pending.is_none() {
            bucket.pending = Some(Entry {
                peer: peer.to_vec(),
                key,
                last_seen: now,
                group: group.map(<[u8]>::to_vec),
            });
            Update::Pending {
                lrs: bucket.entries[0].peer.clone(),
            }
        } else {
            Update::Full
        };
        let empty = bucket.entries.is_empty() && bucket.pending.is_none();
        self.buckets[idx] = if empty { None } else { Some(bucket) };
        result
    }

    /// The check of the least-recently-seen peer `lrs` finished. Alive: it becomes most
    /// recently seen and the pending peer is dropped. Dead: it is evicted and the pending peer
    /// inserted. Returns the peer inserted, if any.
    pub fn resolve_pending(&mut self, lrs: &[u8], alive: bool, now: f64) -> Option<Vec<u8>> {
        let idx = *self.index.get(lrs)?;
        if alive {
            self.update(lrs, now, None);
            if let Some(b) = self.buckets[idx].as_mut() {
                b.pending = None;
            }
            return None;
        }
        self.remove(lrs)
    }

    /// Removes `peer` (from the table or a pending slot). When a pending peer is waiting in its
    /// bucket it takes the freed slot (if the diversity filter allows); returns that peer.
    pub fn remove(&mut self, peer: &[u8]) -> Option<Vec<u8>> {
        let key = Key::from_preimage(peer);
        let idx = self.bucket_index(&key)?;
        let Some(idx2) = self.index.remove(peer) else {
            if let Some(b) = self.buckets[idx].as_mut() {
                if b.pending.as_ref().is_some_and(|p| p.peer == peer) {
                    b.pending = None;
                }
            }
            self.prune(idx);
            return None;
        };
        let mut bucket = self.buckets[idx2].take()?;
        let mut promoted = None;
        if let Some(pos) = bucket.entries.iter().position(|e| e.peer == peer) {
            let gone = bucket.entries.remove(pos);
            self.drop_group(&gone.group);
        }
        if let Some(p) = bucket.pending.take() {
            if self.group_ok(&bucket, p.group.as_deref()) {
                self.add_group(&p.group);
                self.index.insert(p.peer.clone(), idx2);
                promoted = Some(p.peer.clone());
                bucket.entries.push(p);
            }
        }
        self.buckets[idx2] = Some(bucket);
        self.prune(idx2);
        promoted
    }

    fn prune(&mut self, idx: usize) {
        if self.buckets[idx]
            .as_ref()
            .is_some_and(|b| b.entries.is_empty() && b.pending.is_none())
        {
            self.buckets[idx] = None;
        }
    }

    /// Bucket indices in increasing order of distance to `target` (every bucket, populated or
    /// not). Peers of bucket `i` have distances to the target within one range that does not
    /// overlap any other bucket's, so walking buckets in this order and sorting each bucket
    /// yields the exact closest peers.
    pub fn bucket_order(&self, target: &Key) -> Vec<usize> {
        let d = self.local.distance(target);
        let mut order = Vec::with_capacity(KEY_BITS);
        match d.bucket_index() {
            None => order.extend(0..KEY_BITS),
            Some(t) => {
                // Same bucket as the target: distances below 2^t.
                order.push(t);
                // Lower buckets whose bit is set in d: that bit is cleared, higher j first.
                order.extend((0..t).rev().filter(|&j| d.bit(j)));
                // Lower buckets whose bit is clear in d: that bit becomes set, lower j first.
                order.extend((0..t).filter(|&j| !d.bit(j)));
                // Farther buckets: the distance's top bit is j.
                order.extend(t + 1..KEY_BITS);
            }
        }
        order
    }

    /// Up to `n` peers closest to `target`, closest first, without sorting the table: buckets
    /// are visited outward from the target's and only visited buckets are sorted.
    pub fn closest(&self, target: &Key, n: usize) -> Vec<&Entry> {
        let mut out: Vec<&Entry> = Vec::with_capacity(n.min(self.len()));
        if n == 0 {
            return out;
        }
        for i in self.bucket_order(target) {
            let Some(b) = self.buckets[i].as_ref() else {
                continue;
            };
            let mut es: Vec<(Distance, &Entry)> = b
                .entries
                .iter()
                .map(|e| (e.key.distance(target), e))
                .collect();
            es.sort_unstable_by_key(|a| a.0);
            for (_, e) in es {
                out.push(e);
                if out.len() == n {
                    return out;
                }
            }
        }
        out
    }

    /// Marks the bucket of `target` refreshed at `now` (a lookup for it ran).
    pub fn touch(&mut self, target: &Key, now: f64) {
        if let Some(i) = self.bucket_index(target) {
            self.refreshed[i] = now;
        }
    }

    /// Marks bucket `i` refreshed at `now`.
    pub fn mark_refreshed(&mut self, i: usize, now: f64) {
        if let Some(r) = self.refreshed.get_mut(i) {
            *r = now;
        }
    }

    pub fn last_refresh(&self, i: usize) -> Option<f64> {
        self.refreshed.get(i).copied()
    }

    /// Buckets due for a refresh: not refreshed for `interval` seconds, among the `max_cpl`+1
    /// farthest buckets (common prefix length 0..=max_cpl) and never closer than one past the
    /// closest populated bucket (farther ones can hold no peers we could find).
    pub fn stale_buckets(&self, now: f64, interval: f64, max_cpl: usize) -> Vec<usize> {
        let lowest_populated = self
            .populated_buckets()
            .first()
            .copied()
            .unwrap_or(KEY_BITS - 1);
        let floor = lowest_populated
            .saturating_sub(1)
            .max(KEY_BITS - 1 - max_cpl.min(KEY_BITS - 1));
        (floor..KEY_BITS)
            .rev()
            .filter(|&i| now - self.refreshed[i] >= interval)
            .collect()
    }
}

/// A syntactically valid peer ID (identity multihash of an Ed25519 public-key protobuf with
/// pseudo-random key bytes) whose key lands in bucket `bucket` of `local`. Tries at most
/// `max_tries` candidates from `seed` (bucket `i` needs about `2^(256-i)` tries on average, so
/// only far buckets are practical); None if none was found.
pub fn random_peer_id_in_bucket(
    local: &Key,
    bucket: usize,
    seed: u64,
    max_tries: u32,
) -> Option<Vec<u8>> {
    if bucket >= KEY_BITS {
        return None;
    }
    let mut state = seed;
    let mut id = vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
    id.resize(38, 0);
    for _ in 0..max_tries {
        for chunk in id[6..].chunks_mut(8) {
            let r = splitmix64(&mut state).to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        if local.distance(&Key::from_preimage(&id)).bucket_index() == Some(bucket) {
            return Some(id);
        }
    }
    None
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
