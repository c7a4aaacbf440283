//! Multiaddr binary <-> text codec. Binary: per component a varint protocol code and a value
//! (fixed size, or varint length + bytes). Text: `/name/value/...`. Every value is validated
//! in both directions, so any accepted binary formats to text that parses back to it.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{Result, WireError};
use crate::multibase::{self, Base};
use crate::multihash;
use crate::peerid;
use crate::varint;

/// How a protocol's value is stored and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No value.
    Empty,
    Ip4,
    Ip6,
    /// Big-endian u16 (tcp, udp).
    Port,
    /// Big-endian u64 (memory).
    U64,
    /// One byte (ipcidr).
    U8,
    /// Length-prefixed UTF-8 without '/', written verbatim (dns*, sni, ip6zone).
    Name,
    /// Length-prefixed UTF-8, written percent-encoded (unix, http-path).
    Path,
    /// Length-prefixed peer-ID multihash, written base58 (p2p).
    PeerId,
    /// Length-prefixed multihash, written multibase base64url (certhash).
    Certhash,
}

/// One entry of the protocol table.
#[derive(Debug, PartialEq, Eq)]
pub struct Protocol {
    pub code: u32,
    pub name: &'static str,
    pub kind: Kind,
}

macro_rules! protocols {
    ($($ident:ident = $code:expr, $name:expr, $kind:ident;)*) => {
        $(pub const $ident: Protocol = Protocol { code: $code, name: $name, kind: Kind::$kind };)*
        /// Every protocol this codec knows, in multicodec-table order.
        pub const ALL: &[Protocol] = &[$($ident),*];
        /// Looks a protocol up by its multicodec code.
        pub fn by_code(code: u64) -> Option<&'static Protocol> {
            match code {
                $(c if c == $code => Some(&$ident),)*
                _ => None,
            }
        }
        /// Looks a protocol up by its text name (`ipfs` is the legacy alias of `p2p`).
        pub fn by_name(name: &str) -> Option<&'static Protocol> {
            match name {
                $($name => Some(&$ident),)*
                "ipfs" => Some(&P2P),
                _ => None,
            }
        }
    };
}

// Codes from the multiformats multicodec table (table.csv, tag "multiaddr"); memory is
// rust-libp2p's in-process transport (777, 8-byte big-endian u64).
protocols! {
    IP4 = 0x04, "ip4", Ip4;
    TCP = 0x06, "tcp", Port;
    IP6 = 0x29, "ip6", Ip6;
    IP6ZONE = 0x2a, "ip6zone", Name;
    IPCIDR = 0x2b, "ipcidr", U8;
    DNS = 0x35, "dns", Name;
    DNS4 = 0x36, "dns4", Name;
    DNS6 = 0x37, "dns6", Name;
    DNSADDR = 0x38, "dnsaddr", Name;
    UDP = 0x0111, "udp", Port;
    WEBRTC_DIRECT = 0x0118, "webrtc-direct", Empty;
    WEBRTC = 0x0119, "webrtc", Empty;
    P2P_CIRCUIT = 0x0122, "p2p-circuit", Empty;
    UNIX = 0x0190, "unix", Path;
    P2P = 0x01a5, "p2p", PeerId;
    HTTPS = 0x01bb, "https", Empty;
    TLS = 0x01c0, "tls", Empty;
    SNI = 0x01c1, "sni", Name;
    NOISE = 0x01c6, "noise", Empty;
    QUIC = 0x01cc, "quic", Empty;
    QUIC_V1 = 0x01cd, "quic-v1", Empty;
    WEBTRANSPORT = 0x01d1, "webtransport", Empty;
    CERTHASH = 0x01d2, "certhash", Certhash;
    WS = 0x01dd, "ws", Empty;
    WSS = 0x01de, "wss", Empty;
    HTTP = 0x01e0, "http", Empty;
    HTTP_PATH = 0x01e1, "http-path", Path;
    MEMORY = 0x0309, "memory", U64;
}

/// Longest variable-length value accepted (names, paths, hashes), in bytes.
pub const MAX_VALUE_LEN: u64 = 1024;

