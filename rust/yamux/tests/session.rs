//! Two sessions wired in memory (aioquic's `transfer` shape) plus raw-frame robustness cases.

use proptest::prelude::*;
use rapidp2p_yamux::frame::{
    FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN, GO_AWAY_PROTOCOL_ERROR, HEADER_LEN,
};
use rapidp2p_yamux::{Config, Error, Event, FrameType, Header, ProtocolError, Role, Session};

const W: u32 = 256 * 1024;

fn no_keepalive() -> Config {
    Config {
        keepalive_interval: None,
        ..Config::default()
    }
}

/// Moves everything `from` queued into `to`.
fn transfer(from: &mut Session, to: &mut Session, now: f64) -> Result<Vec<Event>, Error> {
    let bytes = from.take_output();
    let mut ev = Vec::new();
    to.receive(&bytes, now, &mut ev)?;
    Ok(ev)
}

struct Pair {
    c: Session,
    s: Session,
    now: f64,
}

impl Pair {
    fn new() -> Self {
        Self::with(no_keepalive())
    }

    fn with(cfg: Config) -> Self {
        Self {
            c: Session::new(Role::Client, cfg.clone()).unwrap(),
            s: Session::new(Role::Server, cfg).unwrap(),
            now: 0.0,
        }
    }

    fn c2s(&mut self) -> Vec<Event> {
        transfer(&mut self.c, &mut self.s, self.now).unwrap()
    }

    fn s2c(&mut self) -> Vec<Event> {
        transfer(&mut self.s, &mut self.c, self.now).unwrap()
    }

    /// Exchanges until both sides are quiet; returns (client events, server events).
    fn settle(&mut self) -> (Vec<Event>, Vec<Event>) {
        let (mut ce, mut se) = (Vec::new(), Vec::new());
        while !self.c.pending_output().is_empty() || !self.s.pending_output().is_empty() {
            se.extend(self.c2s());
            ce.extend(self.s2c());
        }
        (ce, se)
    }
}

fn raw(ty: FrameType, flags: u16, id: u32, len: u32) -> Vec<u8> {
    Header::new(ty, flags, id, len).to_bytes().to_vec()
}

fn frames(bytes: &[u8]) -> Vec<Header> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + HEADER_LEN <= bytes.len() {
        let h = Header::decode(bytes[i..i + HEADER_LEN].try_into().unwrap()).unwrap();
        i += HEADER_LEN;
        if h.ty == FrameType::Data {
            i += h.length as usize;
        }
        out.push(h);
    }
    assert_eq!(i, bytes.len(), "output ends on a frame boundary");
    out
}

fn data_of(events: &[Event], id: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for e in events {
        if let Event::Data(sid, d) = e {
            if *sid == id {
                v.extend_from_slice(d);
            }
        }
    }
    v
}

fn is_goaway_protocol(s: &mut Session) -> bool {
    let out = s.take_output();
    frames(&out).last()
        == Some(&Header::new(
            FrameType::GoAway,
            0,
            0,
            GO_AWAY_PROTOCOL_ERROR,
        ))
}

#[test]
fn open_accept_and_ack() {
    let mut p = Pair::new();
    let id = p.c.open_stream().unwrap();
    assert_eq!(id, 1);
    assert_eq!(p.c.open_stream().unwrap(), 3);
    assert_eq!(p.c.num_unacked(), 2);
    let se = p.c2s();
    assert_eq!(se, vec![Event::StreamOpened(1), Event::StreamOpened(3)]);
    let ce = p.s2c();
    assert_eq!(ce, vec![Event::StreamAcked(1), Event::StreamAcked(3)]);
    assert_eq!(p.c.num_unacked(), 0);
    assert_eq!(p.s.open_stream().unwrap(), 2);
    assert_eq!(p.c2s(), vec![]);
    assert_eq!(p.s2c(), vec![Event::StreamOpened(2)]);
}

