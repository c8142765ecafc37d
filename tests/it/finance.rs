//! The finance ledger through the real binary: statement imports (dry run, import, re-import,
//! a rejected file), manual entries, rates, the monthly report, the forecast and the stored
//! backtest from the CLI; entries, imports and reports through the daemon's API.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::support::{Daemon, free_port, run_cli, write_config, write_team_config};

const MAPPING: &str = r#"
account = "operating"
date_format = "%d.%m.%Y"
delimiter = ";"
decimal_separator = ","
thousands_separator = "."
skip_lines = 2
currency = "EUR"
columns = { date = "Datum", amount = "Betrag", description = "Text", counterparty = "Partner" }

[[rules]]
counterparty = "ton pool"
stream = "validators"

[[rules]]
counterparty = "hetzner"
category = "infrastructure"
subcategory = "servers"
"#;

/// 200 days to 2026-11-20 of validator payouts (a weekly pattern) and a Hetzner bill on the
/// first of each month, in the German bank dialect with a two-line preamble and a BOM.
fn statement() -> String {
    let mut text = String::from(
        "\u{feff}Umsätze Girokonto;;;\nKonto DE00 1234;;;\nDatum;Partner;Text;Betrag\n",
    );
    let mut date = chrono::NaiveDate::from_ymd_opt(2026, 5, 5).unwrap();
    let mut index = 0;
    while date <= chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap() {
        let payout = 1_000 + [120, 80, 40, 0, -40, -80, -120][index % 7] + (index % 5) as i64 * 10;
        let amount = if payout >= 1000 {
            format!("1.{:03},50", payout - 1000)
        } else {
            format!("{payout},50")
        };
        writeln!(
            text,
            "{};TON Pool;Auszahlung;{amount}",
            date.format("%d.%m.%Y")
        )
        .unwrap();
        if date.format("%d").to_string() == "01" {
            writeln!(
                text,
                "{};Hetzner Online GmbH;Rechnung;-3.200,00",
                date.format("%d.%m.%Y")
            )
            .unwrap();
        }
        date = date.succ_opt().unwrap();
        index += 1;
    }
    text
}

fn setup() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), free_port(), None);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[finance]\nreporting_currency = \"USD\"\nopening_balance = \"50000\"\nopening_date = \"2026-05-01\"\nrunway_floor_months = 3\n",
    );
    std::fs::write(&config, text).unwrap();
    std::fs::write(dir.path().join("mapping.toml"), MAPPING).unwrap();
    std::fs::write(dir.path().join("statement.csv"), statement()).unwrap();
    // EUR at 1.10 USD to the end of July, 1.20 from August.
    let mut rates = String::from("date,base,quote,rate\n");
    let mut date = chrono::NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
    while date <= chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap() {
        let rate = if date.format("%m").to_string().as_str() < "08" {
            "1.10"
        } else {
            "1.20"
        };
        writeln!(rates, "{date},EUR,USD,{rate}").unwrap();
        date = date.succ_opt().unwrap();
    }
    std::fs::write(dir.path().join("rates.csv"), rates).unwrap();
    (dir, config.display().to_string())
}

fn cli(dir: &Path, config: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["--config", config, "finance"];
    all.extend_from_slice(args);
    run_cli(dir, &all)
}

