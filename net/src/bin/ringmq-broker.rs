//! ringmq broker: not built yet. Refuses to start rather than pretend to serve.

fn main() {
    eprintln!(
        "ringmq-broker: the broker is not implemented yet in this build; only ringmq-namesrv runs"
    );
    std::process::exit(2);
}