fn err(proto: &str, msg: impl std::fmt::Display) -> WireError {
    if proto.is_empty() {
        WireError::Multiaddr(format!("multiaddr: {msg}"))
    } else {
        WireError::Multiaddr(format!("multiaddr /{proto}: {msg}"))
    }
}

/// One component of a binary multiaddr, its value validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Component<'a> {
    pub protocol: &'static Protocol,
    /// The value bytes (without a length prefix).
    pub value: &'a [u8],
    /// Offset of the component's first byte (its code) in the whole multiaddr.
    pub start: usize,
    /// Offset of the value's first byte.
    pub value_start: usize,
    /// Offset one past the component's last byte.
    pub end: usize,
}

impl Component<'_> {
    /// Appends the text value (no leading '/'); nothing for valueless protocols.
    pub fn write_value(&self, out: &mut String) {
        let v = self.value;
        match self.protocol.kind {
            Kind::Empty => {}
            Kind::Ip4 => {
                let _ = write!(out, "{}", Ipv4Addr::new(v[0], v[1], v[2], v[3]));
            }
            Kind::Ip6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(v);
                let _ = write!(out, "{}", Ipv6Addr::from(a));
            }
            Kind::Port => {
                let _ = write!(out, "{}", u16::from_be_bytes([v[0], v[1]]));
            }
            Kind::U64 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(v);
                let _ = write!(out, "{}", u64::from_be_bytes(a));
            }
            Kind::U8 => {
                let _ = write!(out, "{}", v[0]);
            }
            // Validated UTF-8 on decode; lossy conversion never alters a valid string.
            Kind::Name => out.push_str(&String::from_utf8_lossy(v)),
            Kind::Path => percent_encode(v, out),
            Kind::PeerId => out.push_str(&peerid::to_base58(v)),
            Kind::Certhash => {
                out.push(Base::Base64Url.prefix());
                Base::Base64Url.encode_body(v, out);
            }
        }
    }

    /// The text value, or None for valueless protocols.
    pub fn value_text(&self) -> Option<String> {
        if self.protocol.kind == Kind::Empty {
            return None;
        }
        let mut s = String::new();
        self.write_value(&mut s);
        Some(s)
    }
}

/// Iterates over the components of a binary multiaddr, validating each.
pub struct Components<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

/// Iterates over `buf`'s components; errors are yielded once, then iteration stops.
pub fn components(buf: &[u8]) -> Components<'_> {
    Components {
        buf,
        pos: 0,
        failed: false,
    }
}

impl<'a> Components<'a> {
    fn read(&mut self) -> Result<Component<'a>> {
        let start = self.pos;
        let rest = &self.buf[start..];
        let (code, n) = varint::decode(rest)
            .map_err(|e| err("", format!("bad protocol code at byte {start}: {e}")))?;
        let protocol = by_code(code).ok_or_else(|| {
            err(
                "",
                format!("unknown protocol code 0x{code:x} at byte {start}"),
            )
        })?;
        let name = protocol.name;
        let rest = &rest[n..];
        let fixed = match protocol.kind {
            Kind::Empty => Some(0),
            Kind::Ip4 => Some(4),
            Kind::Ip6 => Some(16),
            Kind::Port => Some(2),
            Kind::U64 => Some(8),
            Kind::U8 => Some(1),
            _ => None,
        };
        let (value_off, len) = match fixed {
            Some(len) => (n, len),
            None => {
                let (len, m) = varint::decode(rest)
                    .map_err(|e| err(name, format!("bad value length: {e}")))?;
                if len > MAX_VALUE_LEN {
                    return Err(err(name, format!("value length {len} over the cap")));
                }
                (n + m, len as usize)
            }
        };
        let avail = self.buf.len() - start - value_off;
        if len > avail {
            return Err(err(
                name,
                format!("value needs {len} bytes, {avail} remain"),
            ));
        }
        let value_start = start + value_off;
        let value = &self.buf[value_start..value_start + len];
        check_binary_value(protocol, value)?;
        self.pos = value_start + len;
        Ok(Component {
            protocol,
            value,
            start,
            value_start,
            end: self.pos,
        })
    }
}

impl<'a> Iterator for Components<'a> {
    type Item = Result<Component<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let r = self.read();
        self.failed = r.is_err();
        Some(r)
    }
}

