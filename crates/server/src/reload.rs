//! Hot reload: watches the config file and swaps the running configuration when it changes,
//! without a restart and without failing requests in flight (they finish on the config they
//! started with). A file that does not load is rejected with a log line that says why, and the
//! running config keeps serving. `SIGHUP` forces a reload too.
//!
//! The directory is watched rather than the file, because editors save by writing a new file
//! and renaming it over the old one, and Kubernetes swaps a `..data` symlink: a watch on the
//! file itself would be lost on the first save. Events are debounced, and a reload happens only
//! when the file's content changed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use switchyard_core::Config;

use crate::ingress::AppState;

/// Quiet time after the last event before the file is read: editors write in several steps.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Starts watching `path`; the watcher lives as long as the returned handle.
pub fn watch(path: PathBuf, state: Arc<AppState>) -> Result<notify::RecommendedWatcher, String> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let file_name = path.file_name().map(|n| n.to_owned());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let ours = event.paths.iter().any(|p| {
                p.file_name() == file_name.as_deref()
                    || p.file_name().is_some_and(|n| n == "..data")
            });
            if ours {
                let _ = tx.send(());
            }
        }
    })
    .map_err(|e| format!("cannot watch the config file: {e}"))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;

    let mut last = std::fs::read(&path).ok();
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Debounce: wait until events stop for a moment.
            while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
            let current = std::fs::read(&path).ok();
            if current.is_none() || current == last {
                continue;
            }
            last = current;
            apply(&path, &state);
        }
    });
    Ok(watcher)
}

/// Loads the file and swaps it in, or logs why not.
pub fn apply(path: &Path, state: &AppState) -> bool {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(file = %path.display(), "config reload rejected, the running config keeps serving: {e}");
            return false;
        }
    };
    let running = state.gateway.runtime();
    if config.server.listen != running.config.server.listen {
        tracing::warn!("server.listen changed: a new address takes effect at the next restart");
    }
    if crate::connections::limits_changed(&config.server, &running.config.server) {
        tracing::warn!(
            "server connection limits changed (header_read_timeout, body_read_timeout, idle_timeout, max_header_size, max_connections, max_in_flight, http2_max_concurrent_streams): they take effect at the next restart"
        );
    }
    match state.gateway.reload(config) {
        Ok(()) => {
            tracing::info!(file = %path.display(), "config reloaded");
            true
        }
        Err(e) => {
            tracing::error!(file = %path.display(), "config reload rejected, the running config keeps serving: {e}");
            false
        }
    }
}

/// Reloads the config file on `SIGHUP`.
#[cfg(unix)]
pub fn on_sighup(path: PathBuf, state: Arc<AppState>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            apply(&path, &state);
        }
    });
}

#[cfg(not(unix))]
pub fn on_sighup(_path: PathBuf, _state: Arc<AppState>) {}
