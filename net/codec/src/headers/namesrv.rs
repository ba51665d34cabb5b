//! NameServer headers (spec §3.1).
