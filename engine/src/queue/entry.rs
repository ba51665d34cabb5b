//! Consume-queue entry: where the n-th message of a queue sits in the commit log.
//!
//! ```text
//!  0                 8            12                 20
//!  +-----------------+------------+------------------+
//!  | phys offset i64 | size i32   | tag code i64     |   big-endian
//!  +-----------------+------------+------------------+
//! ```
//! The tag code is Java's `String.hashCode` of TAGS, or for delayed messages the due time
//! (spec §4.8): the engine treats it as an opaque i64. A zero size marks unwritten space.

/// Bytes per entry.
pub const CQ_ENTRY_SIZE: usize = 20;
const _: () = assert!(CQ_ENTRY_SIZE == 8 + 4 + 8);

/// One consume-queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CqEntry {
    pub phys: u64,
    pub size: u32,
    pub tag_code: i64,
}

impl CqEntry {
    /// End of the record in the log.
    pub fn end(&self) -> u64 {
        self.phys + u64::from(self.size)
    }

    pub fn encode(&self, dst: &mut Vec<u8>) {
        dst.extend_from_slice(&(self.phys as i64).to_be_bytes());
        dst.extend_from_slice(&(self.size as i32).to_be_bytes());
        dst.extend_from_slice(&self.tag_code.to_be_bytes());
    }

    /// Decodes an entry; `None` for a short slice, unwritten space (size 0) or a negative
    /// field.
    pub fn decode(bytes: &[u8]) -> Option<CqEntry> {
        let phys = i64::from_be_bytes(bytes.get(0..8)?.try_into().ok()?);
        let size = i32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?);
        let tag_code = i64::from_be_bytes(bytes.get(12..20)?.try_into().ok()?);
        if size <= 0 || phys < 0 {
            return None;
        }
        Some(CqEntry {
            phys: phys as u64,
            size: size as u32,
            tag_code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_and_round_trip() {
        let e = CqEntry {
            phys: 0x0102,
            size: 98,
            tag_code: 2598919,
        };
        let mut b = Vec::new();
        e.encode(&mut b);
        assert_eq!(
            b,
            [
                0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 98, 0, 0, 0, 0, 0, 0x27, 0xA8, 0x07
            ]
        );
        assert_eq!(CqEntry::decode(&b), Some(e));
        assert_eq!(CqEntry::decode(&[0; 20]), None);
        assert_eq!(CqEntry::decode(&b[..19]), None);
    }
}