#[test]
fn thousand_streams_with_data_echoed() {
    let cfg = Config {
        max_streams: 2000,
        ack_backlog: 2000,
        ..no_keepalive()
    };
    let mut p = Pair::with(cfg);
    let mut ids = Vec::new();
    for i in 0..1000u32 {
        let id = p.c.open_stream().unwrap();
        let payload = vec![(i % 251) as u8; 1000 + i as usize];
        assert_eq!(p.c.send(id, &payload, true).unwrap(), payload.len());
        ids.push((id, payload));
    }
    let se = p.c2s();
    for (id, payload) in &ids {
        assert_eq!(&data_of(&se, *id), payload);
        assert!(se.contains(&Event::Fin(*id)));
        // Echo back and finish.
        let n = p.s.send(*id, payload, true).unwrap();
        assert_eq!(n, payload.len());
    }
    assert_eq!(p.s.num_streams(), 0, "both sides FIN'd on the server");
    let ce = p.s2c();
    for (id, payload) in &ids {
        assert_eq!(&data_of(&ce, *id), payload);
        assert!(ce.contains(&Event::Fin(*id)));
    }
    assert_eq!(p.c.num_streams(), 0);
}

#[test]
fn data_coalesced_per_stream_and_ordered_before_fin() {
    let mut p = Pair::new();
    let id = p.c.open_stream().unwrap();
    p.c.send(id, b"hello ", false).unwrap();
    p.c.send(id, b"world", false).unwrap();
    p.c.close_stream(id).unwrap();
    let se = p.c2s();
    assert_eq!(
        se,
        vec![
            Event::StreamOpened(id),
            Event::Data(id, b"hello world".to_vec()),
            Event::Fin(id)
        ]
    );
}

#[test]
fn reset_both_ways_and_errors_after() {
    let mut p = Pair::new();
    let id = p.c.open_stream().unwrap();
    p.c.send(id, b"x", false).unwrap();
    p.settle();
    p.c.reset_stream(id).unwrap();
    assert_eq!(p.c.send(id, b"y", false), Err(Error::StreamReset(id)));
    let se = p.c2s();
    assert_eq!(se, vec![Event::Reset(id)]);
    assert_eq!(p.s.send(id, b"y", false), Err(Error::StreamReset(id)));
    assert_eq!(p.s.close_stream(id), Err(Error::StreamReset(id)));
    assert_eq!(p.c.num_streams() + p.s.num_streams(), 0);
    // Resetting again is a no-op; an ID never seen is a local error.
    assert_eq!(p.c.reset_stream(id), Ok(()));
    assert_eq!(p.c.reset_stream(99), Err(Error::UnknownStream(99)));
}

#[test]
fn half_close_then_read_then_eof() {
    let mut p = Pair::new();
    let id = p.c.open_stream().unwrap();
    p.c.send(id, b"request", true).unwrap();
    assert_eq!(p.c.send(id, b"more", false), Err(Error::StreamClosed(id)));
    let se = p.c2s();
    assert_eq!(data_of(&se, id), b"request");
    assert!(se.contains(&Event::Fin(id)));
    p.s.send(id, b"response", false).unwrap();
    p.s.close_stream(id).unwrap();
    assert_eq!(p.s.num_streams(), 0);
    let ce = p.s2c();
    assert_eq!(
        ce,
        vec![
            Event::StreamAcked(id),
            Event::Data(id, b"response".to_vec()),
            Event::Fin(id)
        ]
    );
    assert_eq!(p.c.num_streams(), 0);
    assert_eq!(p.c.send(id, b"x", false), Err(Error::StreamClosed(id)));
}

#[test]
fn fin_with_empty_send() {
    let mut p = Pair::new();
    let id = p.c.open_stream().unwrap();
    assert_eq!(p.c.send(id, b"", true).unwrap(), 0);
    let se = p.c2s();
    assert!(se.contains(&Event::Fin(id)));
}

#[test]
fn go_away_stops_new_streams_keeps_old() {
    let mut p = Pair::new();
    let id = p.c.open_stream().unwrap();
    p.settle();
    p.s.go_away(0).unwrap();
    assert_eq!(p.s.open_stream(), Err(Error::GoAway(0)));
    let ce = p.s2c();
    assert_eq!(ce, vec![Event::GoAway(0)]);
    assert_eq!(p.c.open_stream(), Err(Error::GoAway(0)));
    assert!(!p.c.is_closed());
    p.c.send(id, b"still works", true).unwrap();
    assert_eq!(data_of(&p.c2s(), id), b"still works");
    p.s.close_stream(id).unwrap();
    p.settle();
    assert!(p.c.is_closed() && p.s.is_closed());
}

