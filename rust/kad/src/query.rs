//! The iterative closest-peers lookup (Kademlia `FIND_NODE`), as a state machine.
//!
//! The caller seeds it with peers from its routing table, then loops: `next(now)` says whom
//! to ask (at most `alpha` requests in flight), each answer comes back through `on_success`
//! (with the closer peers the remote returned) or `on_failure`. A request not answered within
//! the timeout stops counting against `alpha` (the peer becomes unresponsive; a late answer
//! is still accepted). The lookup finishes when the `k` closest peers not known to have
//! failed have all answered, or when nobody is left to ask.

use std::collections::{BTreeMap, HashMap};

use crate::key::{Distance, Key};

/// Lookup parameters.
#[derive(Clone, Copy, Debug)]
pub struct QueryConfig {
    /// Requests in flight at once.
    pub alpha: usize,
    /// Results wanted (the replication parameter).
    pub k: usize,
    /// Seconds before an unanswered request stops counting against `alpha`.
    pub timeout: f64,
    /// Candidates kept at most (the farthest uncontacted ones are dropped beyond this).
    pub max_candidates: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            alpha: 3,
            k: 20,
            timeout: 10.0,
            max_candidates: 1024,
        }
    }
}

/// Where one candidate stands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PeerState {
    NotContacted,
    /// A request is in flight; it times out at the deadline.
    Waiting(f64),
    /// The request timed out; an answer is still accepted.
    Unresponsive,
    Succeeded,
    Failed,
}

/// What the caller should do next.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// Nothing to send now: wait for an answer or the next deadline.
    Waiting,
    /// Send a request to this peer.
    Request(Vec<u8>),
    /// The lookup is over; read the result.
    Finished,
}

#[derive(Clone, Debug)]
struct Candidate {
    peer: Vec<u8>,
    state: PeerState,
    hops: u32,
}

/// The closest-peers lookup of one target key.
pub struct ClosestPeersIter {
    target: Key,
    cfg: QueryConfig,
    cands: BTreeMap<Distance, Candidate>,
    /// Peers never to add (the local node).
    exclude: Option<Key>,
    num_waiting: usize,
    finished: bool,
    requests: u64,
    successes: u64,
    failures: u64,
}

impl ClosestPeersIter {
    /// A lookup of `target`, seeded with `seeds` (peer ID bytes; hop count 1 each).
    pub fn new(
        target: Key,
        seeds: impl IntoIterator<Item = Vec<u8>>,
        cfg: QueryConfig,
        local: Option<&[u8]>,
    ) -> Self {
        let cfg = QueryConfig {
            alpha: cfg.alpha.max(1),
            k: cfg.k.max(1),
            max_candidates: cfg.max_candidates.max(cfg.k.max(1)),
            ..cfg
        };
        let mut q = ClosestPeersIter {
            target,
            cfg,
            cands: BTreeMap::new(),
            exclude: local.map(Key::from_preimage),
            num_waiting: 0,
            finished: false,
            requests: 0,
            successes: 0,
            failures: 0,
        };
        for s in seeds {
            q.add(s, 1);
        }
        q
    }

    pub fn target(&self) -> &Key {
        &self.target
    }

    fn add(&mut self, peer: Vec<u8>, hops: u32) {
        let key = Key::from_preimage(&peer);
        if self.exclude.as_ref() == Some(&key) {
            return;
        }
        let d = key.distance(&self.target);
        if self.cands.contains_key(&d) {
            return;
        }
        if self.cands.len() >= self.cfg.max_candidates {
            // Full: keep the newcomer only if it beats the farthest uncontacted candidate.
            let victim = self
                .cands
                .iter()
                .rev()
                .find(|(_, c)| c.state == PeerState::NotContacted)
                .map(|(d, _)| *d);
            match victim {
                Some(v) if v > d => {
                    self.cands.remove(&v);
                }
                _ => return,
            }
        }
        self.cands.insert(
            d,
            Candidate {
                peer,
                state: PeerState::NotContacted,
                hops,
            },
        );
    }

    fn find(&mut self, peer: &[u8]) -> Option<&mut Candidate> {
        let d = Key::from_preimage(peer).distance(&self.target);
        self.cands.get_mut(&d).filter(|c| c.peer == peer)
    }

