//! `ringmq-bench`: see `ringmq-bench --help` and bench/README.md.

use std::process::ExitCode;

use ringmq_bench::cli::{self, Command, Scenario};
use ringmq_bench::report::{self, Report};
use ringmq_bench::{compare, run, suite, timers};

/// mimalloc instead of glibc malloc: every request and response allocates dozens of small
/// header strings, and glibc's malloc/free (with `malloc_consolidate`) were ~20 % of a
/// producer worker's CPU in `self-test` (perf). The generator shares the cores with the
/// broker it measures, so its CPU per message is taken from the broker.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The suite and the timer benchmark orchestrate several runs and have their own flags.
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("suite") => return done(suite::main(rest)),
        Some("timers") => return done(timers::main(rest)),
        _ => {}
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cmd = match cli::parse(&args, cores) {
        Ok(cmd) => cmd,
        Err(e) => return fail(&e.to_string()),
    };
    match cmd {
        Command::Help => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Command::Compare { a, b } => match (load(&a), load(&b)) {
            (Ok(a), Ok(b)) => {
                print!("{}", compare::compare(&a, &b));
                ExitCode::SUCCESS
            }
            (Err(e), _) | (_, Err(e)) => fail(&e),
        },
        Command::Run(p) => match run::execute((*p).clone()) {
            Ok(r) => finish(&p, &r),
            Err(e) => fail(&e),
        },
    }
}

fn load(path: &str) -> Result<Report, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{path} is not a ringmq-bench report: {e}"))
}

/// Prints the summary and writes the requested files.
fn finish(p: &cli::Params, r: &Report) -> ExitCode {
    print!("{}", report::render(r));
    if p.scenario == Scenario::SelfTest && p.rate.is_some() {
        // An open-loop self-test measures the generator's own latency at a rate, not how
        // fast it can go: it must not replace the stored ceiling.
        println!("open loop (--rate): not a ceiling, the stored ceiling is left as it is");
    } else if p.scenario == Scenario::SelfTest {
        match run::save_ceiling(p, r) {
            Ok(path) => println!(
                "generator ceiling: {:.0} msgs/s for `{}`, saved to {}",
                r.manifest.achieved_rate_msgs_per_s,
                report::ceiling_key(p, p.brokers),
                path.display()
            ),
            Err(e) => eprintln!("ringmq-bench: {e}"),
        }
    }
    if let Some(path) = &p.json {
        let json = match serde_json::to_vec_pretty(r) {
            Ok(j) => j,
            Err(e) => return fail(&format!("cannot encode the report: {e}")),
        };
        if let Err(e) = std::fs::write(path, json) {
            return fail(&format!("cannot write {path}: {e}"));
        }
        println!("report written to {path}");
    }
    if let Some(dir) = &p.hgrm
        && let Err(e) = write_hgrm(dir, r)
    {
        return fail(&e);
    }
    ExitCode::SUCCESS
}

fn write_hgrm(dir: &str, r: &Report) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {dir}: {e}"))?;
    for (name, text) in &r.hgrm {
        let path = std::path::Path::new(dir).join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("histogram written to {}", path.display());
    }
    Ok(())
}

fn done(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("ringmq-bench: {message}");
    ExitCode::FAILURE
}
