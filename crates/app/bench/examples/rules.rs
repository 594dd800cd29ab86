//! Runs the rules benchmarks without the `rampart` binary:
//! `cargo run --release -p rampart-bench --example rules [-- latency] [-- --quick]`.

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let name = if args.iter().any(|a| a == "latency") {
        "rules-latency"
    } else {
        "rules"
    };
    rampart_bench::run(name, quick, false)
}
