//! The body of every message the bench sends: a fixed header that lets a consumer check the
//! message and place it in its stream, then filler up to the requested size.
//!
//! ```text
//!  off size field
//!    0    4 MAGIC     u32be 0x524D5142 ("RMQB")
//!    4    4 RUN       u32be random per bench process, so runs sharing a topic stay apart
//!    8    4 PRODUCER  u32be producer index within the run
//!   12    4 CRC       u32be CRC-32/IEEE of bytes 0..12 and 16..end (everything but itself)
//!   16    8 SEQ       u64be sequence number per (run, producer, topic, broker, queue), from 0
//!   24    8 BORN      u64be ns since the Unix epoch (the intended send time in open loop)
//!   32    P PAYLOAD   filler bytes, P = size − 32
//! ```
//!
//! The queue is not in the body: the consumer knows which queue it pulled from, and a message
//! found in a queue other than the one it was sent to shows up as lost in one stream and as
//! out of order or foreign in another.

/// Bytes of the header; the smallest message the bench sends.
pub const BODY_HEADER_LEN: usize = 32;

/// First four bytes of every bench body.
pub const BODY_MAGIC: u32 = 0x524D_5142;

/// The identifying part of a bench message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BodyHeader {
    pub run: u32,
    pub producer: u32,
    pub seq: u64,
    pub born_ns: u64,
}

/// What a consumer makes of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyCheck {
    /// A bench message whose CRC matches.
    Valid(BodyHeader),
    /// Not written by ringmq-bench (no magic or too short): another client's message.
    Foreign,
    /// A bench message whose bytes changed on the way.
    Corrupt,
}

/// Filler for bodies of `size` bytes: a fixed, non-constant pattern (a run of zeros would
/// flatter any broker or link that compresses).
pub fn payload(size: usize) -> Vec<u8> {
    let len = size.saturating_sub(BODY_HEADER_LEN);
    let mut x: u32 = 0x9E37_79B9;
    (0..len)
        .map(|_| {
            // xorshift32: cheap, and the same bytes on every run.
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_be_bytes()[0]
        })
        .collect()
}

fn crc_of(head: &[u8], rest: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(head);
    h.update(rest);
    h.finalize()
}

/// Appends a body (header + `payload`) to `dst`.
pub fn encode(h: &BodyHeader, payload: &[u8], dst: &mut Vec<u8>) {
    let at = dst.len();
    dst.extend_from_slice(&BODY_MAGIC.to_be_bytes());
    dst.extend_from_slice(&h.run.to_be_bytes());
    dst.extend_from_slice(&h.producer.to_be_bytes());
    dst.extend_from_slice(&[0; 4]);
    dst.extend_from_slice(&h.seq.to_be_bytes());
    dst.extend_from_slice(&h.born_ns.to_be_bytes());
    dst.extend_from_slice(payload);
    let body = dst.get(at..).unwrap_or_default();
    let crc = crc_of(
        body.get(..12).unwrap_or_default(),
        body.get(16..).unwrap_or_default(),
    );
    if let Some(slot) = dst.get_mut(at + 12..at + 16) {
        slot.copy_from_slice(&crc.to_be_bytes());
    }
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Checks a received body.
pub fn check(body: &[u8]) -> BodyCheck {
    if body.len() < BODY_HEADER_LEN || be_u32(body, 0) != Some(BODY_MAGIC) {
        return BodyCheck::Foreign;
    }
    let fields = (
        be_u32(body, 4),
        be_u32(body, 8),
        be_u32(body, 12),
        be_u64(body, 16),
        be_u64(body, 24),
    );
    let (Some(run), Some(producer), Some(crc), Some(seq), Some(born_ns)) = fields else {
        return BodyCheck::Foreign;
    };
    let computed = crc_of(
        body.get(..12).unwrap_or_default(),
        body.get(16..).unwrap_or_default(),
    );
    if computed != crc {
        return BodyCheck::Corrupt;
    }
    BodyCheck::Valid(BodyHeader {
        run,
        producer,
        seq,
        born_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BodyHeader {
        BodyHeader {
            run: 0xA1B2_C3D4,
            producer: 3,
            seq: 42,
            born_ns: 1_700_000_000_123_456_789,
        }
    }

    #[test]
    fn round_trip_at_every_small_size() {
        for size in [0, 1, 31, 32, 33, 100, 1024] {
            let mut buf = Vec::new();
            encode(&sample(), &payload(size), &mut buf);
            assert_eq!(buf.len(), size.max(BODY_HEADER_LEN), "size {size}");
            assert_eq!(check(&buf), BodyCheck::Valid(sample()));
        }
    }

    #[test]
    fn golden_header_bytes() {
        let mut buf = Vec::new();
        encode(&sample(), b"", &mut buf);
        assert_eq!(&buf[..12], b"RMQB\xA1\xB2\xC3\xD4\0\0\0\x03");
        assert_eq!(&buf[16..24], &42u64.to_be_bytes());
        let crc = crc32fast::hash(&[&buf[..12], &buf[16..]].concat());
        assert_eq!(&buf[12..16], &crc.to_be_bytes());
    }

    #[test]
    fn encode_appends_after_existing_bytes() {
        let mut buf = b"prefix".to_vec();
        encode(&sample(), b"xyz", &mut buf);
        assert_eq!(check(&buf[6..]), BodyCheck::Valid(sample()));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let mut good = Vec::new();
        encode(&sample(), &payload(64), &mut good);
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let verdict = check(&bad);
            if bit < 32 {
                // A flipped magic bit makes it someone else's message.
                assert_eq!(verdict, BodyCheck::Foreign, "bit {bit}");
            } else {
                assert_eq!(verdict, BodyCheck::Corrupt, "bit {bit}");
            }
        }
    }

    #[test]
    fn foreign_and_truncated_bodies() {
        assert_eq!(check(b"Hello RocketMQ"), BodyCheck::Foreign);
        assert_eq!(check(b""), BodyCheck::Foreign);
        let mut buf = Vec::new();
        encode(&sample(), &payload(100), &mut buf);
        assert_eq!(check(&buf[..BODY_HEADER_LEN - 1]), BodyCheck::Foreign);
        assert_eq!(check(&buf[..50]), BodyCheck::Corrupt);
    }

    #[test]
    fn payload_is_deterministic_and_not_constant() {
        let p = payload(1056);
        assert_eq!(p.len(), 1024);
        assert_eq!(p, payload(1056));
        assert!(p.windows(2).any(|w| w[0] != w[1]));
    }
}
