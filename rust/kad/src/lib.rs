//! Kademlia for rapidp2p, sans-IO (libp2p/specs `kad-dht/README.md`).
//!
//! - [`Key`] / [`Distance`]: 256-bit keys (SHA-256 of a peer ID or a record key) and their
//!   XOR distance, ordered as big-endian integers.
//! - [`RoutingTable`]: k-buckets indexed by the distance's highest set bit, only populated
//!   buckets held, least-recently-seen first, one pending replacement per bucket, optional
//!   IP-group diversity caps, per-bucket refresh times; `closest` walks buckets outward from
//!   the target's bucket instead of sorting the table.
//! - [`ClosestPeersIter`]: the iterative lookup (alpha in flight, k results, per-peer
//!   timeouts) driven by `on_success` / `on_failure` / `next(now)`.
//! - [`proto`]: the kad `Message` / `Record` protobufs with bounded decoding.
//!
//! Nothing here does IO or reads a clock: time is an `f64` of seconds passed in by the caller.

mod key;
pub mod proto;
mod query;
mod table;

pub use key::{Distance, Key, KEY_BITS};
pub use query::{ClosestPeersIter, Next, PeerState, QueryConfig};
pub use table::{random_peer_id_in_bucket, Entry, RoutingTable, TableConfig, Update};
