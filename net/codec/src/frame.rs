//! Frame layer: length prefix, header word, header, body (spec §1.2).
//!
//! ```text
//!  0                   4                   8
//!  +-------------------+-------------------+--------------------+-------------+
//!  | total_len : u32be | hdr_word : u32be  | header (hdr_len B) | body (rest) |
//!  +-------------------+-------------------+--------------------+-------------+
//!  total_len = 4 + hdr_len + body_len      (does not count its own 4 bytes)
//!  hdr_word  = serialize_type << 24 | hdr_len
//! ```
//!
//! Every length is checked against the frame limit before anything is allocated, and an
//! incomplete frame is `Ok(None)`, never an error.

use bytes::{BufMut, Bytes, BytesMut};

use crate::command::{Command, SerializeType};
use crate::header::{self, HeaderError};

/// Java's `NettyDecoder` default (`com.rocketmq.remoting.frameMaxLength`), counting the
/// 4-byte length prefix.
pub const FRAME_MAX_DEFAULT: usize = 16 * 1024 * 1024;

/// Bytes before the header: length prefix and header word.
pub const FRAME_PREFIX_LEN: usize = 8;

/// Largest header length the 24-bit field can express.
pub const HEADER_LEN_MAX: usize = 0x00FF_FFFF;

/// Why a byte stream is not a valid frame. Each of these breaks the stream: the peer closes
/// the connection, as Java does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The frame (length prefix included) is larger than the configured limit.
    TooLarge { frame_len: usize, max: usize },
    /// `total_len` cannot even hold the header word.
    LengthTooSmall { total_len: u32 },
    /// The header length exceeds what the frame holds.
    HeaderTooLong { header_len: usize, total_len: u32 },
    /// Serialization byte other than 0 (JSON) or 1 (ROCKETMQ).
    UnknownSerializeType(u8),
    /// The header bytes do not parse.
    BadHeader(HeaderError),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge { frame_len, max } => {
                write!(
                    f,
                    "frame of {frame_len} bytes exceeds the {max}-byte frame limit"
                )
            }
            FrameError::LengthTooSmall { total_len } => {
                write!(
                    f,
                    "frame length {total_len} cannot hold the 4-byte header word"
                )
            }
            FrameError::HeaderTooLong {
                header_len,
                total_len,
            } => write!(
                f,
                "bad header length: {header_len} header bytes in a frame of length {total_len}"
            ),
            FrameError::UnknownSerializeType(t) => {
                write!(
                    f,
                    "unknown header serialization type {t} (expected 0 JSON or 1 ROCKETMQ)"
                )
            }
            FrameError::BadHeader(e) => write!(f, "unparsable header: {e}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// The validated shape of a complete frame at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Whole frame on the wire: `4 + total_len`.
    pub frame_len: usize,
    pub serialize: SerializeType,
    pub header_len: usize,
}

impl FrameInfo {
    pub fn body_len(&self) -> usize {
        self.frame_len - FRAME_PREFIX_LEN - self.header_len
    }
}

fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// Checks the frame at the front of `buf` without allocating.
///
/// `Ok(None)` means more bytes are needed. Lengths are judged as soon as they are readable,
/// so an oversized or inconsistent frame is refused before its bytes arrive.
pub fn check(buf: &[u8], max_frame_len: usize) -> Result<Option<FrameInfo>, FrameError> {
    let Some(total_len) = be_u32(buf, 0) else {
        return Ok(None);
    };
    let frame_len = 4 + total_len as usize;
    if frame_len > max_frame_len {
        return Err(FrameError::TooLarge {
            frame_len,
            max: max_frame_len,
        });
    }
    if total_len < 4 {
        return Err(FrameError::LengthTooSmall { total_len });
    }
    let Some(word) = be_u32(buf, 4) else {
        return Ok(None);
    };
    let type_byte = (word >> 24) as u8;
    let serialize =
        SerializeType::from_byte(type_byte).ok_or(FrameError::UnknownSerializeType(type_byte))?;
    let header_len = (word & 0x00FF_FFFF) as usize;
    if header_len > total_len as usize - 4 {
        return Err(FrameError::HeaderTooLong {
            header_len,
            total_len,
        });
    }
    if buf.len() < frame_len {
        return Ok(None);
    }
    Ok(Some(FrameInfo {
        frame_len,
        serialize,
        header_len,
    }))
}

/// Decodes one frame from the front of `buf`, copying its body.
///
/// Returns the command and the number of bytes it used, or `Ok(None)` if `buf` holds only a
/// prefix of a frame.
pub fn decode(buf: &[u8], max_frame_len: usize) -> Result<Option<(Command, usize)>, FrameError> {
    let Some(info) = check(buf, max_frame_len)? else {
        return Ok(None);
    };
    let header_end = FRAME_PREFIX_LEN + info.header_len;
    let header_bytes = buf.get(FRAME_PREFIX_LEN..header_end).unwrap_or_default();
    let body = buf.get(header_end..info.frame_len).unwrap_or_default();
    let cmd = header::decode(info.serialize, header_bytes, Bytes::copy_from_slice(body))
        .map_err(FrameError::BadHeader)?;
    Ok(Some((cmd, info.frame_len)))
}

/// Decodes one frame from the front of `buf` and removes it; the body shares `buf`'s memory.
pub fn decode_from(
    buf: &mut BytesMut,
    max_frame_len: usize,
) -> Result<Option<Command>, FrameError> {
    let Some(info) = check(buf, max_frame_len)? else {
        return Ok(None);
    };
    let mut frame = buf.split_to(info.frame_len).freeze();
    let _prefix = frame.split_to(FRAME_PREFIX_LEN);
    let header_bytes = frame.split_to(info.header_len);
    let cmd =
        header::decode(info.serialize, &header_bytes, frame).map_err(FrameError::BadHeader)?;
    Ok(Some(cmd))
}

/// Appends the whole frame for `cmd` (header in `cmd.serialize`, then its body) to `dst`.
pub fn encode(cmd: &Command, dst: &mut BytesMut) {
    encode_head(cmd, cmd.body.len(), dst);
    dst.extend_from_slice(&cmd.body);
}

/// Appends the length prefix, header word and header for a frame whose body of `body_len`
/// bytes the caller sends itself (zero-copy pull: the body goes file → socket).
pub fn encode_head(cmd: &Command, body_len: usize, dst: &mut BytesMut) {
    let start = dst.len();
    dst.put_u32(0);
    dst.put_u32(0);
    header::encode(cmd, dst);
    let header_len = dst.len() - start - FRAME_PREFIX_LEN;
    write_prefix(dst, start, cmd.serialize, header_len, body_len);
}

/// Fills in the length prefix and header word of the frame that starts at `start` in `dst`
/// (eight bytes reserved there), whose header is `header_len` bytes.
pub(crate) fn write_prefix(
    dst: &mut BytesMut,
    start: usize,
    serialize: SerializeType,
    header_len: usize,
    body_len: usize,
) {
    assert!(
        header_len <= HEADER_LEN_MAX,
        "header of {header_len} bytes cannot be framed"
    );
    let total_len = 4 + header_len + body_len;
    let total_len = u32::try_from(total_len).expect("frame length fits the u32 length prefix");
    let word = (u32::from(serialize.as_byte()) << 24) | header_len as u32;
    let prefix = dst
        .get_mut(start..start + FRAME_PREFIX_LEN)
        .expect("prefix was just written");
    let (len_field, word_field) = prefix.split_at_mut(4);
    len_field.copy_from_slice(&total_len.to_be_bytes());
    word_field.copy_from_slice(&word.to_be_bytes());
}
