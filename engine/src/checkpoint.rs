//! The recovery checkpoint: two 64-byte slots written alternately, so a torn write of one
//! leaves the other valid.
//!
//! ```text
//!  0      4        6       8       16        24             32        40        60      64
//!  +------+--------+-------+-------+---------+--------------+---------+---------+-------+
//!  |magic |version |flags  | seq   | log_end | derived_upto | log_min | zero    | crc32 |
//!  | u32  | u16    | u16   | u64   | u64     | u64          | u64     | 20 B    | u32   |
//!  +------+--------+-------+-------+---------+--------------+---------+---------+-------+
//!  big-endian; crc32 (IEEE) over bytes 0..60; slot = seq % 2; flags bit 0 = clean stop
//! ```

/// "RMCP".
pub const CHECKPOINT_MAGIC: u32 = 0x524D_4350;
pub const CHECKPOINT_SLOT_LEN: usize = 64;
const _: () = assert!(CHECKPOINT_SLOT_LEN == 4 + 2 + 2 + 8 + 8 + 8 + 8 + 20 + 4);

/// What the checkpoint promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: u64,
    /// The store was closed cleanly: everything below `log_end` is durable and every
    /// derived file is complete; no scan is needed.
    pub clean: bool,
    /// End of the log at a clean stop (0 otherwise).
    pub log_end: u64,
    /// Consume-queue and index files hold, durably, every entry for records below this
    /// offset; recovery scans from here.
    pub derived_upto: u64,
    /// Start of the oldest segment kept.
    pub log_min: u64,
}

impl Checkpoint {
    pub fn encode(&self) -> [u8; CHECKPOINT_SLOT_LEN] {
        let mut b = Vec::with_capacity(CHECKPOINT_SLOT_LEN);
        b.extend_from_slice(&CHECKPOINT_MAGIC.to_be_bytes());
        b.extend_from_slice(&1u16.to_be_bytes());
        b.extend_from_slice(&u16::from(self.clean).to_be_bytes());
        b.extend_from_slice(&self.seq.to_be_bytes());
        b.extend_from_slice(&self.log_end.to_be_bytes());
        b.extend_from_slice(&self.derived_upto.to_be_bytes());
        b.extend_from_slice(&self.log_min.to_be_bytes());
        b.resize(60, 0);
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_be_bytes());
        let mut out = [0u8; CHECKPOINT_SLOT_LEN];
        out.copy_from_slice(&b);
        out
    }

    pub fn decode(b: &[u8]) -> Option<Checkpoint> {
        let body = b.get(..60)?;
        let crc = u32::from_be_bytes(b.get(60..64)?.try_into().ok()?);
        if crc32fast::hash(body) != crc {
            return None;
        }
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
        };
        if u32::from_be_bytes(b.get(0..4)?.try_into().ok()?) != CHECKPOINT_MAGIC {
            return None;
        }
        let flags = u16::from_be_bytes(b.get(6..8)?.try_into().ok()?);
        Some(Checkpoint {
            seq: u64_at(8)?,
            clean: flags & 1 == 1,
            log_end: u64_at(16)?,
            derived_upto: u64_at(24)?,
            log_min: u64_at(32)?,
        })
    }

    /// The newest valid slot of a checkpoint file's contents.
    pub fn newest(file: &[u8]) -> Option<Checkpoint> {
        let a = file.get(..CHECKPOINT_SLOT_LEN).and_then(Checkpoint::decode);
        let b = file
            .get(CHECKPOINT_SLOT_LEN..2 * CHECKPOINT_SLOT_LEN)
            .and_then(Checkpoint::decode);
        match (a, b) {
            (Some(x), Some(y)) => Some(if x.seq >= y.seq { x } else { y }),
            (x, y) => x.or(y),
        }
    }

    /// Byte offset of this checkpoint's slot.
    pub fn slot_offset(&self) -> u64 {
        (self.seq % 2) * CHECKPOINT_SLOT_LEN as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_torn_writes() {
        let a = Checkpoint {
            seq: 4,
            clean: false,
            log_end: 0,
            derived_upto: 100,
            log_min: 0,
        };
        let b = Checkpoint {
            seq: 5,
            clean: true,
            log_end: 200,
            derived_upto: 200,
            log_min: 0,
        };
        let mut file = vec![0u8; 128];
        file[..64].copy_from_slice(&a.encode());
        file[64..].copy_from_slice(&b.encode());
        assert_eq!(Checkpoint::newest(&file), Some(b));
        file[70] ^= 1; // a torn newer slot falls back to the older one
        assert_eq!(Checkpoint::newest(&file), Some(a));
        assert_eq!(Checkpoint::newest(&[0; 10]), None);
        assert_eq!(a.encode()[..4], *b"RMCP");
    }
}