#[test]
fn syn_after_our_go_away_is_refused() {
    let mut p = Pair::new();
    p.s.go_away(0).unwrap();
    let _ = p.s.take_output();
    let mut ev = Vec::new();
    p.s.receive(&raw(FrameType::WindowUpdate, FLAG_SYN, 1, 0), 0.0, &mut ev)
        .unwrap();
    assert!(ev.is_empty());
    assert_eq!(
        frames(&p.s.take_output()),
        vec![Header::new(FrameType::WindowUpdate, FLAG_RST, 1, 0)]
    );
}

#[test]
fn window_exhaustion_and_credit() {
    // No auto-tuning here: credit accounting only.
    let mut p = Pair::with(Config {
        min_autotune_rtt: 0.0,
        ..no_keepalive()
    });
    let id = p.c.open_stream().unwrap();
    let big = vec![7u8; 1 << 20];
    assert_eq!(p.c.send(id, &big, false).unwrap(), W as usize);
    assert_eq!(p.c.send_window(id).unwrap(), 0);
    assert_eq!(p.c.send(id, &big, false).unwrap(), 0);
    let se = p.c2s();
    assert_eq!(data_of(&se, id).len(), W as usize);
    // Acking less than half the window grants nothing yet.
    p.s.ack(id, W / 4, None).unwrap();
    assert!(
        p.s.pending_output().len() == HEADER_LEN,
        "only the SYN's ACK"
    );
    p.s.ack(id, W / 4, None).unwrap();
    let ce = p.s2c();
    assert_eq!(ce, vec![Event::StreamAcked(id), Event::Window(id, W / 2)]);
    assert_eq!(p.c.send(id, &big, false).unwrap(), (W / 2) as usize);
    // Acking more than was delivered is a local error.
    assert_eq!(
        p.s.ack(id, W, None),
        Err(Error::InvalidArgument(
            "ack of more bytes than were delivered"
        ))
    );
}

#[test]
fn data_beyond_window_is_protocol_error() {
    let mut p = Pair::new();
    let id = p.c.open_stream().unwrap();
    p.c2s();
    let mut bytes = raw(FrameType::Data, 0, id, W + 1);
    bytes.extend(vec![0u8; W as usize + 1]);
    let mut ev = Vec::new();
    let r = p.s.receive(&bytes, 0.0, &mut ev);
    assert_eq!(
        r,
        Err(Error::Protocol(ProtocolError::WindowExceeded(id, W + 1, W)))
    );
    assert!(is_goaway_protocol(&mut p.s));
    assert!(p.s.is_closed());
    // Later input is ignored, later calls fail.
    assert_eq!(p.s.receive(&bytes, 0.0, &mut ev), Ok(()));
    assert_eq!(p.s.open_stream(), Err(Error::SessionClosed));
}

fn pinged_pair(rtt: f64) -> Pair {
    // Both sides ping at 0; the pongs arrive at `now = rtt`.
    let mut p2 = Pair::new();
    p2.s.ping(0.0).unwrap();
    p2.c.ping(0.0).unwrap();
    let to_c = p2.s.take_output();
    let to_s = p2.c.take_output();
    let mut ev = Vec::new();
    p2.s.receive(&to_s, 0.0, &mut ev).unwrap();
    p2.c.receive(&to_c, 0.0, &mut ev).unwrap();
    let pong_c = p2.s.take_output();
    let pong_s = p2.c.take_output();
    let mut ce = Vec::new();
    let mut se = Vec::new();
    p2.c.receive(&pong_c, rtt, &mut ce).unwrap();
    p2.s.receive(&pong_s, rtt, &mut se).unwrap();
    assert_eq!(ce, vec![Event::PingRtt(rtt)]);
    assert_eq!(se, vec![Event::PingRtt(rtt)]);
    p2.now = rtt;
    p2
}

