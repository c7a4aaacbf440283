use proptest::prelude::*;
use rapidp2p_kad::{random_peer_id_in_bucket, Key, RoutingTable, TableConfig, Update};

fn peer(i: u32) -> Vec<u8> {
    let mut v = b"peer-".to_vec();
    v.extend_from_slice(&i.to_be_bytes());
    v
}

fn brute_closest(table: &RoutingTable, target: &Key, n: usize) -> Vec<Vec<u8>> {
    let mut all: Vec<_> = table
        .entries()
        .map(|e| (e.key.distance(target), e.peer.clone()))
        .collect();
    all.sort();
    all.into_iter().take(n).map(|(_, p)| p).collect()
}

proptest! {
    #[test]
    fn closest_matches_brute_force(ids in proptest::collection::vec(any::<u32>(), 0..400),
                                   target in any::<[u8; 32]>(), n in 0usize..50, k in 1usize..25) {
        let mut t = RoutingTable::new(b"local", TableConfig { k, ..Default::default() }, 0.0);
        for i in &ids {
            t.update(&peer(*i), 1.0, None);
        }
        let target = Key(target);
        let got: Vec<Vec<u8>> = t.closest(&target, n).into_iter().map(|e| e.peer.clone()).collect();
        prop_assert_eq!(got, brute_closest(&t, &target, n));
        // The local key itself as the target.
        let local = *t.local_key();
        let got: Vec<Vec<u8>> = t.closest(&local, n).into_iter().map(|e| e.peer.clone()).collect();
        prop_assert_eq!(got, brute_closest(&t, &local, n));
        // Bucket sizes never exceed k; len matches the entries.
        for b in t.populated_buckets() {
            prop_assert!(t.bucket(b).len() <= k);
        }
        prop_assert_eq!(t.len(), t.entries().count());
    }

    #[test]
    fn bucket_order_is_a_permutation(target in any::<[u8; 32]>()) {
        let t = RoutingTable::new(b"x", TableConfig::default(), 0.0);
        let mut order = t.bucket_order(&Key(target));
        order.sort();
        prop_assert_eq!(order, (0..256).collect::<Vec<_>>());
    }
}

#[test]
fn replacement_policy() {
    let cfg = TableConfig {
        k: 2,
        ..Default::default()
    };
    let mut t = RoutingTable::new(b"local", cfg, 0.0);
    // Fill the far bucket (255) with 2 peers, then a third arrives.
    let local = *t.local_key();
    let far: Vec<Vec<u8>> = (0..1000u32)
        .map(peer)
        .filter(|p| t.bucket_index(&Key::from_preimage(p)) == Some(255))
        .take(4)
        .collect();
    assert_eq!(t.update(&far[0], 1.0, None), Update::Inserted);
    assert_eq!(t.update(&far[1], 2.0, None), Update::Inserted);
    assert_eq!(t.update(&far[0], 3.0, None), Update::Refreshed); // far[1] is now least recent
    assert_eq!(
        t.update(&far[2], 4.0, None),
        Update::Pending {
            lrs: far[1].clone()
        }
    );
    assert_eq!(t.update(&far[3], 4.0, None), Update::Full);
    assert!(!t.contains(&far[2]));
    // The least-recently-seen peer answered: it stays, the newcomer is dropped.
    assert_eq!(t.resolve_pending(&far[1], true, 5.0), None);
    assert!(t.pending(255).is_none() && t.contains(&far[1]));
    // Next time it does not answer: evicted, the newcomer takes its slot.
    assert_eq!(
        t.update(&far[2], 6.0, None),
        Update::Pending {
            lrs: far[0].clone()
        }
    );
    assert_eq!(t.resolve_pending(&far[0], false, 7.0), Some(far[2].clone()));
    assert!(!t.contains(&far[0]) && t.contains(&far[2]) && t.len() == 2);
    assert_eq!(
        t.update(b"local", 1.0, None),
        Update::Rejected("local peer")
    );
    let _ = local;
}

#[test]
fn remove_frees_empty_buckets() {
    let mut t = RoutingTable::new(b"local", TableConfig::default(), 0.0);
    t.update(&peer(1), 1.0, None);
    assert_eq!(t.populated_buckets().len(), 1);
    t.remove(&peer(1));
    assert!(t.is_empty() && t.populated_buckets().is_empty());
    assert_eq!(t.remove(&peer(2)), None);
}

#[test]
fn diversity_filter() {
    let cfg = TableConfig {
        k: 20,
        max_group_per_bucket: Some(2),
        max_group_per_table: Some(3),
    };
    let mut t = RoutingTable::new(b"local", cfg, 0.0);
    let mut same_bucket = 0;
    let mut inserted = 0;
    for i in 0..50u32 {
        let p = peer(i);
        let idx = t.bucket_index(&Key::from_preimage(&p));
        match t.update(&p, 1.0, Some(&[10, 0])) {
            Update::Inserted => {
                inserted += 1;
                if idx == Some(255) {
                    same_bucket += 1;
                }
            }
            Update::Rejected(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(inserted, 3);
    assert!(same_bucket <= 2);
    // Other groups are unaffected; removing frees the group's count.
    assert_eq!(t.update(&peer(1000), 1.0, Some(&[10, 1])), Update::Inserted);
    let victim = t
        .entries()
        .find(|e| e.group.as_deref() == Some(&[10, 0][..]))
        .unwrap()
        .peer
        .clone();
    t.remove(&victim);
    let more = (100..200u32)
        .map(|i| t.update(&peer(i), 2.0, Some(&[10, 0])))
        .filter(|u| *u == Update::Inserted)
        .count();
    assert_eq!(more, 1);
}

#[test]
fn stale_buckets_and_random_ids() {
    let mut t = RoutingTable::new(b"local", TableConfig::default(), 0.0);
    for i in 0..100 {
        t.update(&peer(i), 0.0, None);
    }
    let stale = t.stale_buckets(700.0, 600.0, 15);
    assert!(!stale.is_empty() && stale[0] == 255 && stale.iter().all(|&b| b >= 240));
    t.mark_refreshed(255, 700.0);
    assert!(!t.stale_buckets(700.0, 600.0, 15).contains(&255));
    let local = *t.local_key();
    for b in [255usize, 250, 245] {
        let id = random_peer_id_in_bucket(&local, b, 42 + b as u64, 1 << 16).expect("found");
        assert_eq!(id.len(), 38);
        assert_eq!(t.bucket_index(&Key::from_preimage(&id)), Some(b));
    }
    assert_eq!(random_peer_id_in_bucket(&local, 10, 1, 100), None);
}
