//! Just enough STUN (RFC 8489) to demultiplex a new WebRTC-direct dialler: the USERNAME of a
//! Binding request, `<our ufrag>:<their ufrag>`. The dialler sets both ufrags (and passwords)
//! to the same random string, prefixed `libp2p+webrtc+v1/` (libp2p/specs
//! `webrtc/webrtc-direct.md`, step 6). Everything else about STUN is str0m's.

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const BINDING_REQUEST: [u8; 2] = [0x00, 0x01];
const ATTR_USERNAME: u16 = 0x0006;
/// The ufrag prefix of the libp2p WebRTC protocol, version 1.
pub const UFRAG_PREFIX: &str = "libp2p+webrtc+v1/";
/// A ufrag longer than this is refused (RFC 8839 caps it at 256 characters).
pub const MAX_UFRAG: usize = 256;

/// True when `data` looks like a STUN message (first byte 0 or 1, the magic cookie).
pub fn is_stun(data: &[u8]) -> bool {
    data.len() >= 20 && data[0] < 2 && data[4..8] == MAGIC_COOKIE
}

/// The USERNAME of a Binding request, `<recipient's ufrag>:<sender's ufrag>`.
fn binding_username(data: &[u8]) -> Option<(&str, &str)> {
    if !is_stun(data) || data[0..2] != BINDING_REQUEST {
        return None;
    }
    let len = u16::from_be_bytes([data[2], data[3]]) as usize;
    let mut attrs = data.get(20..20 + len)?;
    while attrs.len() >= 4 {
        let kind = u16::from_be_bytes([attrs[0], attrs[1]]);
        let alen = u16::from_be_bytes([attrs[2], attrs[3]]) as usize;
        let value = attrs.get(4..4 + alen)?;
        if kind == ATTR_USERNAME {
            let text = std::str::from_utf8(value).ok()?;
            let (local, remote) = text.split_once(':')?;
            return (local.len() <= MAX_UFRAG).then_some((local, remote));
        }
        let padded = (alen + 3) & !3;
        attrs = attrs.get(4 + padded..)?;
    }
    None
}

/// The dialler's ufrag from a Binding request whose USERNAME is `ufrag:ufrag` (both halves
/// equal and prefixed as the spec says), else None.
pub fn binding_ufrag(data: &[u8]) -> Option<&str> {
    let (local, remote) = binding_username(data)?;
    (local == remote && local.starts_with(UFRAG_PREFIX)).then_some(local)
}

/// Our ufrag from any Binding request, for `/webrtc` connections (whose ufrags were
/// exchanged in SDP, not derived from the first request).
pub fn binding_local_ufrag(data: &[u8]) -> Option<&str> {
    binding_username(data).map(|(local, _)| local)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(username: &[u8]) -> Vec<u8> {
        let mut attrs = Vec::new();
        attrs.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn reads_the_libp2p_ufrag() {
        let u = "libp2p+webrtc+v1/abcdef";
        let m = request(format!("{u}:{u}").as_bytes());
        assert_eq!(binding_ufrag(&m), Some(u));
    }

    #[test]
    fn refuses_other_usernames_and_garbage() {
        assert_eq!(binding_ufrag(&request(b"a:b")), None);
        assert_eq!(
            binding_ufrag(&request(b"libp2p+webrtc+v1/x:libp2p+webrtc+v1/y")),
            None
        );
        assert_eq!(binding_ufrag(&request(b"nocolon")), None);
        let mut m = request(b"libp2p+webrtc+v1/x:libp2p+webrtc+v1/x");
        m.truncate(30); // attribute cut short
        assert_eq!(binding_ufrag(&m), None);
        assert_eq!(binding_ufrag(&[0u8; 10]), None);
        assert_eq!(binding_ufrag(&[22u8; 40]), None); // DTLS, not STUN
    }

    #[test]
    fn reads_any_local_ufrag_for_signalled_connections() {
        assert_eq!(binding_local_ufrag(&request(b"abcd:efgh")), Some("abcd"));
        assert_eq!(binding_local_ufrag(&request(b"nocolon")), None);
        assert_eq!(binding_local_ufrag(&[22u8; 40]), None);
    }
}
