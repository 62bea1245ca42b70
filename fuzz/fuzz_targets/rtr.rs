//! The RTR client's input path on any bytes a cache could send (RFC 8210 / 6810): the PDU
//! decoder in each version, and the cache session fed what it decodes, as the RTR thread feeds
//! it. Errors, never a panic; every decoded PDU encodes back to bytes that decode to it again.
#![no_main]

use focl::rpki::cache::{CacheSession, Out, TimerOverrides};
use focl::rpki::pdu::{self, Pdu};
use libfuzzer_sys::fuzz_target;
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the session's version range; the rest is the byte stream.
    let Some((&pick, stream)) = data.split_first() else { return };
    let max = pick % 3;
    let mut s = CacheSession::new("fuzz", 0, max, TimerOverrides::default());
    let now = Instant::now();
    let _ = s.on_connected();
    let mut at = 0;
    // Bounded: every step consumes at least one PDU header or ends the stream.
    while at < stream.len() {
        match pdu::decode(&stream[at..], s.version) {
            Ok(None) => break,
            Ok(Some((used, p))) => {
                assert!(used >= 8 && used <= stream.len() - at, "used {used} of {}", stream.len() - at);
                // Router Key PDUs are read and dropped, Error Reports cut to their bounds on
                // the way out: every other PDU makes the round trip exactly.
                if !matches!(p, Pdu::RouterKey | Pdu::ErrorReport { .. }) {
                    let again = pdu::encode(&p, s.version);
                    match pdu::decode(&again, s.version) {
                        Ok(Some((n, q))) => {
                            assert_eq!(n, again.len());
                            assert_eq!(q, p, "round trip");
                        }
                        other => panic!("{p:?} encodes to bytes that decode to {other:?}"),
                    }
                }
                at += used;
                let outs = s.on_pdu(p, now);
                if outs.iter().any(|o| matches!(o, Out::Reconnect { .. })) {
                    s.on_disconnected("fuzz");
                    let _ = s.on_connected();
                }
            }
            Err(e) => {
                let _ = s.on_decode_error(&e, &stream[at..]);
                break;
            }
        }
    }
    let _ = s.on_refresh(now);
    let _ = s.on_expire();
});