fn check_binary_value(p: &Protocol, v: &[u8]) -> Result<()> {
    match p.kind {
        Kind::Name | Kind::Path => {
            let s = std::str::from_utf8(v).map_err(|_| err(p.name, "value is not UTF-8"))?;
            if s.is_empty() {
                return Err(err(p.name, "empty value"));
            }
            if p.kind == Kind::Name && s.contains('/') {
                return Err(err(p.name, "value contains '/'"));
            }
            Ok(())
        }
        Kind::PeerId => peerid::validate(v).map_err(|e| err(p.name, e)),
        Kind::Certhash => multihash::decode(v).map(|_| ()).map_err(|e| err(p.name, e)),
        Kind::U8 if p.code == IPCIDR.code && v[0] > 128 => {
            Err(err(p.name, format!("prefix length {} over 128", v[0])))
        }
        _ => Ok(()),
    }
}

/// Validates a binary multiaddr.
pub fn validate(buf: &[u8]) -> Result<()> {
    components(buf).try_for_each(|c| c.map(|_| ()))
}

/// Formats a binary multiaddr as text (validating it); the empty multiaddr is "/".
pub fn to_text(buf: &[u8]) -> Result<String> {
    let mut out = String::with_capacity(buf.len() * 3);
    for c in components(buf) {
        let c = c?;
        out.push('/');
        out.push_str(c.protocol.name);
        if c.protocol.kind != Kind::Empty {
            out.push('/');
            c.write_value(&mut out);
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Parses multiaddr text into its binary form. "/" is the empty multiaddr.
pub fn from_text(text: &str) -> Result<Vec<u8>> {
    let body = text
        .strip_prefix('/')
        .ok_or_else(|| err("", format!("text must start with '/': {text:?}")))?;
    // One trailing '/' is tolerated, as go- and js-multiaddr do.
    let body = body.strip_suffix('/').unwrap_or(body);
    let mut out = Vec::with_capacity(text.len());
    if body.is_empty() {
        return Ok(out);
    }
    let mut parts = body.split('/');
    while let Some(name) = parts.next() {
        if name.is_empty() {
            return Err(err("", format!("empty protocol name in {text:?}")));
        }
        let p = by_name(name).ok_or_else(|| err("", format!("unknown protocol {name:?}")))?;
        varint::encode(u64::from(p.code), &mut out);
        if p.kind == Kind::Empty {
            continue;
        }
        let value = parts.next().ok_or_else(|| err(p.name, "missing value"))?;
        write_binary_value(p, value, &mut out)?;
    }
    Ok(out)
}

fn write_binary_value(p: &Protocol, value: &str, out: &mut Vec<u8>) -> Result<()> {
    let name = p.name;
    match p.kind {
        Kind::Empty => {}
        Kind::Ip4 => {
            let a: Ipv4Addr = value
                .parse()
                .map_err(|_| err(name, format!("invalid IPv4 address {value:?}")))?;
            out.extend_from_slice(&a.octets());
        }
        Kind::Ip6 => {
            let a: Ipv6Addr = value
                .parse()
                .map_err(|_| err(name, format!("invalid IPv6 address {value:?}")))?;
            out.extend_from_slice(&a.octets());
        }
        Kind::Port => {
            let v = parse_decimal(value, u64::from(u16::MAX))
                .ok_or_else(|| err(name, format!("invalid port {value:?} (0-65535)")))?;
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        Kind::U64 => {
            let v = parse_decimal(value, u64::MAX)
                .ok_or_else(|| err(name, format!("invalid u64 {value:?}")))?;
            out.extend_from_slice(&v.to_be_bytes());
        }
        Kind::U8 => {
            let v = parse_decimal(value, 128)
                .ok_or_else(|| err(name, format!("invalid prefix length {value:?} (0-128)")))?;
            out.push(v as u8);
        }
        Kind::Name => {
            if value.is_empty() {
                return Err(err(name, "empty value"));
            }
            push_len_prefixed(name, value.as_bytes(), out)?;
        }
        Kind::Path => {
            let decoded = percent_decode(value).map_err(|e| err(name, e))?;
            if decoded.is_empty() {
                return Err(err(name, "empty value"));
            }
            if std::str::from_utf8(&decoded).is_err() {
                return Err(err(name, "value is not UTF-8"));
            }
            push_len_prefixed(name, &decoded, out)?;
        }
        Kind::PeerId => {
            let id = peerid::from_text(value).map_err(|e| err(name, e))?;
            push_len_prefixed(name, &id, out)?;
        }
        Kind::Certhash => {
            let (_, mh) = multibase::decode(value).map_err(|e| err(name, e))?;
            multihash::decode(&mh).map_err(|e| err(name, e))?;
            push_len_prefixed(name, &mh, out)?;
        }
    }
    Ok(())
}

fn push_len_prefixed(name: &str, v: &[u8], out: &mut Vec<u8>) -> Result<()> {
    if v.len() as u64 > MAX_VALUE_LEN {
        return Err(err(
            name,
            format!("value of {} bytes over the cap", v.len()),
        ));
    }
    varint::encode(v.len() as u64, out);
    out.extend_from_slice(v);
    Ok(())
}

/// Decimal digits only (no sign, no spaces), at most `max`.
fn parse_decimal(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|&v| v <= max)
}

/// RFC 3986 `pchar` minus '%': kept verbatim; every other byte becomes %XX.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}

fn percent_encode(v: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in v {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
}

fn percent_decode(s: &str) -> std::result::Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            match (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => return Err(format!("bad percent escape at position {i}")),
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02X}")).collect()
    }

    const PEER: &str = "QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC";
    const PEER_HEX: &str =
        "A503221220D52EBB89D85B02A284948203A62FF28389C57C9F42BEEC4EC20DB76A68911C0B";

    #[test]
    fn known_vectors() {
        // Hex vectors from multiformats/rust-multiaddr's and multiaddr's test suites.
        let cases: Vec<(String, String)> = vec![
            ("/ip4/1.2.3.4".into(), "0401020304".into()),
            ("/ip4/0.0.0.0".into(), "0400000000".into()),
            ("/ip6/::1".into(), "2900000000000000000000000000000001".into()),
            (
                "/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21".into(),
                "29260100094F819700803ECA6566E80C21".into(),
            ),
            (
                "/ip6/fe80::9700:803e:ca65:66e8:c21/ip6zone/wlan0".into(),
                "29FE80000000009700803ECA6566E80C212A05776C616E30".into(),
            ),
            ("/udp/0".into(), "91020000".into()),
            ("/tcp/0".into(), "060000".into()),
            ("/udp/65535".into(), "9102FFFF".into()),
            ("/tcp/1234/http".into(), "0604D2E003".into()),
            ("/tcp/1234/tls/http".into(), "0604D2C003E003".into()),
            ("/tcp/1234/https".into(), "0604D2BB03".into()),
            (
                "/tcp/1234/http/http-path/api%2Fv0%2Flogin".into(),
                "0604D2E003E1030C6170692F76302F6C6F67696E".into(),
            ),
            (format!("/p2p/{PEER}"), PEER_HEX.into()),
            (format!("/p2p/{PEER}/tcp/1234"), format!("{PEER_HEX}0604D2")),
            ("/ip4/192.0.2.42/tcp/443".into(), "04C000022A0601BB".into()),
            (
                format!("/ip4/127.0.0.1/tcp/9090/p2p-circuit/p2p/{PEER}"),
                format!("047F000001062382A202{PEER_HEX}"),
            ),
            (
                format!("/ip6/2001:8a0:7ac5:4201:3ac9:86ff:fe31:7095/tcp/8000/wss/p2p/{PEER}"),
                format!("29200108A07AC542013AC986FFFE317095061F40DE03{PEER_HEX}"),
            ),
            (
                "/dnsaddr/sjc-1.bootstrap.libp2p.io".into(),
                "3819736A632D312E626F6F7473747261702E6C69627032702E696F".into(),
            ),
            ("/ip4/127.0.0.1/tcp/127/tls/ws".into(), "047F00000106007FC003DD03".into()),
            ("/ip4/127.0.0.1/tcp/127/noise".into(), "047F00000106007FC603".into()),
            (
                "/ip4/127.0.0.1/udp/1234/webrtc-direct".into(),
                "047F000001910204D29802".into(),
            ),
            (
                "/ip4/127.0.0.1/udp/1234/quic/webtransport".into(),
                "047F000001910204D2CC03D103".into(),
            ),
            (
                "/ip4/127.0.0.1/udp/1234/webtransport/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g".into(),
                "047F000001910204D2D103D203221220C3AB8FF13720E8AD9047DD39466B3C8974E592C2FA383D4A3960714CAEF0C4F2".into(),
            ),
        ];
        for (text, want) in cases {
            let bin = from_text(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(hex(&bin), want, "{text}");
            assert_eq!(to_text(&bin).unwrap(), text);
        }
    }

    #[test]
    fn unix_and_memory() {
        let bin = from_text("/unix/%2Ftmp%2Fp2p.sock").unwrap();
        assert_eq!(bin[..2], [0x90, 0x03]);
        assert_eq!(&bin[3..], b"/tmp/p2p.sock");
        assert_eq!(to_text(&bin).unwrap(), "/unix/%2Ftmp%2Fp2p.sock");
        let bin = from_text("/memory/1234").unwrap();
        assert_eq!(hex(&bin), "890600000000000004D2");
        assert_eq!(to_text(&bin).unwrap(), "/memory/1234");
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "ip4/1.2.3.4",
            "/ip4",
            "/ip4/::1",
            "/ip4/1.2.3",
            "/ip4/01.2.3.4",
            "/ip6",
            "/tcp",
            "/tcp/65536",
            "/tcp/-1",
            "/tcp/+80",
            "/udp/jfod",
            "/p2p",
            "/p2p/tcp",
            "/p2p-circuit/50",
            "/certhash",
            "/certhash/b2uaraocy6yrdblb4sfptaddgimjmmp",
            "/unknown/1",
            "/ip4/1.2.3.4//tcp/1",
            "/dns/",
            "/unix/%zz",
            "/memory/x",
            "/ip4/1.2.3.4/tcp/1/", // ok: tolerated trailing slash, checked below
        ] {
            if bad == "/ip4/1.2.3.4/tcp/1/" {
                assert!(from_text(bad).is_ok());
                continue;
            }
            assert!(from_text(bad).is_err(), "{bad}");
        }
        assert_eq!(from_text("/").unwrap(), Vec::<u8>::new());
        assert_eq!(to_text(&[]).unwrap(), "/");
        for bad in [
            &[0x04, 1, 2][..],         // short ip4
            &[0x01],                   // unknown code
            &[0x35, 0x00],             // empty dns
            &[0x35, 0x01, b'/'],       // '/' in dns
            &[0x35, 0x02, 0xff, 0xfe], // not UTF-8
            &[0x35, 0x05, b'a'],       // length beyond input
            &[0xa5, 0x03, 0x02, 0x12, 0x00],
            &[0x81, 0x00],
        ] {
            assert!(to_text(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn binary_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(text) = to_text(&data) {
                prop_assert_eq!(from_text(&text).unwrap(), data);
            }
        }

        #[test]
        fn text_never_panics(text in "(/[a-z0-9%.:-]{0,10}){0,6}") {
            if let Ok(bin) = from_text(&text) {
                let canon = to_text(&bin).unwrap();
                prop_assert_eq!(from_text(&canon).unwrap(), bin);
            }
        }

        #[test]
        fn round_trip(a in any::<[u8; 4]>(), port in any::<u16>(), path in proptest::collection::vec(any::<char>(), 1..20), mem in any::<u64>()) {
            let path: String = path.into_iter().collect();
            let mut bin = vec![0x04];
            bin.extend_from_slice(&a);
            bin.push(0x06);
            bin.extend_from_slice(&port.to_be_bytes());
            bin.extend_from_slice(&[0x90, 0x03]);
            varint::encode(path.len() as u64, &mut bin);
            bin.extend_from_slice(path.as_bytes());
            bin.extend_from_slice(&[0x89, 0x06]);
            bin.extend_from_slice(&mem.to_be_bytes());
            let text = to_text(&bin).unwrap();
            prop_assert_eq!(from_text(&text).unwrap(), bin);
        }
    }
}
