//! Messages: stored-message layout (spec §4.1), sysflags, properties, ids, batch bodies.
