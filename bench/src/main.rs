//! ringmq-bench: not built yet.

fn main() {
    eprintln!("ringmq-bench: no scenarios are implemented yet in this build");
    std::process::exit(2);
}
