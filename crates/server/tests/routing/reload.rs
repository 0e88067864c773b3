//! Hot reload: a changed config file is picked up while requests are in flight, and a broken
//! one is refused while the running config keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use switchyard_core::Config;

use crate::gateway::{config, deployment, eventually, start_gateway};
use crate::upstream::Upstream;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("switchyard-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `text` to a temporary file and renames it over `path`, as editors do.
fn save_like_an_editor(path: &Path, text: &str) {
    let tmp = path.with_file_name(".switchyard.yaml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn a_config_change_is_picked_up_without_failing_requests_in_flight() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let config_for = |target: &str| {
        config(
            &[deployment(&a), deployment(&b)],
            &format!("routes:\n  smart: {{ targets: [{target}] }}\ndatabase: {{ url: none }}\n"),
        )
    };
    let dir = TempDir::new("reload");
    let path = dir.0.join("switchyard.yaml");
    std::fs::write(&path, config_for("a")).unwrap();
    let gw = Arc::new(start_gateway(Config::load(&path).unwrap()).await);
    let _watcher = switchyard_server::reload::watch(path.clone(), gw.state.clone()).unwrap();
    assert_eq!(gw.served("smart").await, "a");

    // A slow request on A, in flight across the swap: held open until the new config serves.
    a.hold(1);
    let in_flight = {
        let gw = gw.clone();
        tokio::spawn(async move { gw.chat("smart").await })
    };
    assert!(
        eventually(Duration::from_secs(10), || a.count() == 2).await,
        "the slow request did not reach A"
    );

    save_like_an_editor(&path, &config_for("b"));
    let mut switched = false;
    for _ in 0..50 {
        // at most 50 × (a request + 100 ms) ≈ 5 s
        if gw.served("smart").await == "b" {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(switched, "the new config was not picked up within 5 s");
    assert_eq!(gw.served("smart").await, "b");

    a.release(1);
    let r = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the in-flight request did not finish")
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.served_by(),
        "a",
        "the in-flight request finished on the old config"
    );

    // A broken file is rejected and the running config keeps serving.
    let broken = config_for("b").replace("targets: [b]", "targets: [no-such-model]");
    save_like_an_editor(&path, &broken);
    tokio::time::sleep(Duration::from_millis(800)).await; // past the watcher's debounce
    assert!(
        !switchyard_server::reload::apply(&path, &gw.state),
        "a config with an unknown model was accepted"
    );
    let before = b.count();
    for _ in 0..3 {
        assert_eq!(gw.served("smart").await, "b");
    }
    assert_eq!(b.count(), before + 3);
}
