//! Two sessions wired in memory, and bad input from a peer.

use proptest::prelude::*;
use rapidp2p_mplex::{Config, Error, Event, Flag, FrameHeader, ProtocolError, Session};
use rapidp2p_wire::varint::VarintError;

fn pair() -> (Session, Session) {
    (
        Session::new(Config::default()).unwrap(),
        Session::new(Config::default()).unwrap(),
    )
}

fn pump(from: &mut Session, to: &mut Session) -> Vec<Event> {
    let mut ev = Vec::new();
    to.receive(&from.take_output(), &mut ev).unwrap();
    ev
}

fn frame(id: u64, flag: Flag, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    FrameHeader::new(id, flag, body.len() as u64).encode(&mut v);
    v.extend_from_slice(body);
    v
}

#[test]
fn open_send_close_both_ways() {
    let (mut a, mut b) = pair();
    let sa = a.open_stream().unwrap();
    assert_eq!(sa, 1);
    a.send(sa, b"hello", false).unwrap();
    let ev = pump(&mut a, &mut b);
    assert_eq!(
        ev,
        [Event::StreamOpened(2), Event::Data(2, b"hello".to_vec())]
    );
    b.ack(2, 5).unwrap();
    b.send(2, b"world", true).unwrap();
    let ev = pump(&mut b, &mut a);
    assert_eq!(ev, [Event::Data(sa, b"world".to_vec()), Event::Fin(sa)]);
    a.close_stream(sa).unwrap();
    assert_eq!(a.num_streams(), 0);
    assert_eq!(pump(&mut a, &mut b), [Event::Fin(2)]);
    assert_eq!(b.num_streams(), 0);
    assert_eq!(a.send(sa, b"x", false), Err(Error::StreamClosed(sa)));
}

#[test]
fn wire_bytes_match_the_spec() {
    let (mut a, _) = pair();
    let s = a.open_stream().unwrap();
    a.send(s, b"ab", true).unwrap();
    // NewStream id 0 named "0"; MessageInitiator (0<<3|2); CloseInitiator (0<<3|4).
    assert_eq!(a.take_output(), [0, 1, b'0', 2, 2, b'a', b'b', 4, 0]);
    let mut ev = Vec::new();
    // The peer answers on our stream with Receiver flags (1, 3).
    a.receive(&[1, 1, b'z', 3, 0], &mut ev).unwrap();
    assert_eq!(ev, [Event::Data(s, b"z".to_vec()), Event::Fin(s)]);
    assert_eq!(a.num_streams(), 0);
}

#[test]
fn both_sides_number_from_zero_without_clash() {
    let (mut a, mut b) = pair();
    let sa = a.open_stream().unwrap();
    let sb = b.open_stream().unwrap();
    a.send(sa, b"from a", false).unwrap();
    b.send(sb, b"from b", false).unwrap();
    let at_b = pump(&mut a, &mut b);
    let at_a = pump(&mut b, &mut a);
    assert_eq!(
        at_b,
        [Event::StreamOpened(2), Event::Data(2, b"from a".to_vec())]
    );
    assert_eq!(
        at_a,
        [Event::StreamOpened(2), Event::Data(2, b"from b".to_vec())]
    );
    assert_eq!((a.num_streams(), b.num_streams()), (2, 2));
}

#[test]
fn reset_reaches_the_peer() {
    let (mut a, mut b) = pair();
    let s = a.open_stream().unwrap();
    pump(&mut a, &mut b);
    a.reset_stream(s).unwrap();
    assert_eq!(pump(&mut a, &mut b), [Event::Reset(2)]);
    assert_eq!(a.send(s, b"x", false), Err(Error::StreamReset(s)));
    a.reset_stream(s).unwrap(); // already gone: a no-op
    assert_eq!(a.reset_stream(99), Err(Error::UnknownStream(99)));
    // Late frames for the reset stream are ignored.
    b.send(2, b"late", false).unwrap_err();
    let mut ev = Vec::new();
    a.receive(&frame(0, Flag::MessageReceiver, b"late"), &mut ev)
        .unwrap();
    assert!(ev.is_empty());
}

#[test]
fn large_writes_are_split_and_reassembled() {
    let (mut a, mut b) = pair();
    let s = a.open_stream().unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(a.send(s, &data, true).unwrap(), data.len());
    assert_eq!(
        a.send_window(s),
        Err(Error::StreamClosed(s)).or(Ok(u32::MAX))
    );
    let ev = pump(&mut a, &mut b);
    assert_eq!(
        ev.len(),
        3,
        "{:?}",
        ev.iter().map(std::mem::discriminant).collect::<Vec<_>>()
    );
    assert_eq!(ev[1], Event::Data(2, data));
    assert_eq!(ev[2], Event::Fin(2));
}

