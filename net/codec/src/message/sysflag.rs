//! `MessageSysFlag` bits stored in a record's SYSFLAG field (spec §4.2).
//!
//! ```text
//!  bit: 10  9  8 | 7           6           5         4         3  2        1           0
//!      COMPRESSION| INNER_BATCH NEED_UNWRAP STORE_V6  BORN_V6   TRANSACTION MULTI_TAGS  COMPRESSED
//! ```

/// The body is compressed (zlib unless a COMPRESSION type says otherwise).
pub const COMPRESSED: i32 = 0x1;
/// Legacy MULTI_TAG topic marker, set by the broker.
pub const MULTI_TAGS: i32 = 0x2;
/// The two transaction-type bits.
pub const TRANSACTION_MASK: i32 = 0xC;
/// Transaction type: a normal message.
pub const TRANSACTION_NOT_TYPE: i32 = 0x0;
/// Transaction type: a half (prepared) message.
pub const TRANSACTION_PREPARED_TYPE: i32 = 0x4;
/// Transaction type: a committed transactional message.
pub const TRANSACTION_COMMIT_TYPE: i32 = 0x8;
/// Transaction type: a rolled-back transactional message.
pub const TRANSACTION_ROLLBACK_TYPE: i32 = 0xC;
/// The born host is IPv6 (16-byte address field); set by the broker.
pub const BORNHOST_V6: i32 = 0x10;
/// The store host is IPv6 (16-byte address field); set by the broker.
pub const STOREHOST_V6: i32 = 0x20;
/// 5.x inner batch: the body is a batch to unwrap.
pub const NEED_UNWRAP: i32 = 0x40;
/// 5.x batch consume-queue topic.
pub const INNER_BATCH: i32 = 0x80;
/// The three compression-type bits.
pub const COMPRESSION_MASK: i32 = 0x700;
/// Compression type LZ4.
pub const COMPRESSION_LZ4: i32 = 0x100;
/// Compression type ZSTD.
pub const COMPRESSION_ZSTD: i32 = 0x200;
/// Compression type ZLIB (also what COMPRESSED with no type means on 4.x).
pub const COMPRESSION_ZLIB: i32 = 0x300;

/// The transaction type bits of `sys_flag`.
pub fn transaction_type(sys_flag: i32) -> i32 {
    sys_flag & TRANSACTION_MASK
}

/// `sys_flag` with its transaction type replaced by `kind` (one of the `TRANSACTION_*`).
pub fn with_transaction_type(sys_flag: i32, kind: i32) -> i32 {
    (sys_flag & !TRANSACTION_MASK) | (kind & TRANSACTION_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_bits() {
        let f = COMPRESSED | TRANSACTION_PREPARED_TYPE;
        assert_eq!(transaction_type(f), TRANSACTION_PREPARED_TYPE);
        let g = with_transaction_type(f, TRANSACTION_NOT_TYPE);
        assert_eq!(g, COMPRESSED);
        assert_eq!(
            transaction_type(with_transaction_type(g, TRANSACTION_ROLLBACK_TYPE)),
            0xC
        );
    }
}
