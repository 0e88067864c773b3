//! `switchyard keys …`: the admin API's key management from a terminal. It is a client of a
//! running gateway's `/admin/keys` (so replicas, the cache and the audit log behave exactly as
//! for any other admin call), not a second path into the database.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// Where the admin API is, and the key for it: shared by every command that calls it.
#[derive(Args)]
pub struct GatewayArgs {
    /// The gateway's base URL.
    #[arg(
        long,
        env = "SWITCHYARD_URL",
        default_value = "http://127.0.0.1:4000",
        global = true
    )]
    pub url: String,
    /// An admin key (one of auth.admin_keys).
    #[arg(
        long,
        env = "SWITCHYARD_ADMIN_KEY",
        global = true,
        hide_env_values = true
    )]
    pub admin_key: Option<String>,
}

impl GatewayArgs {
    /// The base URL without a trailing slash.
    pub fn base(&self) -> &str {
        self.url.trim_end_matches('/')
    }

    /// Sends an admin API request to this gateway (see [`send`]).
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
        timeout_secs: u64,
    ) -> Result<Value, String> {
        send(
            request,
            self.admin_key.as_deref(),
            self.base(),
            timeout_secs,
        )
        .await
    }
}

#[derive(Args)]
pub struct KeysArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key; it is printed once.
    Create(CreateArgs),
    /// List keys.
    List {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        team: Option<String>,
        /// Include revoked keys.
        #[arg(long)]
        all: bool,
    },
    /// Revoke a key by id: it stops working on every replica.
    Revoke { id: String },
    /// Issue a new key for the same owner and limits; the old one works for a grace period.
    Rotate {
        id: String,
        /// How long the old key keeps working, e.g. 1h, 0s.
        #[arg(long, default_value = "1h")]
        grace: String,
    },
}

#[derive(Args)]
struct CreateArgs {
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    team: Option<String>,
    /// Models or routes the key may call (comma-separated); default: all.
    #[arg(long, value_delimiter = ',')]
    models: Option<Vec<String>>,
    #[arg(long)]
    rpm: Option<u64>,
    #[arg(long)]
    tpm: Option<u64>,
    #[arg(long)]
    max_parallel: Option<u64>,
    /// A budget as USD/PERIOD, e.g. 50/month, 5/day, 100/total; repeatable.
    #[arg(long = "budget")]
    budgets: Vec<String>,
    /// Expire after this long, e.g. 30d.
    #[arg(long)]
    expires_in: Option<String>,
    #[arg(long = "tag")]
    tags: Vec<String>,
}

pub fn run(args: KeysArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(call(&args)) {
        Ok(body) => {
            print(&args.command, &body);
            ExitCode::SUCCESS
        }
        Err(message) => fail(&message),
    }
}

async fn call(args: &KeysArgs) -> Result<Value, String> {
    let base = args.gateway.base();
    let client = reqwest::Client::new();
    let request = match &args.command {
        KeysCommand::Create(c) => client
            .post(format!("{base}/admin/keys"))
            .json(&create_body(c)?),
        KeysCommand::List { user, team, all } => {
            let mut query = vec![("include_revoked", all.to_string())];
            query.extend(user.iter().map(|u| ("user_id", u.clone())));
            query.extend(team.iter().map(|t| ("team_id", t.clone())));
            let url = reqwest::Url::parse_with_params(&format!("{base}/admin/keys"), &query)
                .map_err(|e| format!("--url {base}: {e}"))?;
            client.get(url)
        }
        KeysCommand::Revoke { id } => client.post(format!("{base}/admin/keys/{id}/revoke")),
        KeysCommand::Rotate { id, grace } => client
            .post(format!("{base}/admin/keys/{id}/rotate"))
            .json(&json!({ "grace": grace })),
    };
    args.gateway.send(request, 30).await
}

/// Sends an admin API request with the admin key (if any) and returns its JSON body, or an
/// error a user can act on: the gateway unreachable, or its error message.
async fn send(
    request: reqwest::RequestBuilder,
    admin_key: Option<&str>,
    base: &str,
    timeout_secs: u64,
) -> Result<Value, String> {
    let request = match admin_key {
        Some(key) => request.bearer_auth(key),
        None => request,
    };
    let response = request
        .timeout(std::time::Duration::from_secs(timeout_secs))
        .send()
        .await
        .map_err(|e| {
            format!("cannot reach the gateway at {base}: {e} (set --url or SWITCHYARD_URL)")
        })?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("the gateway answered {status} with a body that is not JSON: {e}"))?;
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("(no message)");
        return Err(format!("the gateway answered {status}: {message}"));
    }
    Ok(body)
}

fn create_body(c: &CreateArgs) -> Result<Value, String> {
    let budgets = c
        .budgets
        .iter()
        .map(|b| {
            let (usd, period) = b.split_once('/').unwrap_or((b, "month"));
            let usd: f64 = usd
                .trim()
                .trim_start_matches('$')
                .parse()
                .map_err(|_| format!("--budget {b}: write USD/PERIOD, e.g. 50/month"))?;
            Ok(json!({ "usd": usd, "period": period.trim() }))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut limits = json!({ "budgets": budgets });
    for (name, value) in [
        ("rpm", c.rpm),
        ("tpm", c.tpm),
        ("max_parallel", c.max_parallel),
    ] {
        if let Some(v) = value {
            limits[name] = v.into();
        }
    }
    let mut body = json!({ "limits": limits, "tags": c.tags });
    let optional = [
        ("name", &c.name),
        ("user_id", &c.user),
        ("team_id", &c.team),
        ("expires_in", &c.expires_in),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            body[name] = v.clone().into();
        }
    }
    if let Some(models) = &c.models {
        body["models"] = models.clone().into();
    }
    Ok(body)
}

fn print(command: &KeysCommand, body: &Value) {
    match command {
        KeysCommand::Create(_) | KeysCommand::Rotate { .. } => {
            println!("{}", body["key"].as_str().unwrap_or(""));
            eprintln!(
                "id {}: store this key now, it is shown only once.",
                body["id"].as_str().unwrap_or("?")
            );
        }
        KeysCommand::List { .. } => {
            println!(
                "{:<22} {:<14} {:<20} {:<14} {:<14} STATUS",
                "ID", "PREFIX", "NAME", "USER", "TEAM"
            );
            for k in body["data"].as_array().into_iter().flatten() {
                let text = |f: &str| k[f].as_str().unwrap_or("-").to_owned();
                let status = if k["revoked_at_ms"].is_i64() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<22} {:<14} {:<20} {:<14} {:<14} {status}",
                    text("id"),
                    text("prefix"),
                    text("name"),
                    text("user_id"),
                    text("team_id")
                );
            }
        }
        KeysCommand::Revoke { id } => println!("revoked {id}"),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
