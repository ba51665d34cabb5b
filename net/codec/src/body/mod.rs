//! JSON bodies (spec §5): standard JSON out, Java's quirks accepted in.
