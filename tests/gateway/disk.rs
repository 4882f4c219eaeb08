//! Disk faults: a full disk, then space freed again, on a small real file
//! system (a size-limited tmpfs, which needs root to mount).

use crate::common::{route, Reply, Sink, TestGateway, PATIENCE};
use hookgate::model::EventStatus;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A tmpfs of a few MiB mounted for one test; unmounted when dropped.
pub struct SmallDisk {
    at: PathBuf,
}

impl SmallDisk {
    /// Mounts it at `at`; None, saying why, where mounting is not allowed.
    pub fn mount(at: &Path, size: &str) -> Option<SmallDisk> {
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
    pub fn fill(&self) -> PathBuf {
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
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A gateway on a small disk that has taken five requests, routed, their
/// deliveries due 1.5 s after them (so that they happen once the test has
/// filled the disk).
struct OnSmallDisk {
    disk: SmallDisk,
    sink: Sink,
    config: String,
    gw: TestGateway,
    acknowledged: Vec<String>,
}

impl OnSmallDisk {
    /// None where a tmpfs cannot be mounted (not root).
    async fn start(reserve_bytes: u64) -> Option<OnSmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let disk = SmallDisk::mount(&dir.path().join("data"), "16m")?;
        let sink = Sink::start(Reply::Status(200)).await;
        let rules = r#"rules = [ { type = "retry", strategy = "linear", count = 3, interval = 60000 }, { type = "delay", delay = 1500 } ]"#;
        let config = format!(
            "[limits]\nstore_disk_reserve_bytes = {reserve_bytes}\n[[sources]]\nname = \"shop\"\n{}",
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
        Some(OnSmallDisk {
            disk,
            sink,
            config,
            gw,
            acknowledged,
        })
    }

    /// How many times the sink got each request.
    fn deliveries(&self) -> HashMap<String, usize> {
        let mut deliveries: HashMap<String, usize> = HashMap::new();
        for received in self.sink.received() {
            let id = received
                .header("x-hookgate-request-id")
                .unwrap()
                .to_string();
            *deliveries.entry(id).or_default() += 1;
        }
        deliveries
    }

    /// Stops the gateway and unmounts the disk.
    async fn stop(self) {
        // A failed store cannot flush: the stop says so.
        let _ = self.gw.gateway.shutdown().await;
        drop(self.disk);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_requests_and_once_freed_everything_resumes_without_a_restart() {
    let Some(mut run) = OnSmallDisk::start(2 * 1024 * 1024).await else {
        return;
    };
    let gw = &run.gw;
    let filler = run.disk.fill();
    run.acknowledged.extend(post_until(gw, 503).await);
    let (status, body) = gw.post("/e/shop", "{}").await;
    assert_eq!(status, 503, "{body}");
    // Delivered while the disk is full, and recorded.
    gw.wait_events(run.acknowledged.len(), |event| {
        event.status == EventStatus::Successful
    })
    .await;

    std::fs::remove_file(filler).unwrap();
    run.acknowledged.extend(post_until(gw, 200).await);
    for n in 0..5 {
        let (status, body) = gw.post("/e/shop", &format!("{{\"after\":{n}}}")).await;
        assert_eq!(status, 200);
        run.acknowledged
            .push(body["request_id"].as_str().unwrap().to_string());
    }
    gw.wait_events(run.acknowledged.len(), |event| {
        event.status == EventStatus::Successful
    })
    .await;

    // Every acknowledged request delivered, each exactly once: an attempt is
    // never sent again because its record failed.
    let deliveries = run.deliveries();
    for id in &run.acknowledged {
        assert_eq!(deliveries.get(id), Some(&1), "deliveries of {id}");
    }
    assert_eq!(deliveries.len(), run.acknowledged.len());
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_failed_for_good_sends_no_attempt_twice_and_takes_no_request_until_restarted() {
    // Without a reserve, sled fails for good on the full disk.
    let Some(run) = OnSmallDisk::start(0).await else {
        return;
    };
    let filler = run.disk.fill();
    // Something for sled to write (the API may already answer 500 for it),
    // then a flush: it fails, and stays failed.
    run.gw
        .api_send(
            reqwest::Method::POST,
            "/2023-07-01/sources",
            serde_json::json!({ "name": "crm" }),
        )
        .await;
    let store = run.gw.gateway.store.clone();
    let flushed = tokio::task::spawn_blocking(move || store.flush())
        .await
        .unwrap();
    assert!(flushed.is_err(), "sled wrote on a full disk");
    post_until(&run.gw, 503).await;

    // The deliveries due now are sent and cannot be recorded: each is sent
    // once, not again and again while the store fails.
    run.sink.wait_for(run.acknowledged.len()).await;
    let window = Instant::now() + Duration::from_secs(2);
    while Instant::now() < window {
        assert!(
            run.deliveries().values().all(|sent| *sent == 1),
            "{:?}",
            run.deliveries()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Space back does not mend sled: requests are still refused, saying why.
    std::fs::remove_file(filler).unwrap();
    let (status, body) = run.gw.post("/e/shop", "{}").await;
    assert_eq!(status, 503);
    assert!(body.to_string().contains("restart"), "{body}");
    // And the node says so to its load balancer: not ready, for its store.
    let failing = crate::health::failing_checks(&run.gw).await;
    assert!(failing.contains(&"store".to_string()), "{failing:?}");

    // A restart does: every acknowledged request is delivered (those sent
    // before once more, at most).
    let OnSmallDisk {
        disk,
        sink,
        config,
        gw,
        acknowledged,
    } = run;
    let TestGateway { gateway, dir, .. } = gw;
    let _ = gateway.shutdown().await;
    let gw = TestGateway::start_in(dir, &config).await;
    gw.wait_events(acknowledged.len(), |event| {
        event.status == EventStatus::Successful
    })
    .await;
    let run = OnSmallDisk {
        disk,
        sink,
        config,
        gw,
        acknowledged,
    };
    for id in &run.acknowledged {
        let sent = run.deliveries().get(id).copied();
        assert!(matches!(sent, Some(1 | 2)), "{id} sent {sent:?} times");
    }
    run.stop().await;
}
