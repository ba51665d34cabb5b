//! Segment naming and offset math. A segment covers `[start, start + segment_size)` of the
//! log and is named by its start offset in 20 decimal digits, as RocketMQ names them.

/// File name of the segment starting at `start`.
pub fn segment_name(start: u64) -> String {
    format!("{start:020}")
}

/// Parses a 20-digit segment (or consume-queue / index file) name.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    (name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit())).then(|| name.parse().ok())?
}

/// Start of the segment holding `offset`.
pub fn segment_start(offset: u64, segment_size: u64) -> u64 {
    offset - offset % segment_size
}

/// Bytes a segment must keep free after the last record for the end-of-file filler header
/// (TOTALSIZE + MAGICCODE).
pub const BLANK_MIN_LEN: u64 = 8;

/// Where a record of `len` bytes goes when the log ends at `end`: `(filler_len, start)`.
/// A record never straddles segments: when it does not fit (keeping room for a filler
/// header), the rest of the segment becomes a filler and the record starts the next one.
pub fn place(end: u64, len: u64, segment_size: u64) -> (u64, u64) {
    let seg_end = segment_start(end, segment_size) + segment_size;
    if end + len + BLANK_MIN_LEN <= seg_end {
        (0, end)
    } else {
        (seg_end - end, seg_end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_placement() {
        assert_eq!(segment_name(1073741824), "00000000001073741824");
        assert_eq!(parse_segment_name("00000000001073741824"), Some(1073741824));
        assert_eq!(parse_segment_name("0000000000107374182x"), None);
        assert_eq!(parse_segment_name("12"), None);
        assert_eq!(segment_start(1500, 1000), 1000);
        assert_eq!(place(0, 100, 1000), (0, 0));
        assert_eq!(place(892, 100, 1000), (0, 892));
        assert_eq!(place(893, 100, 1000), (107, 1000));
        // The filler always has room for its 8-byte header.
        // The log end always leaves room for a filler header (the invariant `place` keeps).
        for end in 0..=1000 - BLANK_MIN_LEN {
            let (blank, start) = place(end, 50, 1000);
            assert!(blank == 0 || blank >= BLANK_MIN_LEN);
            assert_eq!(start, end + blank);
        }
    }
}
