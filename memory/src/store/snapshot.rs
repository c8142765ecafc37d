//! Online snapshots and offline restore.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{STORE_DIR, Store, open_db};
use crate::checkpoint::{CHECKPOINTS_FILE, read_checkpoints, sync_dir};
use crate::error::StoreError;
use crate::journal::{JOURNAL_TREE, verify_tree};

const MANIFEST_FILE: &str = "manifest.json";
const FORMAT_VERSION: u32 = 1;
/// Entries per sled batch while copying trees, to bound memory.
const COPY_CHUNK: usize = 10_000;

/// Written to `<snapshot>/manifest.json`; `trees` maps each sled tree name to its entry count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapshotManifest {
    pub format_version: u32,
    pub created_at: DateTime<Utc>,
    pub journal_entries: u64,
    pub head_hash: Option<String>,
    pub trees: BTreeMap<String, u64>,
}

fn io_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> StoreError + use<> {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

pub(super) fn take(store: &Store, dest: &Path) -> Result<SnapshotManifest, StoreError> {
    let is_non_empty_dir = match std::fs::read_dir(dest) {
        Ok(mut entries) => entries.next().is_some(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
        Err(source) => return Err(io_error("inspecting snapshot destination", dest)(source)),
    };
    if is_non_empty_dir || dest.is_file() {
        return Err(StoreError::AlreadyExists {
            path: dest.to_path_buf(),
            hint: "choose a new or empty directory for the snapshot",
        });
    }
    std::fs::create_dir_all(dest).map_err(io_error("creating snapshot directory", dest))?;

    let _frozen = store.inner.gate.freeze();
    store.flush()?;
    let target_path = dest.join(STORE_DIR);
    let target = open_db(&target_path, dest)?;
    let trees = copy_trees(&store.inner.db, &store.store_path(), &target, &target_path)?;
    target.flush().map_err(|source| StoreError::Database {
        action: "flushing the snapshot",
        location: target_path.display().to_string(),
        source,
    })?;
    drop(target);

    let checkpoints = store.checkpoints_path();
    if checkpoints.exists() {
        copy_file_durably(&checkpoints, &dest.join(CHECKPOINTS_FILE))?;
    }
    let head = store.inner.journal.current_head();
    let manifest = SnapshotManifest {
        format_version: FORMAT_VERSION,
        created_at: Utc::now(),
        journal_entries: head.count,
        head_hash: head.hash,
        trees,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|source| StoreError::Encode {
        what: format!("snapshot manifest for {}", dest.display()),
        source,
    })?;
    write_file_durably(&dest.join(MANIFEST_FILE), &json)?;
    sync_dir(dest)?;
    Ok(manifest)
}

pub(super) fn restore(
    snapshot_dir: &Path,
    data_dir: &Path,
    force: bool,
) -> Result<SnapshotManifest, StoreError> {
    let invalid = |message: String| StoreError::InvalidSnapshot {
        path: snapshot_dir.to_path_buf(),
        message,
    };
    let manifest_path = snapshot_dir.join(MANIFEST_FILE);
    let manifest_bytes = std::fs::read(&manifest_path)
        .map_err(|error| invalid(format!("cannot read {}: {error}", manifest_path.display())))?;
    let manifest: SnapshotManifest = serde_json::from_slice(&manifest_bytes).map_err(|error| {
        invalid(format!(
            "{} is not a snapshot manifest: {error}",
            manifest_path.display()
        ))
    })?;
    if manifest.format_version != FORMAT_VERSION {
        return Err(invalid(format!(
            "format_version {} in {} is not supported (this build reads {FORMAT_VERSION})",
            manifest.format_version,
            manifest_path.display()
        )));
    }
    let source_path = snapshot_dir.join(STORE_DIR);
    if !source_path.is_dir() {
        return Err(invalid(format!("{} is missing", source_path.display())));
    }
    let source = open_db(&source_path, snapshot_dir)?;
    check_snapshot(&source, &source_path, snapshot_dir, &manifest).map_err(invalid)?;

    std::fs::create_dir_all(data_dir).map_err(io_error("creating data directory", data_dir))?;
    let store_path = data_dir.join(STORE_DIR);
    let checkpoints_path = data_dir.join(CHECKPOINTS_FILE);
    if store_path.exists() || checkpoints_path.exists() {
        if !force {
            return Err(StoreError::AlreadyExists {
                path: store_path,
                hint: "it holds live data; pass force to move it aside to store.replaced-<unix-ts> and restore anyway",
            });
        }
        if store_path.exists() {
            // Opening takes sled's lock, so a running daemon makes this fail with `Locked`
            // instead of having its files moved away underneath it.
            drop(open_db(&store_path, data_dir)?);
        }
        move_aside(data_dir)?;
    }

    let staging = data_dir.join(format!("{STORE_DIR}.restoring"));
    if staging.exists() {
        // Left over from an interrupted restore; it was never live.
        std::fs::remove_dir_all(&staging)
            .map_err(io_error("removing an interrupted restore at", &staging))?;
    }
    let target = open_db(&staging, data_dir)?;
    copy_trees(&source, &source_path, &target, &staging)?;
    target.flush().map_err(|source| StoreError::Database {
        action: "flushing the restored database",
        location: staging.display().to_string(),
        source,
    })?;
    drop(target);
    drop(source);

    let snapshot_checkpoints = snapshot_dir.join(CHECKPOINTS_FILE);
    if snapshot_checkpoints.exists() {
        copy_file_durably(&snapshot_checkpoints, &checkpoints_path)?;
    }
    std::fs::rename(&staging, &store_path).map_err(io_error(
        "moving the restored database into place at",
        &store_path,
    ))?;
    sync_dir(data_dir)?;
    tracing::info!(
        snapshot = %snapshot_dir.display(),
        data_dir = %data_dir.display(),
        journal_entries = manifest.journal_entries,
        "restored snapshot"
    );
    Ok(manifest)
}

/// The snapshot's journal must verify against its own checkpoints and match the manifest.
fn check_snapshot(
    source: &sled::Db,
    source_path: &Path,
    snapshot_dir: &Path,
    manifest: &SnapshotManifest,
) -> Result<(), String> {
    let checkpoints = read_checkpoints(&snapshot_dir.join(CHECKPOINTS_FILE))
        .map_err(|error| error.to_string())?;
    let journal = source
        .open_tree(JOURNAL_TREE)
        .map_err(|error| error.to_string())?;
    let report =
        verify_tree(&journal, source_path, &checkpoints).map_err(|error| error.to_string())?;
    if let Some(problem) = report.problem {
        return Err(format!("its journal does not verify: {}", problem.message));
    }
    if report.entries != manifest.journal_entries || report.head_hash != manifest.head_hash {
        return Err(format!(
            "its journal has {} entries ending in {:?} but the manifest says {} ending in {:?}",
            report.entries, report.head_hash, manifest.journal_entries, manifest.head_hash
        ));
    }
    for (name, expected) in &manifest.trees {
        let tree = source
            .open_tree(name.as_bytes())
            .map_err(|error| error.to_string())?;
        let found = tree.len() as u64;
        if found != *expected {
            return Err(format!(
                "tree {name} has {found} entries but the manifest says {expected}"
            ));
        }
    }
    Ok(())
}

/// Renames `<data_dir>/store` and `<data_dir>/checkpoints.jsonl` to `*.replaced-<unix-ts>`.
fn move_aside(data_dir: &Path) -> Result<(), StoreError> {
    let stamp = Utc::now().timestamp();
    let mut suffix = format!("replaced-{stamp}");
    let mut attempt = 1;
    while data_dir.join(format!("{STORE_DIR}.{suffix}")).exists()
        || data_dir
            .join(format!("{CHECKPOINTS_FILE}.{suffix}"))
            .exists()
    {
        suffix = format!("replaced-{stamp}-{attempt}");
        attempt += 1;
    }
    for name in [STORE_DIR, CHECKPOINTS_FILE] {
        let from = data_dir.join(name);
        if from.exists() {
            let to: PathBuf = data_dir.join(format!("{name}.{suffix}"));
            std::fs::rename(&from, &to).map_err(io_error("moving aside the replaced", &from))?;
            tracing::warn!(from = %from.display(), to = %to.display(), "moved existing data aside for restore");
        }
    }
    sync_dir(data_dir)
}

/// Copies every tree of `source` into `target` and returns tree name -> entries copied.
fn copy_trees(
    source: &sled::Db,
    source_path: &Path,
    target: &sled::Db,
    target_path: &Path,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut counts = BTreeMap::new();
    for name in source.tree_names() {
        let label = String::from_utf8_lossy(&name).into_owned();
        let database_error = |action: &'static str, path: &Path| {
            let location = format!("{} tree {label}", path.display());
            move |source| StoreError::Database {
                action,
                location,
                source,
            }
        };
        let from = source
            .open_tree(&name)
            .map_err(database_error("opening a tree to copy", source_path))?;
        let to = target
            .open_tree(&name)
            .map_err(database_error("creating a tree copy", target_path))?;
        let mut copied: u64 = 0;
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for item in from.iter() {
            let (key, value) =
                item.map_err(database_error("reading a tree to copy", source_path))?;
            batch.insert(key, value);
            in_batch += 1;
            copied += 1;
            if in_batch == COPY_CHUNK {
                to.apply_batch(std::mem::take(&mut batch))
                    .map_err(database_error("writing a tree copy", target_path))?;
                in_batch = 0;
            }
        }
        to.apply_batch(batch)
            .map_err(database_error("writing a tree copy", target_path))?;
        counts.insert(label, copied);
    }
    Ok(counts)
}

fn write_file_durably(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(io_error("creating", path))?;
    file.write_all(bytes).map_err(io_error("writing", path))?;
    file.sync_all().map_err(io_error("syncing", path))
}

fn copy_file_durably(from: &Path, to: &Path) -> Result<(), StoreError> {
    let bytes = std::fs::read(from).map_err(io_error("reading", from))?;
    write_file_durably(to, &bytes)
}
