//! ringmq's network side: the remoting codec (re-exported), the namesrv and broker servers,
//! and a client.

pub use ringmq_codec as codec;

pub mod broker;