    /// `peer` answered, returning `closer` peers. Ignored for peers not asked.
    pub fn on_success(&mut self, peer: &[u8], closer: impl IntoIterator<Item = Vec<u8>>) -> bool {
        if self.finished {
            return false;
        }
        let Some(c) = self.find(peer) else {
            return false;
        };
        let hops = c.hops;
        match c.state {
            PeerState::Waiting(_) => {
                c.state = PeerState::Succeeded;
                self.num_waiting -= 1;
            }
            PeerState::Unresponsive => c.state = PeerState::Succeeded,
            _ => return false,
        }
        self.successes += 1;
        for p in closer {
            self.add(p, hops + 1);
        }
        true
    }

    /// The request to `peer` failed (error, reset, refused). Ignored for peers not asked.
    pub fn on_failure(&mut self, peer: &[u8]) -> bool {
        if self.finished {
            return false;
        }
        let Some(c) = self.find(peer) else {
            return false;
        };
        match c.state {
            PeerState::Waiting(_) => {
                c.state = PeerState::Failed;
                self.num_waiting -= 1;
            }
            PeerState::Unresponsive => c.state = PeerState::Failed,
            _ => return false,
        }
        self.failures += 1;
        true
    }

    /// Ends the lookup now (e.g. a value lookup reached its quorum).
    pub fn finish(&mut self) {
        self.finished = true;
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The next step at time `now`.
    pub fn next(&mut self, now: f64) -> Next {
        if self.finished {
            return Next::Finished;
        }
        for c in self.cands.values_mut() {
            if let PeerState::Waiting(deadline) = c.state {
                if now >= deadline {
                    c.state = PeerState::Unresponsive;
                    self.num_waiting -= 1;
                }
            }
        }
        let k = self.cfg.k;
        let mut live = 0usize; // candidates among the k closest that may still count
        let mut succeeded = 0usize;
        let mut request: Option<usize> = None;
        for (i, c) in self.cands.values().enumerate() {
            match c.state {
                PeerState::Failed | PeerState::Unresponsive => continue,
                PeerState::Succeeded => succeeded += 1,
                PeerState::Waiting(_) => {}
                PeerState::NotContacted => {
                    if self.num_waiting < self.cfg.alpha {
                        request = Some(i);
                    }
                    if request.is_none() {
                        return Next::Waiting; // at capacity
                    }
                    break;
                }
            }
            live += 1;
            if live >= k {
                break;
            }
        }
        if let Some(i) = request {
            let c = self
                .cands
                .values_mut()
                .nth(i)
                .expect("index from the same scan");
            c.state = PeerState::Waiting(now + self.cfg.timeout);
            self.num_waiting += 1;
            self.requests += 1;
            return Next::Request(c.peer.clone());
        }
        // No request to send: done once every live candidate among the k closest answered.
        if succeeded == live {
            self.finished = true;
            return Next::Finished;
        }
        Next::Waiting
    }

    /// The earliest deadline of an in-flight request (None when none is in flight).
    pub fn next_deadline(&self) -> Option<f64> {
        self.cands
            .values()
            .filter_map(|c| match c.state {
                PeerState::Waiting(d) => Some(d),
                _ => None,
            })
            .reduce(f64::min)
    }

    /// Up to `k` peers that answered, closest first.
    pub fn result(&self) -> Vec<Vec<u8>> {
        self.cands
            .values()
            .filter(|c| c.state == PeerState::Succeeded)
            .take(self.cfg.k)
            .map(|c| c.peer.clone())
            .collect()
    }

    /// Hop count of a candidate (1 for a seed, parent's + 1 for a peer learned in an answer).
    pub fn hops(&self, peer: &[u8]) -> Option<u32> {
        let d = Key::from_preimage(peer).distance(&self.target);
        self.cands
            .get(&d)
            .filter(|c| c.peer == peer)
            .map(|c| c.hops)
    }

    /// The state of a candidate.
    pub fn state(&self, peer: &[u8]) -> Option<PeerState> {
        let d = Key::from_preimage(peer).distance(&self.target);
        self.cands
            .get(&d)
            .filter(|c| c.peer == peer)
            .map(|c| c.state)
    }

    pub fn num_waiting(&self) -> usize {
        self.num_waiting
    }

    pub fn num_candidates(&self) -> usize {
        self.cands.len()
    }

    /// (requests sent, successes, failures).
    pub fn stats(&self) -> (u64, u64, u64) {
        (self.requests, self.successes, self.failures)
    }

    /// Candidates by state, for diagnostics: peer -> state.
    pub fn states(&self) -> HashMap<Vec<u8>, PeerState> {
        self.cands
            .values()
            .map(|c| (c.peer.clone(), c.state))
            .collect()
    }
}
