//! Disk faults: a full disk, then space freed again, on a small real file
//! system (a size-limited tmpfs, which needs root to mount).

use crate::common::{route, Reply, Sink, TestGateway, PATIENCE};
use hookgate::model::EventStatus;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A tmpfs of a few MiB mounted for one test; unmounted when dropped.
struct SmallDisk {
    at: PathBuf,
}

impl SmallDisk {
    /// Mounts it at `at`; None, saying why, where mounting is not allowed.
    fn mount(at: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output();
        match mounted {
            Ok(output) if output.status.success() => Some(SmallDisk { at: at.into() }),
            Ok(output) => {
                let why = String::from_utf8_lossy(&output.stderr);
                eprintln!("SKIPPED: mounting a tmpfs needs root (CI runs as root): {why}");
                None
            }
            Err(error) => {
                eprintln!("SKIPPED: no `mount` to mount a tmpfs with: {error}");
                None
            }
        }
    }

    /// Fills the file system up with a file; returns it.
    fn fill(&self) -> PathBuf {
        let path = self.at.join("filler");
        let mut filler = std::fs::File::create(&path).unwrap();
        for chunk in [64 * 1024, 4096, 1] {
            let bytes = vec![0xaa; chunk];
            while filler.write_all(&bytes).is_ok() {}
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.at)
            .status();
    }
}

/// Posts until the answer is `status` (or the patience runs out); returns the
/// ids of the requests acknowledged meanwhile.
async fn post_until(gw: &TestGateway, status: u16) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    let mut acknowledged = Vec::new();
    loop {
        let (answered, body) = gw.post("/e/shop", "{\"while\":\"changing\"}").await;
        if answered == 200 {
            acknowledged.push(body["request_id"].as_str().unwrap().to_string());
        }
        if answered == status {
            return acknowledged;
        }
        assert!(Instant::now() < deadline, "never answered {status}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_requests_and_once_freed_everything_resumes_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&dir.path().join("data"), "16m") else {
        return;
    };
    let sink = Sink::start(Reply::Status(200)).await;
    // Deliveries are due 1.5 s after their requests: those taken just before
    // the disk fills are delivered, and recorded, while it is full.
    let rules = r#"rules = [ { type = "retry", strategy = "linear", count = 3, interval = 60000 }, { type = "delay", delay = 1500 } ]"#;
    let config = format!(
        "[limits]\nstore_disk_reserve_bytes = 2097152\n[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), rules)
    );
    let gw = TestGateway::start_in(dir, &config).await;
    let mut acknowledged = Vec::new();
    for n in 0..5 {
        let (status, body) = gw.post("/e/shop", &format!("{{\"n\":{n}}}")).await;
        assert_eq!(status, 200);
        acknowledged.push(body["request_id"].as_str().unwrap().to_string());
    }
    for id in &acknowledged {
        gw.wait_routed(id).await;
    }

    let filler = disk.fill();
    acknowledged.extend(post_until(&gw, 503).await);
    let (status, body) = gw.post("/e/shop", "{}").await;
    assert_eq!(status, 503, "{body}");
    // Delivered while the disk is full, and recorded.
    gw.wait_events(acknowledged.len(), |event| {
        event.status == EventStatus::Successful
    })
    .await;

    std::fs::remove_file(filler).unwrap();
    acknowledged.extend(post_until(&gw, 200).await);
    for n in 0..5 {
        let (status, body) = gw.post("/e/shop", &format!("{{\"after\":{n}}}")).await;
        assert_eq!(status, 200);
        acknowledged.push(body["request_id"].as_str().unwrap().to_string());
    }
    gw.wait_events(acknowledged.len(), |event| {
        event.status == EventStatus::Successful
    })
    .await;

    // Every acknowledged request delivered, each exactly once: an attempt is
    // never sent again because its record failed.
    let mut deliveries: HashMap<String, usize> = HashMap::new();
    for received in sink.received() {
        let id = received
            .header("x-hookgate-request-id")
            .unwrap()
            .to_string();
        *deliveries.entry(id).or_default() += 1;
    }
    for id in &acknowledged {
        assert_eq!(deliveries.get(id), Some(&1), "deliveries of {id}");
    }
    assert_eq!(deliveries.len(), acknowledged.len());
    let dir = gw.stopped().await;
    drop(disk);
    drop(dir);
}