#[test]
fn auto_tuning_doubles_window_up_to_max() {
    let rtt = 0.1;
    let mut p = pinged_pair(rtt);
    assert_eq!(p.s.rtt(), Some(rtt));
    let id = p.c.open_stream().unwrap();
    p.settle();
    let max = Config::default().max_window;
    let mut window = W;
    let chunk = vec![1u8; 1 << 20];
    let mut rounds = 0;
    while window < max {
        // The peer fills the whole window; the app consumes it at once (fast reader).
        let mut sent = 0usize;
        loop {
            let n = p.c.send(id, &chunk, false).unwrap();
            if n == 0 {
                break;
            }
            sent += n;
        }
        assert_eq!(
            sent, window as usize,
            "the sender fills exactly the granted window"
        );
        let se = p.c2s();
        let got = data_of(&se, id).len() as u32;
        assert!(got <= window, "never more than the window in flight");
        p.now += rtt / 2.0;
        p.s.ack(id, got, Some(p.now)).unwrap();
        let ce = p.s2c();
        let new_window = p.s.receive_window(id).unwrap();
        assert_eq!(new_window, (window * 2).min(max));
        assert!(matches!(ce.as_slice(), [Event::Window(_, w)] if *w == new_window));
        window = new_window;
        rounds += 1;
    }
    assert_eq!(rounds, 6, "256 KiB doubles six times to 16 MiB");
    // A slow reader (more than two RTTs per half window) does not grow it further, nor
    // does the window ever pass max_window.
    p.c.send(id, &chunk, false).unwrap();
    let got = data_of(&p.c2s(), id).len() as u32;
    p.now += 10.0;
    p.s.ack(id, got, Some(p.now)).unwrap();
    assert_eq!(p.s.receive_window(id), Some(max));
}

#[test]
fn auto_tuning_assumes_min_rtt_before_and_below_measurements() {
    // No ping answered yet (or an idle-loopback RTT of microseconds): a reader consuming half
    // a window within two `min_autotune_rtt` still doubles it, so a fast stream is not stuck
    // at the initial window because the idle RTT understates the RTT under load.
    let floor = Config::default().min_autotune_rtt;
    for rtt in [None, Some(20e-6)] {
        let mut p = match rtt {
            None => Pair::new(),
            Some(r) => pinged_pair(r),
        };
        assert_eq!(p.s.rtt(), rtt);
        let id = p.c.open_stream().unwrap();
        p.settle();
        p.c.send(id, &vec![0u8; W as usize], false).unwrap();
        let got = data_of(&p.c2s(), id).len() as u32;
        p.now += floor;
        p.s.ack(id, got, Some(p.now)).unwrap();
        assert_eq!(p.s.receive_window(id), Some(2 * W));
        assert_eq!(p.s2c(), vec![Event::Window(id, 2 * W)]);
        // Slower than two floors per half window: no growth.
        p.c.send(id, &vec![0u8; 2 * W as usize], false).unwrap();
        let got = data_of(&p.c2s(), id).len() as u32;
        p.now += 3.0 * floor;
        p.s.ack(id, got, Some(p.now)).unwrap();
        assert_eq!(p.s.receive_window(id), Some(2 * W));
    }
}

#[test]
fn window_growth_cap_stops_growth_and_keeps_granted_windows() {
    let rtt = 0.1;
    let mut p = pinged_pair(rtt);
    let id = p.c.open_stream().unwrap();
    p.settle();
    // Initial windows are not counted: room for one doubling only.
    p.s.set_max_window_growth(u64::from(W));
    assert_eq!(p.s.window_growth(), 0);
    assert!(!p.s.window_capped());
    let chunk = vec![1u8; 1 << 20];
    for expected in [2 * W, 2 * W] {
        while p.c.send(id, &chunk, false).unwrap() > 0 {}
        let got = data_of(&p.c2s(), id).len() as u32;
        p.now += rtt / 2.0;
        p.s.ack(id, got, Some(p.now)).unwrap();
        p.s2c();
        assert_eq!(p.s.receive_window(id), Some(expected));
    }
    assert_eq!(p.s.total_window(), 2 * u64::from(W));
    assert_eq!(p.s.window_growth(), u64::from(W));
    assert!(p.s.window_capped(), "the second doubling was held back");
    assert_eq!(
        p.s.window_wanted(),
        2 * u64::from(W),
        "what the doubling wanted"
    );
    // A smaller cap later keeps the window granted (no shrinking), and stops growth.
    p.s.set_max_window_growth(0);
    assert!(!p.s.window_capped() && p.s.window_wanted() == 0);
    while p.c.send(id, &chunk, false).unwrap() > 0 {}
    let got = data_of(&p.c2s(), id).len() as u32;
    p.now += rtt / 2.0;
    p.s.ack(id, got, Some(p.now)).unwrap();
    assert_eq!(p.s.receive_window(id), Some(2 * W));
}

