use clap::Parser;
use cosell_server::config::{Cli, Command};
use cosell_server::startup::Application;
use cosell_server::telemetry;

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
            app.print_banner();
            if let Err(e) = app.run_until(telemetry::shutdown_signal()).await {
                eprintln!("cosell: server error: {e}");
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
    }
}
