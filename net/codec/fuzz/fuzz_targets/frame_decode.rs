//! Fuzz target: arbitrary bytes through the frame decoder.
//!
//! Goal: `frame::decode` and `frame::decode_from` never panic, agree with each other under a
//! small and the default frame limit, and every command they produce survives encode → decode
//! unchanged. The input is also read as a stream of frames, as a connection would read it.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringmq_codec::Command;
use ringmq_codec::frame::{self, FRAME_MAX_DEFAULT};

/// Small enough that many inputs exceed it.
const SMALL_LIMIT: usize = 256;

/// Frames read from one input as a stream; bounds the work per input.
const STREAM_FRAMES_MAX: usize = 64;

fuzz_target!(|data: &[u8]| {
    for limit in [SMALL_LIMIT, FRAME_MAX_DEFAULT] {
        one_frame(data, limit);
        stream(data, limit);
    }
});

fn one_frame(data: &[u8], limit: usize) {
    let by_slice = frame::decode(data, limit);
    let mut buf = BytesMut::from(data);
    let by_buf = frame::decode_from(&mut buf, limit);
    match by_slice {
        Ok(None) => {
            assert_eq!(by_buf, Ok(None));
            assert_eq!(&buf[..], data, "Ok(None) consumed bytes");
        }
        Ok(Some((cmd, used))) => {
            assert!(used <= data.len(), "used {used} of {} bytes", data.len());
            assert_eq!(buf.len(), data.len() - used);
            assert_eq!(by_buf, Ok(Some(cmd.clone())));
            reencode(&cmd);
        }
        Err(e) => assert_eq!(by_buf, Err(e)),
    }
}

/// Reads frames until the input runs out or breaks, as a connection's read loop does.
fn stream(data: &[u8], limit: usize) {
    let mut buf = BytesMut::from(data);
    for _ in 0..STREAM_FRAMES_MAX {
        let before = buf.len();
        match frame::decode_from(&mut buf, limit) {
            Ok(Some(cmd)) => {
                assert!(buf.len() < before, "a decoded frame consumed no bytes");
                reencode(&cmd);
            }
            Ok(None) | Err(_) => return,
        }
    }
}

fn reencode(cmd: &Command) {
    let mut out = BytesMut::new();
    frame::encode(cmd, &mut out);
    let (again, used) = frame::decode(&out, usize::MAX)
        .expect("a re-encoded command decodes")
        .expect("a re-encoded command is a whole frame");
    assert_eq!(used, out.len());
    assert_eq!(&again, cmd, "command changed through encode → decode");
}