#[test]
fn partial_growth_within_the_cap_and_idle_streams_cost_no_growth() {
    let rtt = 0.1;
    let mut p = pinged_pair(rtt);
    let id = p.c.open_stream().unwrap();
    // Many idle streams: their initial windows leave the growth room untouched.
    let idle: Vec<u32> = (0..8).map(|_| p.c.open_stream().unwrap()).collect();
    p.settle();
    assert_eq!(p.s.window_growth(), 0);
    p.s.set_max_window_growth(u64::from(W) / 2);
    let chunk = vec![1u8; 1 << 20];
    while p.c.send(id, &chunk, false).unwrap() > 0 {}
    let got = data_of(&p.c2s(), id).len() as u32;
    p.now += rtt / 2.0;
    let held = p.s.ack(id, got, Some(p.now)).unwrap();
    // Half the doubling fits: the window grows by what the cap allows, the rest is wanted.
    assert_eq!(held, W / 2);
    assert_eq!(p.s.receive_window(id), Some(W + W / 2));
    assert_eq!(p.s.window_growth(), u64::from(W) / 2);
    assert!(p.s.window_capped());
    assert_eq!(p.s.window_wanted(), u64::from(W) / 2);
    assert_eq!(p.s.grow_window(id).unwrap(), 0, "no room yet");
    // The owner reserved more: the held-back growth goes out at once, in a second update.
    p.s.set_max_window_growth(u64::from(W));
    assert_eq!(p.s.grow_window(id).unwrap(), W / 2);
    assert_eq!(p.s.grow_window(id).unwrap(), 0, "granted once");
    assert_eq!(p.s.receive_window(id), Some(2 * W));
    assert_eq!(p.s.receive_credit(id), Some(2 * W));
    assert_eq!(p.s2c(), vec![Event::Window(id, 2 * W)]);
    // The client may now send a whole grown window.
    let mut sent = 0;
    while let Ok(n) = p.c.send(id, &chunk, false) {
        if n == 0 {
            break;
        }
        sent += n;
    }
    assert_eq!(sent, 2 * W as usize);
    for sid in idle {
        assert_eq!(p.s.receive_window(sid), Some(W));
    }
    // The grown stream ends: its growth leaves the sum.
    p.c.reset_stream(id).unwrap();
    p.settle();
    assert_eq!(p.s.window_growth(), 0);
}

#[test]
fn slow_reader_keeps_initial_window() {
    let rtt = 0.01;
    let mut p = pinged_pair(rtt);
    let id = p.c.open_stream().unwrap();
    p.settle();
    p.c.send(id, &vec![0u8; W as usize], false).unwrap();
    let got = data_of(&p.c2s(), id).len() as u32;
    p.now += 1.0;
    p.s.ack(id, got, Some(p.now)).unwrap();
    assert_eq!(p.s.receive_window(id), Some(W));
    assert_eq!(p.s2c(), vec![Event::Window(id, W)]);
}

#[test]
fn larger_initial_window_is_announced_with_syn_and_ack() {
    let cfg = Config {
        initial_window: 1 << 20,
        ..no_keepalive()
    };
    let mut p = Pair::with(cfg);
    let id = p.c.open_stream().unwrap();
    p.settle();
    assert_eq!(p.c.send_window(id).unwrap(), 1 << 20);
    assert_eq!(p.s.send_window(id).unwrap(), 1 << 20);
}

#[test]
fn ack_backlog_makes_opener_wait() {
    let mut p = Pair::new();
    for _ in 0..256 {
        p.c.open_stream().unwrap();
    }
    assert_eq!(p.c.open_stream(), Err(Error::AckBacklogFull(256)));
    p.settle();
    assert_eq!(p.c.num_unacked(), 0);
    assert!(p.c.open_stream().is_ok());
}

#[test]
fn reset_unacked_stream_frees_backlog() {
    let cfg = Config {
        ack_backlog: 1,
        ..no_keepalive()
    };
    let mut p = Pair::with(cfg);
    let id = p.c.open_stream().unwrap();
    assert_eq!(p.c.open_stream(), Err(Error::AckBacklogFull(1)));
    p.c.reset_stream(id).unwrap();
    assert!(p.c.open_stream().is_ok());
}

