//! Test harness: start real ringmq processes on free ports and talk to them over TCP.
