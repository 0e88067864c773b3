//! `switchyard init`: writes a starter `switchyard.yaml` that serves at once from the built-in
//! mock provider, with a commented-out section (provider, model, key variable) for each real
//! provider the user named, one route whose second target is the fallback of its first, and
//! request records in a local SQLite file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The providers `init` can write a section for.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StarterProvider {
    Openai,
    Anthropic,
    Azure,
    Gemini,
    Bedrock,
    Ollama,
    Vllm,
    Groq,
    Mistral,
    Deepseek,
    Openrouter,
    Together,
    Xai,
}

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    switchyard init                                   # mock provider only: serves at once\n  \
    switchyard init --provider openai --provider anthropic\n  \
    switchyard init -p azure -p ollama -o gateway.yaml\n  \
    switchyard init -o -                              # print to stdout")]
pub struct InitArgs {
    /// A provider to write a commented-out section for (repeat for several). Its models are
    /// off until you uncomment them and set its key variable.
    #[arg(short, long = "provider", value_name = "PROVIDER")]
    providers: Vec<StarterProvider>,
    /// Where to write the config; `-` prints it.
    #[arg(short, long, default_value = "switchyard.yaml")]
    output: PathBuf,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    force: bool,
}

/// What one provider's commented section says: its config spelling (also the provider's name
/// in the file), the variable holding its key, the kind-specific lines, and one model it serves.
struct Section {
    name: &'static str,
    title: &'static str,
    key_var: Option<&'static str>,
    extra: &'static [&'static str],
    model: &'static str,
    upstream: &'static str,
}

const fn section(
    name: &'static str,
    title: &'static str,
    key_var: Option<&'static str>,
    extra: &'static [&'static str],
    (model, upstream): (&'static str, &'static str),
) -> Section {
    Section {
        name,
        title,
        key_var,
        extra,
        model,
        upstream,
    }
}

const SECTIONS: &[Section] = &[
    section(
        "openai",
        "OpenAI",
        Some("OPENAI_API_KEY"),
        &[],
        ("gpt-4o-mini", "gpt-4o-mini"),
    ),
    section(
        "anthropic",
        "Anthropic",
        Some("ANTHROPIC_API_KEY"),
        &[],
        ("claude-sonnet", "claude-sonnet-4-5"),
    ),
    section(
        "azure",
        "Azure OpenAI (the model's upstream is your deployment name)",
        Some("AZURE_OPENAI_API_KEY"),
        &[
            "base_url: \"https://${AZURE_OPENAI_RESOURCE}.openai.azure.com\"",
            "api_version: \"2024-10-21\"",
        ],
        ("gpt-4o-azure", "my-gpt4o-deployment"),
    ),
    section(
        "gemini",
        "Google Gemini API",
        Some("GEMINI_API_KEY"),
        &[],
        ("gemini-flash", "gemini-2.5-flash"),
    ),
    section(
        "bedrock",
        "Amazon Bedrock (SigV4 credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
        None,
        &["aws: { region: \"${AWS_REGION:-us-east-1}\" }"],
        (
            "claude-bedrock",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
        ),
    ),
    section(
        "ollama",
        "Ollama on this machine (no key)",
        None,
        &["base_url: \"http://127.0.0.1:11434/v1\""],
        ("llama3", "llama3.1:8b"),
    ),
    section(
        "vllm",
        "vLLM (no key unless your server sets one)",
        None,
        &["base_url: \"http://127.0.0.1:8000/v1\""],
        ("qwen", "Qwen/Qwen2.5-7B-Instruct"),
    ),
    section(
        "groq",
        "Groq",
        Some("GROQ_API_KEY"),
        &[],
        ("llama-70b", "llama-3.3-70b-versatile"),
    ),
    section(
        "mistral",
        "Mistral",
        Some("MISTRAL_API_KEY"),
        &[],
        ("mistral-small", "mistral-small-latest"),
    ),
    section(
        "deepseek",
        "DeepSeek",
        Some("DEEPSEEK_API_KEY"),
        &[],
        ("deepseek-chat", "deepseek-chat"),
    ),
    section(
        "openrouter",
        "OpenRouter",
        Some("OPENROUTER_API_KEY"),
        &[],
        ("openrouter-gpt-4o", "openai/gpt-4o"),
    ),
    section(
        "together",
        "Together AI",
        Some("TOGETHER_API_KEY"),
        &[],
        ("llama-together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
    ),
    section("xai", "xAI", Some("XAI_API_KEY"), &[], ("grok", "grok-3")),
];

impl StarterProvider {
    /// The section named as clap spells the provider (`openai`), which is also its kind.
    fn section(self) -> Option<&'static Section> {
        let value = clap::ValueEnum::to_possible_value(&self)?;
        SECTIONS.iter().find(|s| s.name == value.get_name())
    }
}