#[test]
fn syn_flood_over_limit_is_reset_and_bounded() {
    let cfg = Config {
        max_streams: 8,
        ..no_keepalive()
    };
    let mut s = Session::new(Role::Server, cfg).unwrap();
    let mut bytes = Vec::new();
    for i in 0..10_000u32 {
        bytes.extend(raw(FrameType::WindowUpdate, FLAG_SYN, 2 * i + 1, 0));
    }
    let mut ev = Vec::new();
    s.receive(&bytes, 0.0, &mut ev).unwrap();
    assert_eq!(s.num_streams(), 8);
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::StreamOpened(_)))
            .count(),
        8
    );
    let out = frames(&s.take_output());
    let acks = out.iter().filter(|h| h.flags == FLAG_ACK).count();
    let rsts = out.iter().filter(|h| h.flags == FLAG_RST).count();
    assert_eq!(acks, 8);
    assert_eq!(rsts, Config::default().max_pending_refusals);
    // Existing streams keep working.
    let mut ev = Vec::new();
    let mut d = raw(FrameType::Data, 0, 1, 3);
    d.extend(b"abc");
    s.receive(&d, 0.0, &mut ev).unwrap();
    assert_eq!(ev, vec![Event::Data(1, b"abc".to_vec())]);
    // And a local open is refused at the limit.
    assert_eq!(s.open_stream(), Err(Error::StreamLimit(8)));
}

#[test]
fn ping_flood_output_stays_bounded() {
    let mut s = Session::new(Role::Server, no_keepalive()).unwrap();
    let mut bytes = Vec::new();
    for i in 0..10_000u32 {
        bytes.extend(raw(FrameType::Ping, FLAG_SYN, 0, i));
    }
    let mut ev = Vec::new();
    s.receive(&bytes, 0.0, &mut ev).unwrap();
    assert!(ev.is_empty());
    let out = frames(&s.take_output());
    assert_eq!(out.len(), 16);
    assert_eq!(out[0], Header::new(FrameType::Ping, FLAG_ACK, 0, 0));
    // The budget refills after the output was drained.
    s.receive(&bytes[..HEADER_LEN], 0.0, &mut ev).unwrap();
    assert_eq!(frames(&s.take_output()).len(), 1);
}

fn expect_protocol_error(role: Role, setup: &[u8], bad: &[u8]) -> Error {
    let mut s = Session::new(role, no_keepalive()).unwrap();
    let mut ev = Vec::new();
    s.receive(setup, 0.0, &mut ev).unwrap();
    let _ = s.take_output();
    let err = s.receive(bad, 0.0, &mut ev).unwrap_err();
    assert!(is_goaway_protocol(&mut s), "GoAway(protocol error) queued");
    assert!(s.is_closed());
    err
}

#[test]
fn robustness_bad_version_and_type() {
    let mut b = raw(FrameType::Data, 0, 1, 0);
    b[0] = 1;
    assert!(matches!(
        expect_protocol_error(Role::Server, &[], &b),
        Error::Protocol(ProtocolError::Header(_))
    ));
    b[0] = 0;
    b[1] = 4;
    assert!(matches!(
        expect_protocol_error(Role::Server, &[], &b),
        Error::Protocol(ProtocolError::Header(_))
    ));
}

#[test]
fn robustness_bad_syns() {
    let syn = |id| raw(FrameType::WindowUpdate, FLAG_SYN, id, 0);
    assert_eq!(
        expect_protocol_error(Role::Server, &[], &syn(2)),
        Error::Protocol(ProtocolError::SynWrongParity(2))
    );
    assert_eq!(
        expect_protocol_error(Role::Client, &[], &syn(1)),
        Error::Protocol(ProtocolError::SynWrongParity(1))
    );
    assert_eq!(
        expect_protocol_error(Role::Server, &[], &syn(0)),
        Error::Protocol(ProtocolError::SynStreamZero)
    );
    assert_eq!(
        expect_protocol_error(Role::Server, &syn(1), &syn(1)),
        Error::Protocol(ProtocolError::SynLiveStream(1))
    );
    assert_eq!(
        expect_protocol_error(Role::Server, &[], &raw(FrameType::Data, FLAG_SYN, 1, W + 1)),
        Error::Protocol(ProtocolError::SynBodyTooLarge(1, W + 1))
    );
}

#[test]
fn robustness_window_overflow() {
    let syn = raw(FrameType::WindowUpdate, FLAG_SYN, 1, 0);
    assert_eq!(
        expect_protocol_error(
            Role::Server,
            &syn,
            &raw(FrameType::WindowUpdate, 0, 1, u32::MAX - 1000)
        ),
        Error::Protocol(ProtocolError::WindowOverflow(1))
    );
    assert_eq!(
        expect_protocol_error(
            Role::Server,
            &[],
            &raw(FrameType::WindowUpdate, FLAG_SYN, 1, u32::MAX)
        ),
        Error::Protocol(ProtocolError::WindowOverflow(1))
    );
}