#[test]
fn overflowing_stream_is_reset_and_session_goes_on() {
    let cfg = Config {
        max_buffered: 1000,
        ..Config::default()
    };
    let mut b = Session::new(cfg).unwrap();
    let mut a = Session::new(Config::default()).unwrap();
    let s1 = a.open_stream().unwrap();
    let s2 = a.open_stream().unwrap();
    a.send(s1, &[1; 600], false).unwrap();
    a.send(s2, &[2; 10], false).unwrap();
    let ev = pump(&mut a, &mut b);
    assert_eq!(ev.len(), 4);
    a.send(s1, &[1; 600], false).unwrap(); // 1200 unread: over 1000
    a.send(s2, &[2; 10], false).unwrap();
    let ev = pump(&mut a, &mut b);
    assert_eq!(ev, [Event::Reset(2), Event::Data(4, vec![2; 10])]);
    // b told a about the reset.
    assert_eq!(pump(&mut b, &mut a), [Event::Reset(s1)]);
    // Acknowledged bytes free the budget.
    b.ack(4, 20).unwrap();
    a.send(s2, &[3; 1000], false).unwrap();
    assert_eq!(pump(&mut a, &mut b), [Event::Data(4, vec![3; 1000])]);
    assert_eq!(b.buffered(4), Some(1000));
    assert!(matches!(b.ack(4, 1001), Err(Error::InvalidArgument(_))));
}

#[test]
fn stream_limit_resets_inbound_and_refuses_outbound() {
    let cfg = Config {
        max_streams: 1,
        ..Config::default()
    };
    let mut b = Session::new(cfg).unwrap();
    let mut a = Session::new(Config::default()).unwrap();
    a.open_stream().unwrap();
    let s2 = a.open_stream().unwrap();
    a.send(s2, b"dropped", false).unwrap();
    let ev = pump(&mut a, &mut b);
    assert_eq!(ev, [Event::StreamOpened(2)]);
    assert_eq!(pump(&mut b, &mut a), [Event::Reset(s2)]);
    assert_eq!(b.open_stream(), Err(Error::StreamLimit(1)));
}

#[test]
fn go_away_refuses_new_streams_and_closes_when_idle() {
    let (mut a, mut b) = pair();
    let s = a.open_stream().unwrap();
    pump(&mut a, &mut b);
    b.go_away().unwrap();
    assert_eq!(b.open_stream(), Err(Error::GoingAway));
    let s2 = a.open_stream().unwrap();
    assert_eq!(pump(&mut a, &mut b), []);
    assert_eq!(pump(&mut b, &mut a), [Event::Reset(s2)]);
    assert!(!b.is_closed());
    a.reset_stream(s).unwrap();
    pump(&mut a, &mut b);
    assert!(b.is_closed());
}

#[test]
fn data_after_close_resets_only_that_stream() {
    let (mut a, mut b) = pair();
    let s = a.open_stream().unwrap();
    a.close_stream(s).unwrap();
    pump(&mut a, &mut b);
    let mut ev = Vec::new();
    b.receive(&frame(0, Flag::MessageInitiator, b"after"), &mut ev)
        .unwrap();
    assert_eq!(ev, [Event::Reset(2)]);
    assert_eq!(pump(&mut b, &mut a), [Event::Reset(s)]);
}

#[test]
fn zero_length_message_and_close_body_are_tolerated() {
    let (mut a, mut b) = pair();
    let s = a.open_stream().unwrap();
    pump(&mut a, &mut b);
    let mut input = frame(0, Flag::MessageInitiator, b"");
    input.extend(frame(0, Flag::CloseInitiator, b"junk"));
    let mut ev = Vec::new();
    b.receive(&input, &mut ev).unwrap();
    assert_eq!(ev, [Event::Fin(2)]);
    let _ = s;
}

fn violation(input: &[u8]) -> Error {
    let (mut a, _) = pair();
    let mut ev = Vec::new();
    let e = a.receive(input, &mut ev).unwrap_err();
    // Dead: later input is ignored and local calls fail.
    ev.clear();
    a.receive(&frame(0, Flag::NewStream, b""), &mut ev).unwrap();
    assert!(ev.is_empty());
    assert!(a.is_closed());
    assert_eq!(a.open_stream(), Err(Error::SessionClosed));
    e
}

