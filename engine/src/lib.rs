//! ringmq storage engine.
