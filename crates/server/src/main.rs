//! The `switchyard` command line: `serve` runs the gateway, `check-config` validates a config
//! file and prints what it resolves to with secrets masked, `init` writes a starter config,
//! `config-schema` prints the config's JSON Schema and `completions` a shell's completions.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli_report;
mod import;
mod init;

// glibc's malloc was a tenth of the gateway's CPU under load (profiled with perf): every request
// allocates and frees its bodies, headers and JSON values across two worker threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use switchyard_core::Config;

/// What the user reads first in `switchyard --help`: what the gateway is for them.
const ABOUT: &str = "Switchyard is an OpenAI- and Anthropic-compatible gateway in front of every \
model provider: point your SDKs and tools at it, and it routes, retries and falls back across \
providers, enforces keys, limits and budgets, applies guardrails and records every call.";

const GETTING_STARTED: &str = "Getting started:
  switchyard init                       # write ./switchyard.yaml (mock provider: no keys needed)
  switchyard serve                      # serve it on http://127.0.0.1:4000
  curl -s http://127.0.0.1:4000/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{\"model\": \"default\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}]}'

Configuration reference: docs/configuration.md";

#[derive(Parser)]
#[command(name = "switchyard", version, about = ABOUT, after_help = GETTING_STARTED)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    #[command(after_help = "Examples:\n  \
        switchyard serve                                   # ./switchyard.yaml, or no models\n  \
        switchyard serve --config prod.yaml --listen 0.0.0.0:8080\n  \
        SWITCHYARD_LOG=debug switchyard serve --log-format json")]
    Serve {
        /// The YAML config file. Without one, ./switchyard.yaml is used if it exists.
        #[arg(short, long, env = "SWITCHYARD_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on, overriding server.listen (default 127.0.0.1:4000).
        #[arg(short, long, env = "SWITCHYARD_LISTEN")]
        listen: Option<SocketAddr>,
        /// Do not watch the config file for changes (SIGHUP still reloads it).
        #[arg(long, env = "SWITCHYARD_NO_WATCH")]
        no_watch: bool,
        /// Log format: "text" for people, "json" for log collectors.
        #[arg(long, default_value = "text", env = "SWITCHYARD_LOG_FORMAT")]
        log_format: LogFormat,
    },
    /// Validate a config file: every problem with its key path, or what it resolves to.
    ///
    /// A valid file's providers, models and routes are printed with secrets masked. An invalid
    /// one exits non-zero and lists every problem found, each with the key at fault and a fix.
    #[command(after_help = "Example:\n  switchyard check-config switchyard.yaml")]
    CheckConfig {
        /// The YAML config file.
        file: PathBuf,
    },
    /// Write a starter switchyard.yaml that serves at once.
    ///
    /// Its models answer from the built-in mock provider (no keys, no network); each provider
    /// named with --provider gets a commented-out section to uncomment once its key is set.
    Init(init::InitArgs),
    /// Print the JSON Schema of the config file, for editors and CI checks.
    #[command(
        after_help = "Example (then make `# yaml-language-server: $schema=./switchyard.schema.json`\n\
        the first line of switchyard.yaml for completion and checking in your editor):\n  \
        switchyard config-schema > switchyard.schema.json"
    )]
    ConfigSchema,
    /// Print shell completions for bash, zsh, fish, elvish or PowerShell.
    #[command(after_help = "Examples:\n  \
        switchyard completions bash > ~/.local/share/bash-completion/completions/switchyard\n  \
        switchyard completions zsh > \"${fpath[1]}/_switchyard\"\n  \
        switchyard completions fish > ~/.config/fish/completions/switchyard.fish")]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Manage virtual keys through a running gateway's admin API.
    #[command(after_help = "Examples:\n  \
        export SWITCHYARD_ADMIN_KEY=...        # one of auth.admin_keys\n  \
        switchyard keys create --name ci --team platform --models default --rpm 60\n  \
        switchyard keys list\n  \
        switchyard keys revoke KEY_ID")]
    Keys(Box<switchyard_server::cli::KeysArgs>),
    /// Usage, latency and error reports from a running gateway's admin API.
    #[command(after_help = "Examples:\n  \
        switchyard report usage --group-by team,model --from 2026-01-01\n  \
        switchyard report usage --group-by key --limit 10\n  \
        switchyard report latency --json")]
    Report(Box<cli_report::ReportArgs>),
    /// Convert a LiteLLM or Portkey config into a Switchyard config.
    ///
    /// The output is commented YAML (stdout, or -o FILE); every setting that does not carry
    /// over is listed on stderr with the reason. docs/import.md has the mapping.
    #[command(after_help = "Examples:\n  \
        switchyard import litellm config.yaml -o switchyard.yaml\n  \
        switchyard import portkey portkey-config.json > switchyard.yaml\n  \
        switchyard check-config switchyard.yaml")]
    Import(import::ImportArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => check_config(&file),
        Command::Init(args) => init::run(args),
        Command::ConfigSchema => print_config_schema(),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "switchyard", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Keys(args) => switchyard_server::cli::run(*args),
        Command::Report(args) => cli_report::run(*args),
        Command::Import(args) => import::run(args),
        Command::Serve {
            config,
            listen,
            no_watch,
            log_format,
        } => {
            init_logging(log_format);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve(config, listen, !no_watch)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn print_config_schema() -> ExitCode {
    match serde_json::to_string_pretty(&Config::json_schema()) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot print the schema: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    // Building the providers checks what only they know (credentials files, regions).
    let loaded = Config::load(file).map_err(|e| e.to_string()).and_then(|c| {
        switchyard_core::provider::build_all(&c)?;
        Ok(c)
    });
    match loaded {
        Ok(config) => {
            let masked = config.masked();
            println!("{}: valid", file.display());
            match serde_json::to_string_pretty(&masked) {
                Ok(text) => println!("{text}"),
                Err(e) => eprintln!("cannot print the config: {e}"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: invalid: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    config_path: Option<PathBuf>,
    listen: Option<SocketAddr>,
    watch: bool,
) -> Result<(), String> {
    let started = std::time::Instant::now();
    let path = config_path.or_else(|| {
        let default = PathBuf::from("switchyard.yaml");
        default.exists().then_some(default)
    });
    let mut config = match &path {
        Some(p) => Config::load(p).map_err(|e| format!("{}: {e}", p.display()))?,
        None => {
            tracing::warn!("no config file given and no ./switchyard.yaml: serving no models");
            Config::default()
        }
    };
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    let addr = config.server.listen;
    let models = config.models.len();
    let routes = config.routes.len();
    let built = switchyard_server::build(config).await?;
    if let Some(p) = &path {
        switchyard_server::reload::on_sighup(p.clone(), built.state.clone());
    }
    // Kept alive for as long as the server runs.
    let _watcher = match &path {
        Some(p) if watch => {
            match switchyard_server::reload::watch(p.clone(), built.state.clone()) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::warn!("hot reload is off: {e}");
                    None
                }
            }
        }
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e} (set server.listen or --listen)"))?;
    tracing::info!(
        %addr,
        models,
        routes,
        startup_ms = started.elapsed().as_millis() as u64,
        "switchyard listening"
    );
    switchyard_server::serve(listener, built, shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("switchyard stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("SWITCHYARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