#[test]
fn malformed_frames_are_typed_errors() {
    assert_eq!(
        violation(&[7, 0]),
        Error::Protocol(ProtocolError::BadFlag(0))
    );
    assert_eq!(
        violation(&[0x80, 0x00, 0]),
        Error::Protocol(ProtocolError::Header(VarintError::NotMinimal))
    );
    assert_eq!(
        violation(&[0xff; 12]),
        Error::Protocol(ProtocolError::Header(VarintError::Overflow))
    );
    let mut long_len = vec![2u8];
    long_len.extend([0xff; 12]);
    assert_eq!(
        violation(&long_len),
        Error::Protocol(ProtocolError::Length(VarintError::Overflow))
    );
    let mut big = Vec::new();
    FrameHeader::new(3, Flag::MessageInitiator, (1 << 20) + 1).encode(&mut big);
    assert_eq!(
        violation(&big),
        Error::Protocol(ProtocolError::FrameTooLarge((1 << 20) + 1, 3, 1 << 20))
    );
    let mut dup = frame(5, Flag::NewStream, b"");
    dup.extend(frame(5, Flag::NewStream, b""));
    assert_eq!(
        violation(&dup),
        Error::Protocol(ProtocolError::DuplicateStream(5))
    );
    assert_eq!(
        violation(&frame(1 << 40, Flag::NewStream, b"")),
        Error::Protocol(ProtocolError::StreamIdTooLarge(1 << 40))
    );
}

#[test]
fn a_frame_announcing_a_huge_body_allocates_nothing() {
    // 1 MiB announced, 10 bytes sent: the body streams through, nothing is reserved upfront.
    let (mut a, mut b) = pair();
    let s = a.open_stream().unwrap();
    pump(&mut a, &mut b);
    let mut input = Vec::new();
    FrameHeader::new(0, Flag::MessageInitiator, 1 << 20).encode(&mut input);
    input.extend([9u8; 10]);
    let mut ev = Vec::new();
    b.receive(&input, &mut ev).unwrap();
    assert_eq!(ev, [Event::Data(2, vec![9; 10])]);
    assert_eq!(b.buffered(2), Some(1 << 20));
    let _ = s;
}

#[test]
fn unknown_streams_are_ignored() {
    let (mut a, _) = pair();
    let mut input = frame(4, Flag::MessageInitiator, b"x");
    input.extend(frame(4, Flag::CloseReceiver, b""));
    input.extend(frame(9, Flag::ResetInitiator, b""));
    input.extend(frame(1 << 40, Flag::MessageReceiver, b"far"));
    let mut ev = Vec::new();
    a.receive(&input, &mut ev).unwrap();
    assert!(ev.is_empty());
}

#[test]
fn bad_config_is_refused() {
    let cfg = Config {
        max_streams: 0,
        ..Config::default()
    };
    assert!(matches!(Session::new(cfg), Err(Error::InvalidArgument(_))));
}

proptest! {
    /// Any split of a valid byte stream gives the same events (headers and bodies may be cut
    /// anywhere between reads).
    #[test]
    fn any_chunking_gives_the_same_events(cuts in proptest::collection::vec(1usize..40, 1..60)) {
        let (mut a, _) = pair();
        let s1 = a.open_stream().unwrap();
        let s2 = a.open_stream().unwrap();
        a.send(s1, &[7u8; 200], false).unwrap();
        a.send(s2, b"second", true).unwrap();
        a.send(s1, &[8u8; 70], true).unwrap();
        let wire = a.take_output();
        let mut whole = Session::new(Config::default()).unwrap();
        let mut ev_whole = Vec::new();
        whole.receive(&wire, &mut ev_whole).unwrap();
        let mut parts = Session::new(Config::default()).unwrap();
        let mut ev_parts = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < wire.len() {
            let n = cuts[i % cuts.len()].min(wire.len() - pos);
            parts.receive(&wire[pos..pos + n], &mut ev_parts).unwrap();
            pos += n;
            i += 1;
        }
        // Coalescing differs per call; compare per-stream bytes and the control events.
        let flatten = |ev: &[Event]| {
            let mut data: std::collections::BTreeMap<u32, Vec<u8>> = Default::default();
            let mut ctl = Vec::new();
            for e in ev {
                match e {
                    Event::Data(k, d) => data.entry(*k).or_default().extend(d),
                    other => ctl.push(other.clone()),
                }
            }
            (data, ctl)
        };
        prop_assert_eq!(flatten(&ev_whole), flatten(&ev_parts));
    }

    /// Arbitrary bytes never panic: they are parsed or refused with a typed error.
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let (mut a, _) = pair();
        let mut ev = Vec::new();
        let _ = a.receive(&bytes, &mut ev);
    }
}
