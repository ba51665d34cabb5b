//! `ringmq-namesrv`: the RocketMQ-compatible name server.
//!
//! Reads `-c FILE` (Java properties) and `key=value` overrides, logs to stderr through
//! `tracing` (RUST_LOG, default `info`), serves until SIGTERM or SIGINT, then exits 0.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::process::ExitCode;
use std::task::Poll;

use ringmq_net::config::Config;
use ringmq_net::namesrv::{self, IGNORED_KEYS, KEYS, NamesrvConfig};

fn help() -> String {
    let mut text = String::from(
        "ringmq-namesrv: RocketMQ-compatible name server\n\n\
         Usage: ringmq-namesrv [-c namesrv.conf] [key=value ...]\n\n\
         -c FILE      read settings from a Java .properties file (key=value lines)\n\
         key=value    override a setting; applied after the file\n\
         -h, --help   print this help\n\nSettings:\n",
    );
    for (key, what) in KEYS {
        text.push_str(&format!("  {key:<34}{what}\n"));
    }
    text.push_str(
        "\nLogging goes to stderr; set RUST_LOG (e.g. RUST_LOG=debug) to change the level.\n",
    );
    text
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{}", help());
        return ExitCode::SUCCESS;
    }
    ringmq_net::init_logging();
    let config = match Config::from_args(args) {
        Ok(config) => config,
        Err(e) => return fail(&format!("{e} (see ringmq-namesrv --help)")),
    };
    let cfg = match NamesrvConfig::from_config(&config) {
        Ok(cfg) => cfg,
        Err(e) => return fail(&e.to_string()),
    };
    config.log_unused_keys(KEYS, IGNORED_KEYS);

    let runtime = match compio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            return fail(&format!(
                "cannot start the io_uring runtime: {e} (check kernel.io_uring_disabled and \
                 RLIMIT_MEMLOCK, see tuning/)"
            ));
        }
    };
    let outcome = runtime.block_on(async {
        // The signal future is polled first so SIGTERM/SIGINT are handled before the port
        // accepts anything: a supervisor that stops us right after we answer must get a clean
        // exit, not the default action (regression: the SIGTERM test failed under CPU load).
        let signal = pin!(shutdown_signal());
        let serve = pin!(namesrv::run(cfg));
        first(signal, serve).await
    });
    match outcome {
        Either::Right(Err(e)) => fail(&e),
        Either::Right(Ok(())) => ExitCode::SUCCESS,
        Either::Left(name) => {
            tracing::info!("{name} received, shutting down");
            ExitCode::SUCCESS
        }
    }
}

fn fail(message: &str) -> ExitCode {
    tracing::error!("{message}");
    eprintln!("ringmq-namesrv: {message}");
    ExitCode::FAILURE
}

/// Completes with the name of the first of SIGTERM and SIGINT to arrive.
async fn shutdown_signal() -> &'static str {
    let term = pin!(compio::signal::unix::signal(libc::SIGTERM));
    let int = pin!(compio::signal::unix::signal(libc::SIGINT));
    match first(term, int).await {
        Either::Left(Ok(())) => "SIGTERM",
        Either::Right(Ok(())) => "SIGINT",
        Either::Left(Err(e)) | Either::Right(Err(e)) => {
            tracing::error!("cannot listen for signals: {e}; stop with SIGKILL");
            std::future::pending().await
        }
    }
}

enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Polls both futures and returns the first output.
async fn first<A: Future, B: Future>(
    mut a: std::pin::Pin<&mut A>,
    mut b: std::pin::Pin<&mut B>,
) -> Either<A::Output, B::Output> {
    poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    })
    .await
}
