use clap::Parser;
use cosell_server::config::{Cli, Command};
use cosell_server::startup::Application;
use cosell_server::telemetry;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            // Configuration problems stop start-up with one line naming the setting.
            let settings = match args.into_settings() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("cosell: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            telemetry::init(settings.log_format);
            let app = match Application::build(settings).await {
                Ok(app) => app,
                Err(e) => {
                    tracing::error!(error = %e, "start-up failed");
                    eprintln!("cosell: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            app.print_banner().await;
            if let Err(e) = app.run_until(telemetry::shutdown_signal()).await {
                eprintln!("cosell: server error: {e}");
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
        Command::Sandbox(args) => {
            telemetry::init(cosell_server::config::LogFormat::Pretty);
            let sandbox = match cosell_sandbox::Sandbox::start(args.addr).await {
                Ok(sandbox) => sandbox,
                Err(e) => {
                    eprintln!(
                        "cosell: COSELL_SANDBOX_ADDR (--addr): cannot listen on {}: {e}",
                        args.addr
                    );
                    return std::process::ExitCode::FAILURE;
                }
            };
            println!("sandbox emulators: {} (HTTPS)", sandbox.base_url());
            println!(
                "control API: {}/_control/… (plain HTTP or HTTPS); their TLS CA: {}/_control/tls/ca",
                sandbox.control_url(),
                sandbox.control_url()
            );
            println!(
                "use them with: cosell serve --sandbox-url {} --database-url … --secret-key …",
                sandbox.base_url()
            );
            telemetry::shutdown_signal().await;
            sandbox.shutdown();
            std::process::ExitCode::SUCCESS
        }
    }
}