#[test]
fn import_report_forecast_and_backtest_from_the_cli() {
    let (dir, config) = setup();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let (statement_file, mapping) = (path("statement.csv"), path("mapping.toml"));

    let (code, stdout, stderr) = cli(
        dir.path(),
        &config,
        &[
            "import",
            &statement_file,
            "--mapping",
            &mapping,
            "--dry-run",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("dry run, nothing stored:"), "{stdout}");
    assert!(stdout.contains("stream:validators: 200"), "{stdout}");
    assert!(stdout.contains("category:infrastructure: 6"), "{stdout}");
    let (_, stdout, _) = cli(dir.path(), &config, &["entries", "--json"]);
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&stdout)
            .unwrap()
            .len(),
        0
    );

    let (code, stdout, stderr) = cli(
        dir.path(),
        &config,
        &["import", &statement_file, "--mapping", &mapping, "--json"],
    );
    assert_eq!(code, 0, "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["new_entries"], 206);
    let (_, stdout, _) = cli(
        dir.path(),
        &config,
        &["import", &statement_file, "--mapping", &mapping, "--json"],
    );
    let again: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (again["new_entries"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(206))
    );

    // A file with bad rows: rejected whole, exit 2, every bad line named.
    let bad = statement().replace(
        "01.06.2026;TON Pool;Auszahlung",
        "2026-06-01;TON Pool;Auszahlung",
    ) + "21.11.2026;TON Pool;Auszahlung;viel\n";
    std::fs::write(dir.path().join("bad.csv"), bad).unwrap();
    let (code, _, stderr) = cli(
        dir.path(),
        &config,
        &["import", &path("bad.csv"), "--mapping", &mapping],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("2 bad row(s), nothing imported"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 31: date \"2026-06-01\" does not match"),
        "{stderr}"
    );
    assert!(stderr.contains("\"viel\" is not an amount"), "{stderr}");
    let (_, stdout, _) = cli(dir.path(), &config, &["entries", "--json"]);
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&stdout)
            .unwrap()
            .len(),
        206
    );

    // A manual entry, checked against the configured categories.
    let (code, _, stderr) = cli(
        dir.path(),
        &config,
        &[
            "add",
            "--amount",
            "-500",
            "--currency",
            "USD",
            "--category",
            "catering",
            "--date",
            "2026-11-10",
        ],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown category \"catering\""), "{stderr}");
    let (code, stdout, stderr) = cli(
        dir.path(),
        &config,
        &[
            "add",
            "--amount",
            "-500",
            "--currency",
            "USD",
            "--category",
            "legal_and_compliance",
            "--date",
            "2026-11-10",
            "--counterparty",
            "Notary",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("added to the ledger"), "{stdout}");

    // Without EUR rates nothing EUR is valued, and the report says so.
    let (code, stdout, _) = cli(
        dir.path(),
        &config,
        &["report", "--from", "2026-06", "--to", "2026-10"],
    );
    assert_eq!(code, 0);
    assert!(stdout.contains("warning: 206 entries left out"), "{stdout}");
    let (code, stdout, stderr) = cli(
        dir.path(),
        &config,
        &["rates", "import", &path("rates.csv")],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("204 rates stored"), "{stdout}");
    let (code, stdout, stderr) = cli(
        dir.path(),
        &config,
        &[
            "report", "--from", "2026-06", "--to", "2026-10", "--format", "csv",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "line (USD),2026-06,2026-07,2026-08,2026-09,2026-10,MoM,YoY"
    );
    // Hetzner's 3,200 EUR a month at each day's rate: 1.10 to July, 1.20 from August.
    let infrastructure = lines
        .iter()
        .find(|line| line.starts_with("expense: infrastructure"))
        .unwrap();
    assert_eq!(
        *infrastructure,
        "expense: infrastructure,3520,3520,3840,3840,3840,-,-"
    );

    let (code, stdout, stderr) = cli(
        dir.path(),
        &config,
        &["forecast", "--horizon", "60", "--json"],
    );
    assert_eq!(code, 0, "{stderr}");
    let outlook: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(outlook["horizon_days"], 60);
    let names: Vec<&str> = outlook["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|series| series["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"revenue:validators") && names.contains(&"balance"),
        "{names:?}"
    );

    let (code, stdout, stderr) = cli(
        dir.path(),
        &config,
        &["backtest", "--horizon", "14", "--origins", "2"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("revenue:validators"), "{stdout}");
    assert!(stdout.contains("stored; 1 run(s) kept"), "{stdout}");

    // Every change is in the audit log.
    let (_, stdout, _) = run_cli(
        dir.path(),
        &[
            "--config",
            &config,
            "audit",
            "search",
            "--kind",
            "finance.imported",
        ],
    );
    assert!(stdout.contains("finance.imported"), "{stdout}");
    let (_, stdout, _) = run_cli(
        dir.path(),
        &[
            "--config",
            &config,
            "audit",
            "search",
            "--kind",
            "finance.backtest",
        ],
    );
    assert!(stdout.contains("finance.backtest"), "{stdout}");
}

const ALICE: &str = "cc_test_token_alice_finance";
const CAROL: &str = "cc_test_token_carol_finance";

#[test]
fn entries_import_and_report_through_the_api() {
    tools::http::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_team_config(
        dir.path(),
        port,
        ALICE,
        CAROL,
        "\n[finance]\nreporting_currency = \"USD\"\n",
    );
    let mut daemon = Daemon::spawn(dir.path(), &["run"]);
    daemon.wait_for("ready", Duration::from_secs(60));
    let url = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let post = |path: &str, body: serde_json::Value| {
            client
                .post(format!("{url}{path}"))
                .bearer_auth(ALICE)
                .json(&body)
                .send()
        };
        let anonymous = client
            .post(format!("{url}/v1/finance/entries"))
            .json(&serde_json::json!({ "entries": [] }))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);

        let bad = post(
            "/v1/finance/entries",
            serde_json::json!({ "entries": [
                { "date": "2026-11-02", "amount": "2500", "currency": "USD", "stream": "cocoon" },
                { "date": "2026-11-03", "amount": "12,5", "currency": "USD", "stream": "lottery" }
            ]}),
        )
        .await
        .unwrap();
        assert_eq!(bad.status(), 422);
        let error = bad.json::<serde_json::Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(error.contains("nothing stored"), "{error}");
        assert!(error.contains("entries[1]: amount \"12,5\" is not a decimal number"), "{error}");
        assert!(error.contains("entries[1]: unknown stream \"lottery\""), "{error}");

        let body = serde_json::json!({ "entries": [
            { "date": "2026-10-02", "amount": "2000", "currency": "USD", "stream": "cocoon", "id": "inv-1" },
            { "date": "2026-11-02", "amount": 2500, "currency": "USD", "stream": "cocoon", "id": "inv-2" },
            { "date": "2026-11-05", "amount": "-700.25", "currency": "USD", "category": "marketing", "subcategory": "ads" }
        ]});
        let added: serde_json::Value = post("/v1/finance/entries", body.clone()).await.unwrap().json().await.unwrap();
        assert_eq!(added["inserted"], 3, "{added}");
        let again: serde_json::Value = post("/v1/finance/entries", body).await.unwrap().json().await.unwrap();
        assert_eq!((again["inserted"].as_u64(), again["duplicates"].as_array().map(Vec::len)), (Some(0), Some(3)));

        let imported: serde_json::Value = post(
            "/v1/finance/import",
            serde_json::json!({
                "file": "card.csv",
                "csv": "Date,Description,Amount\n2026-11-07,AWS,-120.00\n",
                "mapping": {
                    "account": "card",
                    "date_format": "%Y-%m-%d",
                    "currency": "USD",
                    "columns": { "date": "Date", "amount": "Amount", "description": "Description" },
                    "rules": [{ "description": "aws", "category": "infrastructure", "subcategory": "cloud" }]
                }
            }),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(imported["new_entries"], 1, "{imported}");

        let report: serde_json::Value = client
            .get(format!("{url}/v1/finance/report?from=2026-10&to=2026-11"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let november = &report["months"][1];
        assert_eq!(november["month"], "2026-11");
        assert_eq!(november["revenue"]["cocoon"], "2500");
        assert_eq!(november["expenses"]["infrastructure"], "120.00");
        assert_eq!(november["revenue_change"]["cocoon"]["mom_pct"], 25.0);
        let bad_month = client
            .get(format!("{url}/v1/finance/report?from=2026-13"))
            .send()
            .await
            .unwrap();
        assert_eq!(bad_month.status(), 422);
    });
    daemon.signal(libc::SIGTERM);
    daemon.wait_exit(Duration::from_secs(30));
}

const FIONA_CFO: &str = "cc_test_token_fiona_cfo";
const ERIN_CEO: &str = "cc_test_token_erin_ceo";

#[test]
fn expenses_are_routed_by_policy_approved_and_booked_with_the_approval_id() {
    use sha2::Digest as _;
    tools::http::install_crypto_provider();
    let hash = |token: &str| hex::encode(sha2::Sha256::digest(token.as_bytes()));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!(
        "\n[[access.users]]\nname = \"fiona\"\nroles = [\"cfo\"]\ntoken_sha256 = \"{}\"\n\n[[access.users]]\nname = \"erin\"\nroles = [\"ceo\"]\ntoken_sha256 = \"{}\"\n\n[finance]\nreporting_currency = \"USD\"\n",
        hash(FIONA_CFO),
        hash(ERIN_CEO)
    );
    write_team_config(dir.path(), port, ALICE, CAROL, &extra);
    let mut daemon = Daemon::spawn(dir.path(), &["run"]);
    daemon.wait_for("ready", Duration::from_secs(60));
    let url = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let expense = |body: serde_json::Value| {
            client
                .post(format!("{url}/v1/finance/expenses"))
                .bearer_auth(ALICE)
                .json(&body)
                .send()
        };
        let approve = |id: String, token: &'static str| {
            client
                .post(format!("{url}/v1/proposals/{id}/approve"))
                .bearer_auth(token)
                .send()
        };
        let booked = || async {
            client
                .get(format!("{url}/v1/finance/entries"))
                .send()
                .await
                .unwrap()
                .json::<Vec<serde_json::Value>>()
                .await
                .unwrap()
        };

        // A small infrastructure bill books on its own.
        let small: serde_json::Value = expense(serde_json::json!({
            "amount": "120.00", "currency": "USD", "category": "infrastructure",
            "subcategory": "servers", "counterparty": "Hetzner", "date": "2026-11-20"
        }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(small["state"], "executed", "{small}");
        assert_eq!(small["proposal"]["operation"]["amount_cents"], 12000);
        let entries = booked().await;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["amount"], "-120.00");
        assert_eq!(entries[0]["source"]["type"], "approval");
        assert_eq!(entries[0]["source"]["approval_id"], small["proposal"]["id"]);

        // Marketing for 300 waits for the CFO or the CEO; an operator cannot approve it.
        let ads: serde_json::Value = expense(serde_json::json!({
            "amount": "300", "currency": "USD", "category": "marketing",
            "counterparty": "Ad network", "rationale": "November campaign"
        }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(ads["state"], "pending", "{ads}");
        let id = ads["proposal"]["id"].as_str().unwrap().to_owned();
        let refused = approve(id.clone(), CAROL).await.unwrap();
        assert_eq!(refused.status(), 403);
        assert_eq!(booked().await.len(), 1);
        let approved: serde_json::Value = approve(id.clone(), FIONA_CFO).await.unwrap().json().await.unwrap();
        assert_eq!(approved["state"], "executed", "{approved}");
        let entries = booked().await;
        let ads_entry = entries
            .iter()
            .find(|entry| entry["source"]["approval_id"] == id.as_str())
            .unwrap();
        assert_eq!(ads_entry["category"], "marketing");

        // Above 10,000: the CFO and the CEO.
        let big: serde_json::Value = expense(serde_json::json!({
            "amount": "25000", "currency": "USD", "category": "infrastructure",
            "counterparty": "Data centre", "date": "2026-11-21"
        }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(big["state"], "pending", "{big}");
        let id = big["proposal"]["id"].as_str().unwrap().to_owned();
        let first: serde_json::Value = approve(id.clone(), FIONA_CFO).await.unwrap().json().await.unwrap();
        assert_eq!(first["state"], "pending", "{first}");
        assert_eq!(booked().await.len(), 2);
        let second: serde_json::Value = approve(id.clone(), ERIN_CEO).await.unwrap().json().await.unwrap();
        assert_eq!(second["state"], "executed", "{second}");
        assert_eq!(booked().await.len(), 3);

        // A bad expense is refused with the reason; a proposal cannot understate an expense.
        let bad = expense(serde_json::json!({
            "amount": "-5", "currency": "USD", "category": "catering", "counterparty": "x"
        }))
        .await
        .unwrap();
        assert_eq!(bad.status(), 422);
        let error = bad.json::<serde_json::Value>().await.unwrap()["error"].as_str().unwrap().to_owned();
        assert!(error.contains("amount: must be more than 0"), "{error}");
        let understated: serde_json::Value = client
            .post(format!("{url}/v1/proposals"))
            .bearer_auth(ALICE)
            .json(&serde_json::json!({
                "id": "sneaky",
                "operation": {
                    "kind": "expense", "domain": "finance", "risk": "low",
                    "amount_cents": 100, "target": "infrastructure",
                    "parameters": { "amount": "9000", "currency": "USD", "category": "infrastructure", "counterparty": "x", "date": "2026-11-21" }
                }
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(understated["state"], "denied", "{understated}");
        let reason = understated["decision"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("amount_cents 100 does not match 9000 USD = 900000 cents"), "{understated}");
        assert_eq!(booked().await.len(), 3);

        // The same from the command line, through the daemon with the caller's token.
        let (code, stdout, stderr) = crate::support::run_cli_env(
            dir.path(),
            &[
                "finance", "expense", "--amount", "80", "--category", "infrastructure",
                "--subcategory", "bandwidth", "--counterparty", "Cloudflare",
                "--description", "Argo tunnel",
            ],
            &[("COMMAND_CENTER_TOKEN", ALICE)],
        );
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(stdout.contains("executed"), "{stdout}");
        assert!(stdout.contains("booked in the ledger without approval"), "{stdout}");
        println!("{stdout}");
        let entries = booked().await;
        assert_eq!(entries.len(), 4);
        assert!(
            entries.iter().any(|entry| entry["counterparty"] == "Cloudflare"
                && entry["amount"] == "-80"
                && entry["subcategory"] == "bandwidth"),
            "{entries:?}"
        );
        let (code, stdout, stderr) = crate::support::run_cli_env(
            dir.path(),
            &[
                "finance", "expense", "--amount", "15000", "--category", "personnel",
                "--counterparty", "Contractor GmbH", "--rationale", "audit prep",
            ],
            &[("COMMAND_CENTER_TOKEN", ALICE)],
        );
        assert_eq!(code, 0, "{stdout}{stderr}");
        println!("{stdout}");
        assert!(stdout.contains("pending"), "{stdout}");
        assert!(stdout.contains("waiting for 2 approval(s)"), "{stdout}");
        let (code, stdout, stderr) = crate::support::run_cli_env(
            dir.path(),
            &["finance", "expense", "--amount", "15", "--category", "catering", "--counterparty", "Deli"],
            &[("COMMAND_CENTER_TOKEN", ALICE)],
        );
        assert_eq!(code, 0, "a denied proposal is an answer, not a failure: {stderr}");
        assert!(stdout.contains("denied: deny: never runs (invalid parameters for expense: unknown category \"catering\""), "{stdout}");
        assert_eq!(booked().await.len(), 4);

        // And from chat (`ask` sends the text to POST /v1/commands as the caller).
        let (code, stdout, stderr) = crate::support::run_cli_env(
            dir.path(),
            &["ask", "/expense 49,90 usd infrastructure/servers Hetzner Online: CX22 for monitoring"],
            &[("COMMAND_CENTER_TOKEN", ALICE)],
        );
        assert_eq!(code, 0, "{stdout}{stderr}");
        println!("{stdout}");
        assert!(stdout.starts_with("Expense booked"), "{stdout}");
        assert!(stdout.contains("Hetzner Online"), "{stdout}");
        let entries = booked().await;
        assert!(
            entries.iter().any(|entry| entry["amount"] == "-49.90" && entry["counterparty"] == "Hetzner Online"),
            "{entries:?}"
        );
        // A currency without a rate cannot be weighed against the policies: said, not guessed.
        let (code, stdout, _) = crate::support::run_cli_env(
            dir.path(),
            &["ask", "/expense 10 EUR infrastructure Hetzner"],
            &[("COMMAND_CENTER_TOKEN", ALICE)],
        );
        assert_eq!(code, 2, "{stdout}");
        assert!(stdout.contains("no EUR to USD rate for"), "{stdout}");
        let (code, stdout, stderr) = crate::support::run_cli_env(
            dir.path(),
            &["ask", "/finance"],
            &[("COMMAND_CENTER_TOKEN", ALICE)],
        );
        assert_eq!(code, 0, "{stdout}{stderr}");
        println!("{stdout}");
        assert!(stdout.contains("Expenses awaiting approval"), "{stdout}");
    });
    daemon.signal(libc::SIGTERM);
    daemon.wait_exit(Duration::from_secs(30));
}

#[test]
fn crypto_income_is_valued_at_the_simulated_coingecko_history() {
    tools::http::install_crypto_provider();
    let mut scenario = crate::support::quiet_scenario();
    scenario.coins[0].volatility_percent_per_hour = 3.0;
    let sim = crate::support::spawn_sim_with(scenario);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), free_port(), Some(&sim.coingecko_url()));
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace("timeout = \"500ms\"", "timeout = \"10s\"");
    text.push_str("\n[finance]\ncoin_ids = { TON = \"the-open-network\" }\n");
    std::fs::write(&config, text).unwrap();
    let config = config.display().to_string();

    // Days just before today: the simulated price path starts now and is computed hour by
    // hour back from there.
    let today = chrono::Utc::now().date_naive();
    let day = |back: u64| (today - chrono::Days::new(back)).to_string();
    let (first_day, second_day) = (day(3), day(2));
    for (date, amount) in [(first_day.as_str(), "100"), (second_day.as_str(), "250.5")] {
        let (code, _, stderr) = cli(
            dir.path(),
            &config,
            &[
                "add",
                "--amount",
                amount,
                "--currency",
                "TON",
                "--stream",
                "validators",
                "--date",
                date,
            ],
        );
        assert_eq!(code, 0, "{stderr}");
    }
    let (code, stdout, stderr) = cli(
        dir.path(),
        &config,
        &["rates", "fetch", "--from", &day(5), "--to", &day(1)],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("5 daily rates stored from CoinGecko"),
        "{stdout}"
    );

    // What the simulated CoinGecko says TON cost at 00:00 UTC on each day.
    let price_on = |date: &str| -> f64 {
        let start = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .unwrap()
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp();
        let url = format!(
            "{}/coins/the-open-network/market_chart/range?vs_currency=usd&from={start}&to={}",
            sim.coingecko_url(),
            start + 60
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let body: serde_json::Value =
            runtime.block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() });
        body["prices"][0][1].as_f64().unwrap()
    };
    let (first, second) = (price_on(&first_day), price_on(&second_day));
    assert!(
        (first - second).abs() > 1e-6,
        "the price path moves: {first} {second}"
    );
    let expected = 100.0 * first + 250.5 * second;

    let (code, stdout, stderr) = cli(
        dir.path(),
        &config,
        &[
            "report",
            "--from",
            &first_day[..7],
            "--to",
            &second_day[..7],
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let valued: f64 = report["months"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|month| month["revenue"]["validators"].as_str())
        .map(|value| value.parse::<f64>().unwrap())
        .sum();
    // Each entry rounded to cents, rates to 8 decimals: within a cent per entry.
    assert!((valued - expected).abs() <= 0.02, "{valued} vs {expected}");
    assert!(
        report["missing_rates"].as_array().unwrap().is_empty(),
        "{report}"
    );

    // A coin CoinGecko does not know is a clear error, and nothing is stored.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace("TON = \"the-open-network\"", "TON = \"no-such-coin\"");
    std::fs::write(&config, text).unwrap();
    let (code, _, stderr) = cli(
        dir.path(),
        &config,
        &[
            "rates",
            "fetch",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-02",
        ],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("TON (no-such-coin)"), "{stderr}");
}

/// On-chain income and the portfolio through the binary, against the simulated chain: a
/// validator's stake comes back with its reward, customers pay a Cocoon wallet, the treasury
/// wallet's TON breaks its limit.
#[test]
fn onchain_income_and_the_portfolio_from_the_cli() {
    const V1: &str = "-1:1111111111111111111111111111111111111111111111111111111111111111";
    const TREASURY: &str = "-1:2222222222222222222222222222222222222222222222222222222222222222";
    const COCOON: &str = "0:4444444444444444444444444444444444444444444444444444444444444444";
    const ALICE: &str = "0:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const BOB: &str = "0:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const EXCHANGE: &str = "0:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
    tools::http::install_crypto_provider();
    let elector = tools::ton::elector::ELECTOR_ADDRESS;
    // The world starts 20 days ago; moving its clock 19 days on brings it to yesterday.
    let start = (chrono::Utc::now() - chrono::Duration::days(20)).to_rfc3339();
    let scenario = tools::sim::Scenario::from_toml(
        &format!(
            r#"
name = "treasury"
seed = 11
start = "{start}"

[[validators]]
name = "v1"
address = "{V1}"
balance_ton = 800000.0

[[validators]]
name = "treasury"
address = "{TREASURY}"
balance_ton = 1000.0

[[cocoon_nodes]]
name = "worker-1"
utilization = [0.8, 0.7]
customers = 2

[[jettons]]
owner = "{TREASURY}"
symbol = "USD₮"
name = "Tether USD"
decimals = 6
balance = "1000000000"
price_usd = 1.0

[[jettons]]
owner = "{TREASURY}"
symbol = "USDT"
name = "Claim your reward"
balance = "50000000000000"
verification = "blacklist"
price_usd = 1.0

[[events]]
kind = "transfer"
at = "1h"
from = "{V1}"
to = "{elector}"
amount_ton = 700000.0

[[events]]
kind = "transfer"
at = "2d"
from = "{ALICE}"
to = "{COCOON}"
amount_ton = 12.5
comment = "job 881"

[[events]]
kind = "transfer"
at = "3d"
from = "{BOB}"
to = "{COCOON}"
amount_ton = 40.0

[[events]]
kind = "stake_returned"
at = "18d"
validator = "v1"
amount_ton = 701208.0
"#
        ),
        "treasury.toml",
    )
    .unwrap();
    let sim = crate::support::spawn_sim_with(scenario);
    sim.advance(Duration::from_secs(19 * 86_400));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), free_port(), None);
    let mut text = std::fs::read_to_string(&config).unwrap();
    write!(
        text,
        r#"
[sources.toncenter]
base_url = "{toncenter}"
requests_per_second = 100.0

[sources.tonapi]
base_url = "{tonapi}"
api_key_file = "{key}"
requests_per_second = 100.0

[agents.validators]
enabled = false

[[agents.validators.validators]]
name = "v1"
wallet = "{V1}"

[finance]
reporting_currency = "USD"

[[finance.onchain.accounts]]
address = "{COCOON}"
label = "worker-1"
kind = "cocoon"
metrics_url = "{metrics}"

[finance.portfolio]
rebalance_to = "{EXCHANGE}"

[[finance.portfolio.wallets]]
address = "{TREASURY}"
label = "treasury"

[[finance.portfolio.limits]]
asset = "TON"
max_share = 0.5
"#,
        toncenter = sim.toncenter_url(),
        tonapi = sim.tonapi_url(),
        metrics = sim.cocoon_metrics_url("worker-1"),
        key = dir.path().join("tonapi.key").display(),
    )
    .unwrap();
    std::fs::write(&config, text).unwrap();
    std::fs::write(dir.path().join("tonapi.key"), "test-key\n").unwrap();
    let config = config.display().to_string();

    let (code, stdout, stderr) = cli(dir.path(), &config, &["onchain"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    println!("{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("worker-1") && lines[0].contains("2 new"),
        "{stdout}"
    );
    assert!(lines[0].contains("52.5 TON"), "{stdout}");
    assert!(lines[0].ends_with("payers 2"), "{stdout}");
    assert!(
        stdout.contains("node: utilization 75%, customers 2"),
        "{stdout}"
    );
    assert!(stdout.contains("v1"), "{stdout}");
    assert!(stdout.contains("1208 TON"), "{stdout}");
    assert!(
        stdout.contains("stake 700000 TON from"),
        "the cycle is shown: {stdout}"
    );
    let (code, again, _) = cli(dir.path(), &config, &["onchain"]);
    assert_eq!(code, 0);
    assert!(
        again
            .lines()
            .all(|line| !line.contains(" 1 new") && !line.contains(" 2 new")),
        "{again}"
    );

    let (code, stdout, stderr) = cli(dir.path(), &config, &["entries", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let entries: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    let mut booked: Vec<(String, String)> = entries
        .iter()
        .map(|entry| {
            (
                entry["stream"].as_str().unwrap().to_owned(),
                entry["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    booked.sort();
    assert_eq!(
        booked,
        [
            ("cocoon".to_owned(), "12.5".to_owned()),
            ("cocoon".to_owned(), "40".to_owned()),
            ("validators".to_owned(), "1208".to_owned()),
        ]
    );

    // TON at 5 USD for the last days, custody cash in USD.
    let today = chrono::Utc::now().date_naive();
    let mut rates = String::from("date,base,quote,rate\n");
    for back in 0..5 {
        writeln!(rates, "{},TON,USD,5", today - chrono::Days::new(back)).unwrap();
    }
    std::fs::write(dir.path().join("ton.csv"), rates).unwrap();
    let rates_file = dir.path().join("ton.csv").display().to_string();
    let (code, _, stderr) = cli(dir.path(), &config, &["rates", "import", &rates_file]);
    assert_eq!(code, 0, "{stderr}");
    let balances = dir.path().join("custody.csv");
    std::fs::write(
        &balances,
        format!("date,account,asset,class,quantity\n{today},custody,USD,fiat,3000\n{today},custody,BTC,metal,1\n"),
    )
    .unwrap();
    let balances_file = balances.display().to_string();
    let (code, _, stderr) = cli(dir.path(), &config, &["balances", &balances_file]);
    assert_eq!(code, 2, "a bad class is refused: {stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
    std::fs::write(
        &balances,
        format!("date,account,asset,class,quantity\n{today},custody,USD,fiat,3000\n"),
    )
    .unwrap();
    let (code, stdout, stderr) = cli(dir.path(), &config, &["balances", &balances_file]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 balances, 1 stored"), "{stdout}");

    // 1,000 TON (5,000 USD), 1,000 USD₮ in the treasury wallet (tonapi's price; the spam
    // jetton is not counted) and 3,000 USD in custody: TON is 5,000 of 9,000, 55.6% against
    // 50%, 500 USD over: 100 TON to move.
    let (code, stdout, stderr) = cli(dir.path(), &config, &["portfolio", "--days", "3", "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let view: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(view["report"]["total"], "9000");
    assert_eq!(view["wallets"][0]["jettons"][0]["asset"], "USDT");
    assert_eq!(view["wallets"][0]["jettons"][0]["quantity"], "1000");
    assert!(
        view["wallets"][0]["ignored_jettons"][0]
            .as_str()
            .unwrap()
            .starts_with("USDT: blacklist"),
        "{view}"
    );
    assert_eq!(view["report"]["breaches"][0]["limit"], "asset TON");
    assert_eq!(view["plan"][0]["action"], "transfer");
    assert_eq!(view["plan"][0]["quantity"], "100");
    assert_eq!(view["plan"][0]["to_address"], EXCHANGE);
    let staking = &view["staking"];
    assert_eq!(staking["cycles_used"], 1);
    // 1,208 TON on 700,000 over 18 days less an hour, compounded over a year: about 3.6%.
    let apy = staking["own_apy"].as_f64().unwrap();
    let cycle_days = 18.0 - 1.0 / 24.0;
    let expected = ((1.0 + 1208.0 / 700_000.0_f64).powf(365.0 / cycle_days) - 1.0) * 100.0;
    assert!((apy - expected).abs() < 1e-6, "{apy} vs {expected}");
    assert_eq!(staking["best_pool"]["name"], "Very First Pool #1");
    let (code, table, stderr) = cli(dir.path(), &config, &["portfolio", "--days", "3"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(table.contains("rebalance: "), "{table}");
    assert!(table.contains("staking: "), "{table}");
    assert!(
        table.contains("treasury  USDT   stablecoin"),
        "the jetton is a row: {table}"
    );
    assert!(
        table.contains("not counted in treasury: USDT: blacklist"),
        "{table}"
    );
    println!("{table}");
}
