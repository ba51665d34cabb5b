//! ROCKETMQ binary header (spec §1.5).
//!
//! ```text
//! offset size  field
//! 0      2     code        i16
//! 2      1     language    u8
//! 3      2     version     i16
//! 5      4     opaque      i32
//! 9      4     flag        i32
//! 13     4     remark_len  i32, 0 = no remark
//! 17     R     remark      UTF-8
//! 17+R   4     ext_len     i32, bytes of the key/value area
//! 21+R   E     ext area    repeated: key_len i16, key, val_len i32, val
//! ```
//!
//! A zero-length string is "absent" in this format: empty remarks and empty ext values do not
//! survive a round trip (spec §10 item 12).

use bytes::{BufMut, Bytes, BytesMut};

use super::HeaderError;
use crate::command::{Command, ExtFields, LanguageCode, SerializeType};

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], HeaderError> {
        let have = self.buf.len().saturating_sub(self.pos);
        let slice =
            self.buf
                .get(self.pos..self.pos.saturating_add(n))
                .ok_or(HeaderError::Truncated {
                    field,
                    need: n,
                    have,
                })?;
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], HeaderError> {
        let slice = self.take(N, field)?;
        slice.try_into().map_err(|_| HeaderError::Truncated {
            field,
            need: N,
            have: slice.len(),
        })
    }

    fn i16_be(&mut self, field: &'static str) -> Result<i16, HeaderError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    fn i32_be(&mut self, field: &'static str) -> Result<i32, HeaderError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, HeaderError> {
        Ok(u8::from_be_bytes(self.array(field)?))
    }

    /// A length field, checked to be non-negative and within the header (Java's limit).
    fn len(&mut self, raw: i64, field: &'static str) -> Result<usize, HeaderError> {
        if raw < 0 || raw as u64 > self.buf.len() as u64 {
            return Err(HeaderError::BadLength { field, len: raw });
        }
        Ok(raw as usize)
    }

    fn string(&mut self, len: usize, field: &'static str) -> Result<String, HeaderError> {
        self.str(len, field).map(str::to_owned)
    }

    fn str(&mut self, len: usize, field: &'static str) -> Result<&'a str, HeaderError> {
        let bytes = self.take(len, field)?;
        std::str::from_utf8(bytes).map_err(|_| HeaderError::NotUtf8 { field })
    }
}

pub(super) fn decode(header: &[u8], body: Bytes) -> Result<Command, HeaderError> {
    let mut r = Reader {
        buf: header,
        pos: 0,
    };
    let code = i32::from(r.i16_be("code")?);
    let language = LanguageCode(r.u8("language")?);
    let version = i32::from(r.i16_be("version")?);
    let opaque = r.i32_be("opaque")?;
    let flag = r.i32_be("flag")?;
    let raw = r.i32_be("remark_len")?;
    let remark_len = r.len(i64::from(raw), "remark")?;
    let remark = match remark_len {
        0 => None,
        n => Some(r.string(n, "remark")?),
    };
    let raw = r.i32_be("ext_len")?;
    let ext_len = r.len(i64::from(raw), "ext")?;
    let ext_area = r.take(ext_len, "ext")?;
    let ext = decode_ext(ext_area)?;
    Ok(Command {
        code,
        language,
        version,
        opaque,
        flag,
        remark,
        ext,
        serialize: SerializeType::RocketMq,
        body,
    })
}

fn decode_ext(area: &[u8]) -> Result<ExtFields, HeaderError> {
    let mut r = Reader { buf: area, pos: 0 };
    // Every pair costs at least 6 bytes of lengths; text never exceeds the area.
    let mut ext = ExtFields::for_decoding((area.len() / 6).min(32), area.len());
    while r.pos < area.len() {
        let raw = r.i16_be("ext key_len")?;
        let key_len = r.len(i64::from(raw), "ext key")?;
        let key = r.str(key_len, "ext key")?;
        let raw = r.i32_be("ext val_len")?;
        let val_len = r.len(i64::from(raw), "ext value")?;
        let val = r.str(val_len, "ext value")?;
        // Zero-length keys or values decode as absent (Java turns them into null).
        if !key.is_empty() && !val.is_empty() {
            ext.push_decoded(key, val);
        }
    }
    ext.finish_decoding();
    Ok(ext)
}

pub(super) fn encode(cmd: &Command, dst: &mut BytesMut) {
    // The 16-bit code field truncates codes above i16 (spec §1.5); Java does the same cast.
    dst.put_i16(cmd.code as i16);
    dst.put_u8(cmd.language.0);
    dst.put_i16(cmd.version as i16);
    dst.put_i32(cmd.opaque);
    dst.put_i32(cmd.flag);
    let remark = bounded(cmd.remark.as_deref().unwrap_or(""));
    dst.put_i32(len_i32(remark.len()));
    dst.put_slice(remark.as_bytes());
    let ext_len_at = dst.len();
    dst.put_i32(0);
    let ext_start = dst.len();
    for (k, v) in cmd.ext.iter() {
        // A key of 32 KiB or more cannot be framed (i16 length); only a peer's own ext map,
        // echoed back, could hold one, and dropping it beats a broken frame.
        let Ok(key_len) = i16::try_from(k.len()) else {
            continue;
        };
        if k.is_empty() || v.is_empty() {
            continue;
        }
        dst.put_i16(key_len);
        dst.put_slice(k.as_bytes());
        dst.put_i32(len_i32(v.len()));
        dst.put_slice(v.as_bytes());
    }
    let ext_len = len_i32(dst.len() - ext_start);
    if let Some(slot) = dst.get_mut(ext_len_at..ext_start) {
        slot.copy_from_slice(&ext_len.to_be_bytes());
    }
}

/// Remarks are for humans: anything past 64 KiB (a remark quoting a huge input) is cut, so a
/// header always fits its 24-bit length.
pub(super) fn bounded(remark: &str) -> &str {
    const REMARK_MAX: usize = 64 * 1024;
    if remark.len() <= REMARK_MAX {
        return remark;
    }
    let mut end = REMARK_MAX;
    while !remark.is_char_boundary(end) {
        end -= 1;
    }
    remark.get(..end).unwrap_or("")
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).expect("header strings are far below 2 GiB")
}
