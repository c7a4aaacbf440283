use std::collections::{BTreeMap, HashMap, HashSet};

use proptest::prelude::*;
use rapidp2p_kad::{ClosestPeersIter, Key, Next, QueryConfig};

fn peer(i: u32) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

/// A simulated network: every node knows the `k` closest among a random subset of nodes.
struct Net {
    nodes: Vec<Vec<u8>>,
    knows: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    dead: HashSet<Vec<u8>>,
}

impl Net {
    fn answer(&self, from: &[u8], target: &Key, k: usize) -> Vec<Vec<u8>> {
        // The k closest live entries plus the 3 closest stale (dead) ones.
        let mut v: Vec<_> = self.knows[from]
            .iter()
            .map(|p| {
                (
                    self.dead.contains(p),
                    Key::from_preimage(p).distance(target),
                    p.clone(),
                )
            })
            .collect();
        v.sort();
        let live = v.iter().filter(|e| !e.0).take(k);
        let dead = v.iter().filter(|e| e.0).take(3);
        live.chain(dead).map(|e| e.2.clone()).collect()
    }
}

fn run(
    net: &Net,
    target: Key,
    seeds: Vec<Vec<u8>>,
    cfg: QueryConfig,
    shuffle: u64,
) -> (Vec<Vec<u8>>, usize) {
    let mut q = ClosestPeersIter::new(target, seeds, cfg, None);
    let mut in_flight: Vec<Vec<u8>> = Vec::new();
    let mut now = 0.0;
    let mut steps = 0;
    let mut rng = shuffle;
    loop {
        steps += 1;
        assert!(steps < 100_000);
        match q.next(now) {
            Next::Request(p) => {
                assert!(q.num_waiting() <= cfg.alpha);
                in_flight.push(p);
            }
            Next::Finished => break,
            Next::Waiting => {
                assert!(!in_flight.is_empty() || q.num_waiting() == 0);
                if in_flight.is_empty() {
                    now += cfg.timeout;
                    continue;
                }
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let i = (rng >> 33) as usize % in_flight.len();
                let p = in_flight.swap_remove(i);
                if net.dead.contains(&p) {
                    // Either an error now, or (once only dead peers are in flight, so no
                    // live answer is overtaken) a timeout.
                    let all_dead = in_flight.iter().all(|x| net.dead.contains(x));
                    if rng & 1 == 0 || !all_dead {
                        q.on_failure(&p);
                    } else {
                        now += cfg.timeout;
                    }
                } else {
                    q.on_success(&p, net.answer(&p, &target, cfg.k));
                }
            }
        }
    }
    (q.result(), steps)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn lookup_finds_true_closest(n in 30u32..200, seed in any::<u64>(), target in any::<[u8; 32]>(), dead_pct in 0u32..30) {
        let k = 8;
        let nodes: Vec<Vec<u8>> = (0..n).map(peer).collect();
        let dead: HashSet<Vec<u8>> = nodes.iter().filter(|p| {
            let h = Key::from_preimage(p).0[0] as u32;
            h * 100 / 256 < dead_pct
        }).cloned().collect();
        // Each node knows the k closest live nodes of every bucket (well-formed tables), plus
        // every dead node (stale entries the lookup must route around).
        let mut knows = HashMap::new();
        for a in &nodes {
            let ka = Key::from_preimage(a);
            let mut buckets: BTreeMap<usize, Vec<(rapidp2p_kad::Distance, Vec<u8>)>> = BTreeMap::new();
            for b in &nodes {
                if a != b && !dead.contains(b) {
                    let d = ka.distance(&Key::from_preimage(b));
                    buckets.entry(d.bucket_index().unwrap()).or_default().push((d, b.clone()));
                }
            }
            let mut list: Vec<Vec<u8>> = dead.iter().filter(|d| *d != a).cloned().collect();
            for (_, mut v) in buckets {
                v.sort();
                list.extend(v.into_iter().take(k).map(|(_, p)| p));
            }
            knows.insert(a.clone(), list);
        }
        let net = Net { nodes: nodes.clone(), knows, dead };
        let alive: Vec<&Vec<u8>> = net.nodes.iter().filter(|p| !net.dead.contains(*p)).collect();
        prop_assume!(!alive.is_empty());
        let seeds = vec![alive[0].clone()];
        let target = Key(target);
        let cfg = QueryConfig { alpha: 3, k, timeout: 10.0, max_candidates: 1024 };
        let (got, _) = run(&net, target, seeds, cfg, seed);
        let mut truth: Vec<_> = alive.iter().map(|p| (Key::from_preimage(p).distance(&target), (*p).clone())).collect();
        truth.sort();
        let truth: Vec<Vec<u8>> = truth.into_iter().take(k).map(|(_, p)| p).collect();
        prop_assert_eq!(got, truth);
    }
}

#[test]
fn empty_seeds_finish_at_once() {
    let mut q = ClosestPeersIter::new(
        Key([0; 32]),
        Vec::<Vec<u8>>::new(),
        QueryConfig::default(),
        None,
    );
    assert_eq!(q.next(0.0), Next::Finished);
    assert!(q.result().is_empty());
}

#[test]
fn alpha_and_timeouts() {
    let cfg = QueryConfig {
        alpha: 2,
        k: 3,
        timeout: 5.0,
        max_candidates: 10,
    };
    let seeds: Vec<Vec<u8>> = (0..4).map(peer).collect();
    let mut q = ClosestPeersIter::new(Key([0; 32]), seeds, cfg, None);
    let a = match q.next(0.0) {
        Next::Request(p) => p,
        o => panic!("{o:?}"),
    };
    let b = match q.next(0.0) {
        Next::Request(p) => p,
        o => panic!("{o:?}"),
    };
    assert_eq!(q.next(1.0), Next::Waiting);
    assert_eq!(q.next_deadline(), Some(5.0));
    // Both time out: two more requests may go out.
    let c = match q.next(5.0) {
        Next::Request(p) => p,
        o => panic!("{o:?}"),
    };
    let d = match q.next(5.0) {
        Next::Request(p) => p,
        o => panic!("{o:?}"),
    };
    assert_eq!(q.next(5.0), Next::Waiting);
    // A late answer still counts.
    assert!(q.on_success(&a, Vec::new()));
    assert!(q.on_failure(&c));
    assert!(!q.on_failure(&c));
    assert!(q.on_success(&d, Vec::new()));
    // b is unresponsive: result is a and d only, and the lookup ends (nobody left).
    assert_eq!(q.next(6.0), Next::Finished);
    let mut got = q.result();
    got.sort();
    let mut want = vec![a.clone(), d.clone()];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(q.hops(&a), Some(1));
    assert!(
        !q.on_success(&b, Vec::new()),
        "finished lookups ignore answers"
    );
}

#[test]
fn local_peer_and_duplicates_ignored_candidates_capped() {
    let cfg = QueryConfig {
        alpha: 1,
        k: 2,
        timeout: 5.0,
        max_candidates: 4,
    };
    let mut q = ClosestPeersIter::new(Key([0; 32]), vec![peer(1)], cfg, Some(&peer(0)));
    let p = match q.next(0.0) {
        Next::Request(p) => p,
        o => panic!("{o:?}"),
    };
    q.on_success(&p, (0..100).map(peer).chain(std::iter::once(peer(1))));
    assert_eq!(q.num_candidates(), 4);
    assert_eq!(q.state(&peer(0)), None);
    assert_eq!(q.hops(&p), Some(1));
}
