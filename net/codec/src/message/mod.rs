//! Messages (spec §4): the stored-message record, sysflags, properties, ids, batch bodies.
//!
//! - [`record`]: the stored-message layout v1 (and v2 decode), encoder, decoder, the optional
//!   whole-record CRC property.
//! - [`sysflag`]: `MessageSysFlag` bits; [`properties`]: the property string and keys;
//!   [`crc`]: body CRC; [`id`]: offsetMsgId and UNIQ_KEY; [`batch`]: SEND_BATCH_MESSAGE bodies.

pub mod batch;
pub mod crc;
pub mod id;
pub mod properties;
pub mod record;
pub mod sysflag;

pub use batch::{BatchEntry, decode_batch};
pub use crc::body_crc;
pub use id::{UniqKeyGenerator, decode_offset_msg_id, offset_msg_id};
pub use record::{
    MessageError, MessageExt, RecordCrc, RecordFields, RecordView, decode, decode_all,
};

#[cfg(test)]
mod tests;
