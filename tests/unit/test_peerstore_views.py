"""Peerstore reads hand out no references into the store; failed edits change nothing."""

from __future__ import annotations

import pytest

from rapidp2p.crypto import generate_keypair
from rapidp2p.exceptions import PeerIdError, PeerStoreError
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.peerstore import MemoryPeerStore
from rapidp2p.peerstore.base import MAX_METADATA_PER_PEER


def _peer() -> PeerId:
    return PeerId.from_public_key(generate_keypair().public_key())


def test_metadata_containers_are_copied_in_and_out() -> None:
    store, pid = MemoryPeerStore(), _peer()
    value = {"a": [1, 2]}
    store.put(pid, "k", value)
    value["a"].append(3)  # the caller's object changes after put
    got = store.get(pid, "k")
    assert got == {"a": [1, 2]}
    got["a"].append(4)  # and the reader's copy changes after get
    assert store.get(pid, "k") == {"a": [1, 2]}
    store.put(pid, "s", "text")
    assert store.get(pid, "s") == "text"


def test_protocol_and_address_reads_are_copies() -> None:
    store, pid = MemoryPeerStore(), _peer()
    store.set_protocols(pid, ["/a", "/b"])
    store.get_protocols(pid).append("/c")
    assert store.get_protocols(pid) == ["/a", "/b"]
    store.add_addrs(pid, [Multiaddr("/ip4/1.2.3.4/tcp/1")])
    store.addrs(pid).clear()
    assert [str(a) for a in store.addrs(pid)] == ["/ip4/1.2.3.4/tcp/1"]


def test_unknown_peer_reads_do_not_create_it() -> None:
    store, pid = MemoryPeerStore(), _peer()
    assert store.get_protocols(pid) == [] and store.addrs(pid) == []
    assert store.get(pid, "x", 7) == 7
    assert store.peers() == []


def test_failed_edit_leaves_the_stored_data_alone() -> None:
    store, pid = MemoryPeerStore(), _peer()
    for i in range(MAX_METADATA_PER_PEER):
        store.put(pid, f"k{i}", [i])
    with pytest.raises(PeerStoreError):
        store.put(pid, "one-too-many", 1)
    assert store.get(pid, "one-too-many") is None
    assert store.get(pid, "k0") == [0]


def test_add_pubkey_same_key_twice_and_wrong_key() -> None:
    store = MemoryPeerStore()
    key = generate_keypair().public_key()
    pid = PeerId.from_public_key(key)
    store.add_pubkey(pid, key)
    store.add_pubkey(pid, key)
    assert store.pubkey(pid) == key
    with pytest.raises(PeerIdError):
        store.add_pubkey(_peer(), key)
