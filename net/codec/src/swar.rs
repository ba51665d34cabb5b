//! Byte scans eight bytes per step ("SIMD within a register"), for the codec's hot searches:
//! the end of a JSON string's plain run and the separators of a property string.
//!
//! [`below`] flags, in the high bit of each byte of a word, the bytes below `n`; a byte equal
//! to `c` is one whose XOR with `c` is below 1. A borrow can flag a byte wrongly only above
//! one flagged rightly, so the lowest flagged byte of any union of such masks is the first
//! byte that matches.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of `word` below `n` (at most 0x80), flagged in their high bit.
pub(crate) const fn below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(ONES * n as u64) & !word & HIGHS
}

/// The bytes of `word` equal to `c`, flagged in their high bit.
pub(crate) const fn equal(word: u64, c: u8) -> u64 {
    below(word ^ (ONES * c as u64), 1)
}

/// The position of the first byte of `b` that `matches`, testing whole words with `hits`
/// (which must flag exactly those bytes, up to the borrow rule above) and the tail bytewise.
pub(crate) fn position(
    b: &[u8],
    hits: impl Fn(u64) -> u64,
    matches: impl Fn(u8) -> bool,
) -> Option<usize> {
    let mut words = b.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let Ok(bytes) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let flagged = hits(u64::from_le_bytes(bytes));
        if flagged != 0 {
            return Some(at + (flagged.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&c| matches(c))
        .map(|i| at + i)
}