pub fn run(args: InitArgs) -> ExitCode {
    let file = match args.output.to_str() {
        Some("-") | None => "switchyard.yaml",
        Some(path) => path,
    };
    let text = starter_config(&args.providers, file);
    if args.output == Path::new("-") {
        print!("{text}");
        return ExitCode::SUCCESS;
    }
    if args.output.exists() && !args.force {
        eprintln!(
            "error: {} already exists; pass --force to overwrite it, or -o to write elsewhere",
            args.output.display()
        );
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::write(&args.output, text) {
        eprintln!("error: cannot write {}: {e}", args.output.display());
        return ExitCode::FAILURE;
    }
    let file = args.output.display();
    println!("wrote {file}");
    println!("  check it:  switchyard check-config {file}");
    println!("  run it:    switchyard serve --config {file}");
    println!(
        "  try it:    curl -s http://127.0.0.1:4000/v1/chat/completions -H 'Content-Type: application/json' \\\n             -d '{{\"model\": \"default\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}]}}'"
    );
    ExitCode::SUCCESS
}

const HEADER: &str = "\
# Switchyard config, written by `switchyard init`. It serves at once: the models below answer
# from the built-in mock provider, with no network and no API keys.
#
#   switchyard check-config {FILE}     # validate, and print what it resolves to
#   switchyard serve --config {FILE}   # listen on 127.0.0.1:4000
#
# Every key is in docs/configuration.md. For completion and checking in your editor, write the
# schema with `switchyard config-schema > switchyard.schema.json` and make this the first line:
#   # yaml-language-server: $schema=./switchyard.schema.json

server:
  listen: \"127.0.0.1:4000\"

providers:
  mock:
    kind: mock
    mock:
      text: \"Hello from Switchyard! This answer comes from the built-in mock provider.\"
      chunk_words: 2
  mock-echo:
    kind: mock
    mock: { echo: true }
";

/// The whole starter file: the mock providers, then each chosen provider's section (commented
/// out, so the file loads before any key is set), the models, the route and the records.
/// `file` is where it goes, for the commands its first lines suggest.
pub fn starter_config(chosen: &[StarterProvider], file: &str) -> String {
    let mut sections: Vec<&Section> = Vec::new();
    for s in chosen.iter().filter_map(|p| p.section()) {
        if !sections.iter().any(|have| have.name == s.name) {
            sections.push(s);
        }
    }
    let mut out = HEADER.replace("{FILE}", file);
    for s in &sections {
        provider_block(&mut out, s);
    }
    out.push_str(
        "\nmodels:\n  mock-chat:\n    provider: mock\n  mock-backup:\n    provider: mock-echo\n",
    );
    for s in &sections {
        let _ = write!(
            out,
            "  # {}:\n  #   provider: {}\n  #   upstream: \"{}\"\n",
            s.model, s.name, s.upstream
        );
    }
    out.push_str(
        "\nroutes:\n  # Clients ask for `default`. Targets are tried in order: when the first fails (5xx,\n  \
         # timeout, rate limit, open breaker) the next one serves the request.\n  \
         default:\n    targets: [mock-chat, mock-backup]\n",
    );
    if let Some(first) = sections.first() {
        let _ = writeln!(
            out,
            "    # With {} enabled above, serve from it and keep the mock as the fallback:\n    # targets: [{}, mock-chat]",
            first.name, first.model
        );
    }
    out.push_str(
        "\n# Keys, users, teams, the audit log and a record of every request (tokens, cost, latency).\n\
         database:\n  url: \"sqlite://switchyard.db\"\n\n\
         records:\n  store: true\n  retention_days: 30   # 0 keeps records forever\n",
    );
    out
}

fn provider_block(out: &mut String, s: &Section) {
    let _ = write!(out, "  # {}", s.title);
    match s.key_var {
        Some(var) => {
            let _ = writeln!(out, ": export {var}, then uncomment this and its model.");
        }
        None => out.push_str(": uncomment this and its model.\n"),
    }
    let _ = writeln!(out, "  # {}:\n  #   kind: {}", s.name, s.name);
    if let Some(var) = s.key_var {
        let _ = writeln!(out, "  #   api_key: \"${{{var}}}\"");
    }
    for line in s.extra {
        let _ = writeln!(out, "  #   {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;
    use switchyard_core::Config;

    fn load(text: &str) -> Config {
        Config::from_yaml(text, &|name| Some(format!("test-value-of-{name}")))
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn every_provider_has_its_section() {
        for p in StarterProvider::value_variants() {
            assert!(p.section().is_some(), "{:?}", p.to_possible_value());
        }
    }

    #[test]
    fn the_starter_loads_with_and_without_providers() {
        let c = load(&starter_config(&[], "switchyard.yaml"));
        assert_eq!(c.routes["default"].targets.len(), 2);
        let all = StarterProvider::value_variants();
        let text = starter_config(all, "switchyard.yaml");
        let c = load(&text);
        assert_eq!(
            c.providers.len(),
            2,
            "the chosen providers stay commented out"
        );
        assert!(text.contains("${OPENAI_API_KEY}") && text.contains("${ANTHROPIC_API_KEY}"));
    }

    /// Uncommenting every chosen provider and model (and their route line) gives a valid
    /// config: the commented sections are not just prose.
    #[test]
    fn uncommented_sections_are_valid() {
        let text = starter_config(StarterProvider::value_variants(), "switchyard.yaml");
        let uncommented: String = text
            .lines()
            .map(|line| {
                let body = line.trim_start();
                let indent = &line[..line.len() - body.len()];
                let is_name =
                    body.ends_with(':') && body.get(2..).is_some_and(|rest| !rest.contains(' '));
                let is_yaml = body.starts_with("# ")
                    && (body.starts_with("#   ") || body.starts_with("# targets:") || is_name);
                if indent.len() >= 2 && is_yaml {
                    format!("{indent}{}\n", &body[2..])
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        let c = load(&uncommented.replace("targets: [mock-chat, mock-backup]\n", ""));
        assert!(c.providers.contains_key("bedrock") && c.models.contains_key("gpt-4o-mini"));
        assert_eq!(c.routes["default"].targets[0].model(), "gpt-4o-mini");
    }
}
