# Sourced by the peers' build and run scripts: where a peer's binary lives in the cache.
#
# The path is keyed by a hash of the peer's sources, so checkouts with different sources
# (branches, worktrees, a CI clone) sharing one cache each get the binary built from their own
# sources, and never a stale one left by another checkout (an mtime check cannot tell).
#   peer_bin_path NAME DIR PATH... -> prints $cache/NAME/<hash>/NAME (PATHs relative to DIR)
peer_cache_root() {
    echo "${RAPIDP2P_INTEROP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rapidp2p-interop}"
}

peer_bin_path() {
    local name="$1" dir="$2"
    shift 2
    local hash
    hash="$(cd "$dir" && find "$@" -type f -print0 2>/dev/null | LC_ALL=C sort -z \
        | xargs -0 sha256sum | sha256sum | cut -c1-16)"
    echo "$(peer_cache_root)/$name/$hash/$name"
}

# Keeps the newest KEEP builds of NAME (by directory mtime); older ones are removed.
peer_prune() {
    local name="$1" keep="${2:-4}"
    local root
    root="$(peer_cache_root)/$name"
    find "$root" -mindepth 1 -maxdepth 1 -type d -regex '.*/[0-9a-f]\{16\}' -printf '%T@ %p\n' \
        2>/dev/null | sort -rn | tail -n +"$((keep + 1))" | cut -d' ' -f2- | xargs -r rm -rf
}
