//! Body CRC (spec §4.5): CRC-32/ISO-HDLC (zlib, IEEE) masked to a non-negative i32.

/// CRC-32/IEEE of `bytes`, masked with `0x7FFFFFFF` as every RocketMQ CRC field is.
pub fn crc32_masked(bytes: &[u8]) -> i32 {
    (crc32fast::hash(bytes) & 0x7FFF_FFFF) as i32
}

/// The BODYCRC field for a body exactly as stored (after compression).
pub fn body_crc(body: &[u8]) -> i32 {
    crc32_masked(body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn spec_example() {
        assert_eq!(super::body_crc(b"Hello RocketMQ"), 1774740973);
        assert_eq!(super::body_crc(b""), 0);
    }
}
