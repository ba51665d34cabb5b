//! Batch send body of SEND_BATCH_MESSAGE (spec §4.6): entries concatenated.
//!
//! ```text
//!  off size field
//!    0    4 TOTALSIZE  i32 = 22 + B + P
//!    4    4 MAGICCODE  i32 = 0 (unused)
//!    8    4 BODYCRC    i32 = 0 (the broker computes it)
//!   12    4 FLAG       i32
//!   16    4 BODYLEN    i32 = B
//!   20    B BODY
//!         2 PROPLEN    i16 = P
//!         P PROPERTIES property string of this entry
//! ```

use super::record::MessageError;

/// Bytes of an entry with empty body and properties.
pub const BATCH_ENTRY_FIXED_LEN: usize = 22;

/// One message of a batch, borrowed from the request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEntry<'a> {
    pub flag: i32,
    pub body: &'a [u8],
    pub properties: &'a str,
}

fn field<const N: usize>(buf: &[u8], at: usize) -> Result<[u8; N], MessageError> {
    buf.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or(MessageError::Truncated {
            need: at + N,
            have: buf.len(),
        })
}

fn decode_entry(buf: &[u8]) -> Result<(BatchEntry<'_>, usize), MessageError> {
    let total = i32::from_be_bytes(field(buf, 0)?);
    let total = usize::try_from(total)
        .ok()
        .filter(|t| *t >= BATCH_ENTRY_FIXED_LEN)
        .ok_or(MessageError::BadLength {
            field: "TOTALSIZE",
            len: i64::from(total),
        })?;
    let entry = buf.get(..total).ok_or(MessageError::Truncated {
        need: total,
        have: buf.len(),
    })?;
    let flag = i32::from_be_bytes(field(entry, 12)?);
    let body_len = i32::from_be_bytes(field(entry, 16)?);
    let body_len = usize::try_from(body_len).map_err(|_| MessageError::BadLength {
        field: "BODYLEN",
        len: i64::from(body_len),
    })?;
    let body = entry
        .get(20..20 + body_len)
        .ok_or(MessageError::Truncated {
            need: 20 + body_len,
            have: total,
        })?;
    let props_at = 20 + body_len;
    let props_len = i16::from_be_bytes(field(entry, props_at)?);
    let props_len = usize::try_from(props_len).map_err(|_| MessageError::BadLength {
        field: "PROPLEN",
        len: i64::from(props_len),
    })?;
    let props =
        entry
            .get(props_at + 2..props_at + 2 + props_len)
            .ok_or(MessageError::Truncated {
                need: props_at + 2 + props_len,
                have: total,
            })?;
    if props_at + 2 + props_len != total {
        return Err(MessageError::BadLength {
            field: "TOTALSIZE",
            len: total as i64,
        });
    }
    let properties = std::str::from_utf8(props).map_err(|_| MessageError::NotUtf8 {
        field: "properties",
    })?;
    Ok((
        BatchEntry {
            flag,
            body,
            properties,
        },
        total,
    ))
}

/// Decodes a whole batch body; any malformed entry fails the batch.
pub fn decode_batch(mut buf: &[u8]) -> Result<Vec<BatchEntry<'_>>, MessageError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (entry, len) = decode_entry(buf)?;
        out.push(entry);
        buf = buf.get(len..).unwrap_or_default();
    }
    Ok(out)
}

/// Appends one entry to `dst` (what a producer sends).
pub fn encode_entry(entry: &BatchEntry<'_>, dst: &mut Vec<u8>) -> Result<(), MessageError> {
    if entry.properties.len() > i16::MAX as usize {
        return Err(MessageError::TooLong {
            field: "properties",
            len: entry.properties.len(),
        });
    }
    let total = BATCH_ENTRY_FIXED_LEN + entry.body.len() + entry.properties.len();
    let total32 = i32::try_from(total).map_err(|_| MessageError::TooLong {
        field: "batch entry",
        len: total,
    })?;
    dst.extend_from_slice(&total32.to_be_bytes());
    dst.extend_from_slice(&0i32.to_be_bytes());
    dst.extend_from_slice(&0i32.to_be_bytes());
    dst.extend_from_slice(&entry.flag.to_be_bytes());
    dst.extend_from_slice(&(entry.body.len() as i32).to_be_bytes());
    dst.extend_from_slice(entry.body);
    dst.extend_from_slice(&(entry.properties.len() as i16).to_be_bytes());
    dst.extend_from_slice(entry.properties.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_golden() {
        let a = BatchEntry {
            flag: 1,
            body: b"hi",
            properties: "K\u{1}v\u{2}",
        };
        let b = BatchEntry {
            flag: 2,
            body: b"",
            properties: "",
        };
        let mut buf = Vec::new();
        encode_entry(&a, &mut buf).unwrap();
        encode_entry(&b, &mut buf).unwrap();
        assert_eq!(
            &buf[..28],
            &[
                0, 0, 0, 28, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, b'h', b'i', 0, 4,
                b'K', 1, b'v', 2
            ]
        );
        assert_eq!(decode_batch(&buf).unwrap(), vec![a, b]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut buf = Vec::new();
        encode_entry(
            &BatchEntry {
                flag: 1,
                body: b"body",
                properties: "A\u{1}b",
            },
            &mut buf,
        )
        .unwrap();
        for n in 1..buf.len() {
            assert!(decode_batch(&buf[..n]).is_err(), "prefix {n}");
        }
        let mut bad = buf.clone();
        bad[19] = 200; // BODYLEN beyond the entry
        assert!(decode_batch(&bad).is_err());
    }
}
