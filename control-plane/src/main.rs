use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tollgate_control_plane::cli::Cli::parse();
    tollgate_control_plane::cli::run(cli)
}
