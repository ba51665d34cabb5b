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
    let computed = crc_of(
        body.get(..12).unwrap_or_default(),
        body.get(16..).unwrap_or_default(),
    );
    verdict(body, computed)
}

/// Checks a received body and, in the same pass, whether `broker_crc` (the record's BODYCRC,
/// CRC-32 masked to 31 bits) is the CRC of the whole body. Returns (verdict, BODYCRC ok).
///
/// Why one pass: the two CRCs cover the same payload, and computing both was ~25 % of a
/// consumer's CPU in the pull row (perf, 2 M msgs/s). CRC-32 is linear, so a CRC over
/// `prefix ‖ tail` is `shift(crc(prefix), |tail|) ^ crc(tail)`: the payload (`tail`, bytes
/// 16..) is hashed once, the 12- and 16-byte prefixes are hashed apart, and the shift by
/// `|tail|` bytes is a multiplication by x^(8·|tail|) mod P, done with four 256-entry tables
/// built once per body length ([`Shift`]).
///
/// ```text
///  bench CRC = shift(crc(body[0..12]), n) ^ crc(body[16..])      n = body.len() − 16
///  BODYCRC   = shift(crc(body[0..16]), n) ^ crc(body[16..])
/// ```
pub fn check_with_broker_crc(body: &[u8], broker_crc: i32) -> (BodyCheck, bool) {
    let masked = |crc: u32| (crc & 0x7FFF_FFFF) as i32;
    let (Some(prefix12), Some(prefix16), Some(tail)) =
        (body.get(..12), body.get(..16), body.get(16..))
    else {
        return (check(body), masked(crc32fast::hash(body)) == broker_crc);
    };
    if body.len() < BODY_HEADER_LEN || be_u32(body, 0) != Some(BODY_MAGIC) {
        return (
            BodyCheck::Foreign,
            masked(crc32fast::hash(body)) == broker_crc,
        );
    }
    let crc_tail = crc32fast::hash(tail);
    let (bench, whole) = SHIFT.with_borrow_mut(|cached| {
        let shift = match cached {
            Some(s) if s.len == tail.len() => s,
            _ => cached.insert(Shift::new(tail.len())),
        };
        (
            shift.apply(crc32fast::hash(prefix12)) ^ crc_tail,
            shift.apply(crc32fast::hash(prefix16)) ^ crc_tail,
        )
    });
    (verdict(body, bench), masked(whole) == broker_crc)
}

/// The header fields of a body that starts with the magic, judged by `computed`, the CRC of
/// everything but the CRC field.
fn verdict(body: &[u8], computed: u32) -> BodyCheck {
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

thread_local! {
    /// The shift of the last body length seen: a run's bodies all have one size.
    static SHIFT: std::cell::RefCell<Option<Shift>> = const { std::cell::RefCell::new(None) };
}

/// CRC-32/IEEE's polynomial in its reflected form (bit 31 is the coefficient of x^0).
const POLY: u32 = 0xEDB8_8320;

/// a·b mod P, both in the reflected form CRC-32 registers use.
fn gf2_mul(a: u32, mut b: u32) -> u32 {
    let mut product = 0;
    for i in 0..32 {
        if a & (0x8000_0000 >> i) != 0 {
            product ^= b;
        }
        // b·x: one step towards the high powers, reduced mod P.
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
    }
    product
}

/// Multiplication by x^(8·len) mod P: what appending `len` bytes does to a CRC's
/// contribution. Linear in its input, so four tables (one per input byte) hold it.
struct Shift {
    len: usize,
    tables: Box<[[u32; 256]; 4]>,
}

impl Shift {
    fn new(len: usize) -> Shift {
        // x^(8·len) by square and multiply, from x^8.
        let (mut op, mut power, mut n) = (0x8000_0000u32, 0x0080_0000u32, len);
        while n > 0 {
            if n & 1 == 1 {
                op = gf2_mul(op, power);
            }
            power = gf2_mul(power, power);
            n >>= 1;
        }
        let mut tables = Box::new([[0u32; 256]; 4]);
        for (k, table) in tables.iter_mut().enumerate() {
            for (v, slot) in table.iter_mut().enumerate() {
                *slot = gf2_mul(op, (v as u32) << (8 * k));
            }
        }
        Shift { len, tables }
    }

    fn apply(&self, crc: u32) -> u32 {
        let [t0, t1, t2, t3] = &*self.tables;
        let [b0, b1, b2, b3] = crc.to_le_bytes();
        t0[b0 as usize] ^ t1[b1 as usize] ^ t2[b2 as usize] ^ t3[b3 as usize]
    }
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
    fn one_pass_check_agrees_with_two_crcs() {
        let seed: u64 = std::env::var("RINGMQ_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0x5eed_b0d1);
        println!("seed {seed} (RINGMQ_SEED replays)");
        let mut x = seed | 1;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let masked = |b: &[u8]| (crc32fast::hash(b) & 0x7FFF_FFFF) as i32;
        for size in [
            0, 5, 12, 16, 17, 31, 32, 33, 100, 1024, 1024, 4096, 1000, 1024,
        ] {
            let mut body = Vec::new();
            encode(&sample(), &payload(size), &mut body);
            let good = masked(&body);
            assert_eq!(check_with_broker_crc(&body, good), (check(&body), true));
            assert!(!check_with_broker_crc(&body, good ^ 1).1);
            // A flipped bit anywhere: both checks agree with the two-pass ones.
            let bit = (rnd() as usize) % (body.len() * 8);
            body[bit / 8] ^= 1 << (bit % 8);
            let (v, ok) = check_with_broker_crc(&body, good);
            assert_eq!((v, ok), (check(&body), false), "size {size} bit {bit}");
            assert!(check_with_broker_crc(&body, masked(&body)).1);
        }
        for len in [0usize, 1, 2, 7, 33] {
            let foreign: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
            let got = check_with_broker_crc(&foreign, masked(&foreign));
            assert_eq!(got, (check(&foreign), true));
        }
    }

    #[test]
    fn shift_is_crc32_combine() {
        let (a, b) = (b"prefix bytes", &payload(777)[..]);
        let joined = [&a[..], b].concat();
        let s = Shift::new(b.len());
        assert_eq!(
            s.apply(crc32fast::hash(a)) ^ crc32fast::hash(b),
            crc32fast::hash(&joined)
        );
        assert_eq!(Shift::new(0).apply(0x1234_5678), 0x1234_5678);
    }

    #[test]
    fn payload_is_deterministic_and_not_constant() {
        let p = payload(1056);
        assert_eq!(p.len(), 1024);
        assert_eq!(p, payload(1056));
        assert!(p.windows(2).any(|w| w[0] != w[1]));
    }
}
