use clap::Parser;

/// The data plane's allocator also here: `dev` serves gateway traffic in this process.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = tollgate_control_plane::cli::Cli::parse();
    tollgate_control_plane::cli::run(cli)
}
