//! `command-center ask "<text>"`: a chat command through the running daemon's
//! `POST /v1/commands`, printed as plain text.

use std::path::PathBuf;

use super::Exit;
use super::gate::Client;
use crate::commands::Outcome;
use crate::config::Config;
use crate::http::CommandResponse;

pub async fn run(
    config: Config,
    text: String,
    token_file: Option<PathBuf>,
    json: bool,
) -> Result<(), Exit> {
    let client = Client::new(&config, token_file.as_deref())?;
    let response: CommandResponse = client
        .send(
            reqwest::Method::POST,
            "/v1/commands",
            Some(serde_json::json!({ "text": text })),
        )
        .await?;
    if json {
        match serde_json::to_string_pretty(&response) {
            Ok(pretty) => println!("{pretty}"),
            Err(error) => {
                eprintln!("error: {error}");
                return Err(Exit(1));
            }
        }
    } else {
        print!("{}", response.text);
    }
    match response.answer.outcome {
        Outcome::Ok | Outcome::Unavailable => Ok(()),
        // Not understood, not allowed, not found or failed: the text above says why.
        Outcome::Invalid => Err(Exit(super::EXIT_INVALID)),
        Outcome::Refused | Outcome::NotFound | Outcome::Failed => Err(Exit(1)),
    }
}