#[test]
fn robustness_data_after_fin() {
    let mut setup = raw(FrameType::WindowUpdate, FLAG_SYN, 1, 0);
    setup.extend(raw(FrameType::WindowUpdate, FLAG_FIN, 1, 0));
    let mut bad = raw(FrameType::Data, 0, 1, 1);
    bad.push(0);
    assert_eq!(
        expect_protocol_error(Role::Server, &setup, &bad),
        Error::Protocol(ProtocolError::DataAfterFin(1))
    );
}

#[test]
fn robustness_frames_for_closed_streams_ignored() {
    let mut p = Pair::new();
    let a = p.c.open_stream().unwrap();
    let b = p.c.open_stream().unwrap();
    p.settle();
    p.c.reset_stream(a).unwrap();
    p.c.close_stream(b).unwrap();
    p.s.close_stream(b).unwrap();
    p.settle();
    assert_eq!(p.c.num_streams(), 0);
    let _ = p.c.take_output();
    let mut late = Vec::new();
    for id in [a, b, 1001] {
        late.extend(raw(FrameType::Data, 0, id, 4));
        late.extend(b"late");
        late.extend(raw(FrameType::WindowUpdate, FLAG_ACK, id, 100));
        late.extend(raw(FrameType::WindowUpdate, FLAG_FIN | FLAG_RST, id, 0));
    }
    let mut ev = Vec::new();
    p.c.receive(&late, 0.0, &mut ev).unwrap();
    assert!(ev.is_empty());
    assert!(p.c.take_output().is_empty());
}

#[test]
fn rst_with_data_delivers_then_resets() {
    let mut s = Session::new(Role::Server, no_keepalive()).unwrap();
    let mut b = raw(FrameType::Data, FLAG_SYN, 1, 2);
    b.extend(b"hi");
    b.extend(raw(FrameType::Data, FLAG_RST, 1, 1));
    b.push(b'!');
    let mut ev = Vec::new();
    s.receive(&b, 0.0, &mut ev).unwrap();
    assert_eq!(
        ev,
        vec![
            Event::StreamOpened(1),
            Event::Data(1, b"hi!".to_vec()),
            Event::Reset(1)
        ]
    );
    assert_eq!(s.send(1, b"x", false), Err(Error::StreamReset(1)));
}

#[test]
fn local_reset_mid_body_drops_the_rest() {
    let mut s = Session::new(Role::Server, no_keepalive()).unwrap();
    let mut b = raw(FrameType::Data, FLAG_SYN, 1, 10);
    b.extend(b"0123456789");
    let mut ev = Vec::new();
    s.receive(&b[..17], 0.0, &mut ev).unwrap();
    assert_eq!(data_of(&ev, 1), b"01234");
    s.reset_stream(1).unwrap();
    let mut ev = Vec::new();
    s.receive(&b[17..], 0.0, &mut ev).unwrap();
    assert!(ev.is_empty());
}

#[test]
fn keepalive_pings_and_times_out() {
    let cfg = Config {
        keepalive_interval: Some(10.0),
        ..Config::default()
    };
    let mut c = Session::new(Role::Client, cfg.clone()).unwrap();
    let mut s = Session::new(Role::Server, cfg).unwrap();
    assert_eq!(c.next_timer(), Some(0.0));
    c.handle_timer(0.0).unwrap();
    assert_eq!(c.next_timer(), Some(10.0));
    let pong_c = {
        let mut ev = Vec::new();
        s.receive(&c.take_output(), 0.0, &mut ev).unwrap();
        s.take_output()
    };
    let mut ev = Vec::new();
    c.receive(&pong_c, 0.05, &mut ev).unwrap();
    assert_eq!(ev, vec![Event::PingRtt(0.05)]);
    assert_eq!(c.rtt(), Some(0.05));
    // Early timer calls do nothing.
    c.handle_timer(5.0).unwrap();
    assert!(c.take_output().is_empty());
    c.handle_timer(10.0).unwrap();
    assert_eq!(frames(&c.take_output())[0].ty, FrameType::Ping);
    // No pong this time: the next tick is a timeout.
    assert_eq!(c.handle_timer(20.0), Err(Error::KeepAliveTimeout));
    assert!(c.is_closed());
    assert_eq!(c.next_timer(), None);
}

#[test]
fn byte_by_byte_delivery_gives_same_stream() {
    let mut c = Session::new(Role::Client, no_keepalive()).unwrap();
    let mut s = Session::new(Role::Server, no_keepalive()).unwrap();
    let id = c.open_stream().unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
    c.send(id, &payload, true).unwrap();
    let bytes = c.take_output();
    let mut all = Vec::new();
    for b in bytes.chunks(1) {
        let mut ev = Vec::new();
        s.receive(b, 0.0, &mut ev).unwrap();
        all.extend(ev);
    }
    assert_eq!(data_of(&all, id), payload);
    assert_eq!(all.first(), Some(&Event::StreamOpened(id)));
    assert_eq!(all.last(), Some(&Event::Fin(id)));
}

#[test]
fn outbound_frames_split_at_max_frame_size() {
    let mut c = Session::new(Role::Client, no_keepalive()).unwrap();
    let id = c.open_stream().unwrap();
    let _ = c.take_output();
    c.send(id, &vec![0u8; 200_000], true).unwrap();
    let hs = frames(&c.take_output());
    let max = rapidp2p_yamux::DEFAULT_MAX_FRAME_SIZE as u32;
    assert_eq!(
        hs.iter().map(|h| h.length).collect::<Vec<_>>(),
        vec![max, max, max, 200_000 - 3 * max]
    );
    assert_eq!(hs.last().unwrap().flags, FLAG_FIN);
    assert!(hs[..3].iter().all(|h| h.flags == 0));
}

#[test]
fn bad_config_rejected() {
    let cfg = Config {
        initial_window: 1000,
        ..Config::default()
    };
    assert!(matches!(
        Session::new(Role::Client, cfg),
        Err(Error::InvalidArgument(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_never_panic(chunks in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..200), 0..20)) {
        for role in [Role::Client, Role::Server] {
            let mut s = Session::new(role, Config::default()).unwrap();
            for c in &chunks {
                let mut ev = Vec::new();
                let _ = s.receive(c, 1.0, &mut ev);
                let _ = s.handle_timer(1.0);
            }
        }
    }

    #[test]
    fn structured_random_frames_never_panic(fs in proptest::collection::vec(
        (0u8..5, 0u16..16, 0u32..8, prop_oneof![0u32..300_000, Just(u32::MAX)]), 0..40)) {
        let mut s = Session::new(Role::Server, Config::default()).unwrap();
        let mut bytes = Vec::new();
        for (ty, flags, id, len) in fs {
            let mut h = Header::new(FrameType::Ping, flags, id, len).to_bytes();
            h[1] = ty;
            bytes.extend_from_slice(&h);
            if ty == 0 {
                bytes.extend(std::iter::repeat_n(0u8, (len as usize).min(1000)));
            }
        }
        let mut ev = Vec::new();
        let _ = s.receive(&bytes, 0.0, &mut ev);
        let _ = s.open_stream();
        prop_assert!(s.num_streams() <= Config::default().max_streams);
    }

    #[test]
    fn any_chunking_preserves_data(split_points in proptest::collection::vec(0usize..5000, 0..10),
                                   lens in proptest::collection::vec(0usize..2000, 1..6)) {
        let mut c = Session::new(Role::Client, no_keepalive()).unwrap();
        let mut s = Session::new(Role::Server, no_keepalive()).unwrap();
        let mut expect = Vec::new();
        for (i, l) in lens.iter().enumerate() {
            let id = c.open_stream().unwrap();
            let d = vec![i as u8; *l];
            c.send(id, &d, true).unwrap();
            expect.push((id, d));
        }
        let bytes = c.take_output();
        let mut cuts: Vec<usize> = split_points.into_iter().map(|p| p % (bytes.len() + 1)).collect();
        cuts.push(0);
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut all = Vec::new();
        for w in cuts.windows(2) {
            let mut ev = Vec::new();
            s.receive(&bytes[w[0]..w[1]], 0.0, &mut ev).unwrap();
            all.extend(ev);
        }
        for (id, d) in expect {
            prop_assert_eq!(data_of(&all, id), d);
            prop_assert!(all.contains(&Event::Fin(id)));
        }
    }
}
