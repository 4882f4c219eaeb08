//! Hostile transformations against the real gateway and its real worker
//! processes: each is contained in its worker, answered with a clear error,
//! and leaves the gateway and the pool serving the next transformation, with
//! no worker left running.

use crate::common::{route, Reply, Sink, TestGateway};
use crate::rules::ignored;
use hookgate::pipeline::transform::{
    Admission, PoolSettings, TransformError, TransformLimits, Transformation, WorkerPool,
};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Does what `request.body.attack` names, else tags the request.
const ATTACKS: &str = r#"addHandler('transform', (r) => {
  const attack = r.body.attack;
  if (attack === 'deep') { let a = []; for (let i = 0; i < 60000; i++) a = [a]; r.body.size = JSON.stringify(a).length; }
  if (attack === 'memory') { r.body.size = 'x'.repeat(1e9).length; }
  if (attack === 'promises') { const spin = () => Promise.resolve().then(spin); spin(); }
  if (attack === 'nested') { const inner = () => { for (let i = 0; i < 1e6; i++) {} }; while (true) inner(); }
  r.headers['x-transformed'] = 'yes';
  return r;
})"#;

/// Each attack and what its run must fail with: a worker that ran out of
/// native stack or memory dies; loops boa cannot stop are killed at the timeout.
/// (Deep stringification is also slow enough to meet the timeout first.)
const EXPECTED: [(&str, &[&str]); 4] = [
    ("deep", &["worker process died", "timed out"]),
    ("memory", &["worker process died"]),
    ("promises", &["timed out"]),
    ("nested", &["timed out"]),
];

/// `[limits]` for a gateway with a pool of its own: pools are shared by equal
/// settings, so each test names a different queue length.
fn limits(queue: usize, timeout_ms: u64) -> String {
    format!("[limits]\ntransform_workers = 1\ntransform_queue = {queue}\ntransform_timeout_ms = {timeout_ms}\n\n")
}

/// A gateway whose transformations run on a one-worker pool of its own, and
/// that worker, started by a normal run.
async fn one_worker_gateway(queue: usize, timeout_ms: u64) -> (TestGateway, Arc<WorkerPool>, u32) {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "{}[[sources]]\nname = \"shop\"\n{}",
        limits(queue, timeout_ms),
        route("shop", "orders", &sink.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    let pool = gw.gateway.transform_pool();
    let worker = only_worker(&gw, &pool).await;
    (gw, pool, worker)
}

async fn try_run(gw: &TestGateway, attack: &str) -> (u16, Value) {
    let body = json!({
        "code": ATTACKS,
        "request": { "headers": {}, "body": { "attack": attack }, "path": "/", "query": "" }
    });
    gw.api_send(Method::PUT, "/2023-07-01/transformations/run", body)
        .await
}

async fn assert_serves_normally(gw: &TestGateway) {
    let (status, answer) = try_run(gw, "none").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["request"]["headers"]["x-transformed"], "yes");
}

/// The scheduling state of each thread of the process (`R` running, `S`
/// sleeping, `Z` zombie…), from /proc; None once the process is gone.
fn thread_states(pid: u32) -> Option<Vec<char>> {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let states = threads.filter_map(Result::ok).filter_map(|thread| {
        let stat = std::fs::read_to_string(thread.path().join("stat")).ok()?;
        stat.rsplit_once(") ")?.1.chars().next()
    });
    Some(states.collect())
}

/// Whether any thread of the process is running (or runnable); None once
/// the process is gone.
fn is_running(pid: u32) -> Option<bool> {
    thread_states(pid).map(|states| states.contains(&'R'))
}

/// CPU time the process used so far (user + system), in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    // Fields 14 and 15 of stat(5); this slice starts at field 3.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap()
}

/// The killed workers are gone, and every worker left is waiting for work
/// (asleep on its stdin), not still running a script.
async fn assert_pool_settled(pool: &WorkerPool, killed: &[u32]) {
    for pid in killed {
        assert_eq!(is_running(*pid), None, "worker {pid} is gone");
    }
    let live = pool.worker_pids();
    assert!(live.len() <= pool.size(), "{live:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while live.iter().any(|pid| is_running(*pid) != Some(false)) {
        assert!(
            Instant::now() < deadline,
            "a worker keeps running: {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The one worker of a one-worker pool, started by a normal run.
async fn only_worker(gw: &TestGateway, pool: &Arc<WorkerPool>) -> u32 {
    assert_serves_normally(gw).await;
    let pids = pool.worker_pids();
    assert_eq!(pids.len(), 1, "{pids:?}");
    pids[0]
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_trial_runs_fail_alone_and_their_worker_is_replaced() {
    let (gw, pool, _) = one_worker_gateway(11, 1000).await;
    for (attack, expected) in EXPECTED {
        let worker = only_worker(&gw, &pool).await;
        let (status, answer) = try_run(&gw, attack).await;
        assert_eq!(status, 422, "{attack}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.starts_with("the transformation failed: ")
                && expected.iter().any(|e| message.contains(e)),
            "{attack}: {message}"
        );
        assert_pool_settled(&pool, &[worker]).await;
        assert_serves_normally(&gw).await;
        assert_ne!(pool.worker_pids(), vec![worker], "{attack}: replaced");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn code_looping_at_load_is_refused_and_leaves_no_worker_running() {
    let (gw, pool, worker) = one_worker_gateway(12, 1000).await;
    let looping = "while (true) {} addHandler('transform', (r) => r);";
    let (status, answer) = gw
        .api_send(
            Method::POST,
            "/2023-07-01/transformations",
            json!({ "name": "looping", "code": looping }),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.starts_with("code: ")
            && (message.contains("timed out") || message.contains("loop iteration limit")),
        "{message}"
    );
    // Stopped by boa's loop limit the worker lives on; at the timeout it was killed.
    let killed: Vec<u32> = Some(worker)
        .filter(|_| message.contains("timed out"))
        .into_iter()
        .collect();
    assert_pool_settled(&pool, &killed).await;
    assert_serves_normally(&gw).await;
    let (_, stored) = gw.api_get("/2023-07-01/transformations").await;
    assert_eq!(stored["count"], 0, "{stored}");
}

#[tokio::test(flavor = "multi_thread")]
async fn trial_runs_beyond_the_queue_are_answered_503() {
    // No queue: a second run while the only worker is busy is turned away.
    let (gw, pool, worker) = one_worker_gateway(0, 3000).await;
    let busy = tokio::spawn({
        let body = json!({ "code": ATTACKS, "request": { "body": { "attack": "promises" } } });
        let run = gw.api(Method::PUT, "/2023-07-01/transformations/run");
        async move { run.json(&body).send().await.unwrap().status() }
    });
    // Loading and normal runs take milliseconds of CPU; a quarter second
    // means the worker is in the promise loop, and stays there until killed.
    let (idle_ticks, ticks_per_second) = (cpu_ticks(worker), clock_ticks_per_second());
    let deadline = Instant::now() + Duration::from_secs(2);
    while cpu_ticks(worker) < idle_ticks + ticks_per_second / 4 {
        assert!(Instant::now() < deadline, "the worker never got busy");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, answer) = try_run(&gw, "none").await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("all transformation workers are busy"),
        "{answer}"
    );
    assert_eq!(busy.await.unwrap(), 422);
    assert_pool_settled(&pool, &[worker]).await;
    assert_serves_normally(&gw).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn events_whose_script_kills_its_worker_are_ignored_while_other_connections_deliver() {
    let attacked = Sink::start(Reply::Status(200)).await;
    let plain = Sink::start(Reply::Status(200)).await;
    let attacks = format!(
        "rules = [ {{ type = \"transform\", transformation = {{ name = \"attacks\", code = '''{ATTACKS}''' }} }} ]"
    );
    let tag = r#"rules = [ { type = "transform", transformation = { name = "tag", code = "addHandler('transform', (r) => { r.headers['x-tag'] = 'plain'; return r; })" } } ]"#;
    let config = format!(
        "{}[[sources]]\nname = \"app\"\n{}{}",
        limits(13, 1000),
        route("app", "attacked", &attacked.url("/"), &attacks),
        route("app", "plain", &plain.url("/"), tag)
    );
    let gw = TestGateway::start(&config).await;
    let pool = gw.gateway.transform_pool();
    for (attack, _) in EXPECTED {
        let body = json!({ "attack": attack }).to_string();
        assert_eq!(gw.post("/e/app", &body).await.0, 200);
    }
    assert_eq!(gw.post("/e/app", r#"{"attack":"none"}"#).await.0, 200);

    let delivered = plain.wait_for(EXPECTED.len() + 1).await;
    assert!(delivered.iter().all(|r| r.header("x-tag") == Some("plain")));
    let survivor = attacked.wait_for(1).await;
    assert_eq!(survivor[0].header("x-transformed"), Some("yes"));
    let failures = ignored(&gw);
    assert_eq!(failures.len(), EXPECTED.len(), "{failures:?}");
    for failure in &failures {
        assert_eq!(failure.cause, "TRANSFORMATION_FAILED");
        let detail = failure.detail.as_deref().unwrap();
        assert!(
            detail.contains("\"attacks\"")
                && (detail.contains("worker process died") || detail.contains("timed out")),
            "{detail}"
        );
    }
    assert_pool_settled(&pool, &[]).await;
    assert_eq!(attacked.received().len(), 1);
}

fn own_pool(workers: usize, queue: usize) -> Arc<WorkerPool> {
    WorkerPool::shared(PoolSettings {
        worker_exe: env!("CARGO_BIN_EXE_hookgate").into(),
        workers,
        max_memory_bytes: 512 << 20,
        queue,
    })
}

fn load(pool: &Arc<WorkerPool>, code: &str, limits: TransformLimits) -> Transformation {
    Transformation::new(pool, "test", code, BTreeMap::new(), limits, Admission::Wait)
        .unwrap_or_else(|e| panic!("load failed: {e}"))
}

#[test]
fn a_timed_out_run_keeps_what_it_logged_and_later_runs_work() {
    let code = r#"addHandler('transform', (request) => {
        if (request.body.slow) {
            console.log('starting slow work');
            const spin = () => Promise.resolve().then(spin);
            spin();
        }
        return request;
    });"#;
    let limits = TransformLimits {
        timeout: Duration::from_millis(300),
        ..TransformLimits::default()
    };
    let transformation = load(&own_pool(1, 21), code, limits);
    let failure = transformation
        .run(&json!({ "body": { "slow": true } }), &json!({}))
        .unwrap_err();
    assert!(
        matches!(failure.error, TransformError::Timeout(_)),
        "{:?}",
        failure.error
    );
    assert_eq!(failure.error.to_string(), "timed out after 300 ms");
    assert_eq!(failure.logs.len(), 1);
    assert_eq!(failure.logs[0].message, "starting slow work");
    for _ in 0..3 {
        let output = transformation
            .run(&json!({ "body": { "slow": false } }), &json!({}))
            .unwrap();
        assert!(output.logs.is_empty());
    }
}

#[test]
fn concurrent_runs_of_different_scripts_on_shared_workers_are_all_correct() {
    let pool = own_pool(3, 22);
    let doubling = r#"addHandler('transform', (request) => {
        request.body = { result: request.body.n * 2 };
        return request;
    });"#;
    let negating = "addHandler('transform', (r) => { r.body = { result: -r.body.n }; return r; });";
    let scripts = [
        Arc::new(load(&pool, doubling, TransformLimits::default())),
        Arc::new(load(&pool, negating, TransformLimits::default())),
    ];
    let threads: Vec<_> = (0..6)
        .map(|t: i64| {
            let transformation = Arc::clone(&scripts[t as usize % 2]);
            std::thread::spawn(move || {
                for i in 0..40 {
                    let n = t * 1000 + i;
                    let request = json!({ "body": { "n": n } });
                    let output = transformation.run(&request, &json!({})).unwrap();
                    let expected = if t % 2 == 0 { n * 2 } else { -n };
                    assert_eq!(output.request["body"]["result"], expected);
                }
            })
        })
        .collect();
    for handle in threads {
        handle.join().unwrap();
    }
    assert!(pool.worker_pids().len() <= 3);
}

#[test]
fn a_native_stack_overflow_kills_only_its_worker() {
    // The 60,000-deep array of the API tests meets their timeout first in
    // debug builds; with time to spare, boa's native recursion overflows.
    let code = "addHandler('transform', (r) => {
        if (r.body.deep) { let a = []; for (let i = 0; i < 60000; i++) a = [a]; r.body = String(a).length; }
        return r;
    });";
    let limits = TransformLimits {
        timeout: Duration::from_secs(30),
        ..TransformLimits::default()
    };
    let pool = own_pool(1, 23);
    let transformation = load(&pool, code, limits);
    let worker = pool.worker_pids()[0];
    let failure = transformation
        .run(&json!({ "body": { "deep": true } }), &json!({}))
        .unwrap_err();
    assert_eq!(
        failure.error.to_string(),
        "the transformation's worker process died (aborted: out of its memory limit or native stack, see the gateway's log); the run was abandoned"
    );
    assert_eq!(is_running(worker), None);
    transformation
        .run(&json!({ "body": { "deep": false } }), &json!({}))
        .unwrap();
    assert_eq!(pool.worker_pids().len(), 1);
    assert_ne!(pool.worker_pids()[0], worker);
}

#[test]
fn a_memory_limit_too_small_for_a_worker_is_a_config_error() {
    let text = format!(
        "[server]\ntransform_worker_exe = \"{}\"\n[limits]\ntransform_max_memory_bytes = 1000000\n",
        env!("CARGO_BIN_EXE_hookgate")
    );
    let errors = hookgate::Config::parse(std::path::Path::new("gateway.toml"), &text)
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("limits.transform_max_memory_bytes: must be at least 268435456"),
        "{errors}"
    );
}

#[test]
fn a_run_handed_to_a_worker_that_died_idle_goes_to_a_fresh_one() {
    let pool = own_pool(1, 24);
    let code = "addHandler('transform', (r) => { r.body = 'ok'; return r; });";
    let transformation = load(&pool, code, TransformLimits::default());
    let worker = pool.worker_pids()[0];
    // SAFETY: kill only sends a signal, to a worker this test's pool started.
    assert_eq!(
        unsafe { libc::kill(worker as libc::pid_t, libc::SIGKILL) },
        0
    );
    // Dead but not yet reaped: only the pool's next checkout notices.
    let deadline = Instant::now() + Duration::from_secs(5);
    while thread_states(worker) != Some(vec!['Z']) {
        assert!(Instant::now() < deadline, "{:?}", thread_states(worker));
        std::thread::yield_now();
    }
    let output = transformation.run(&json!({}), &json!({})).unwrap();
    assert_eq!(output.request["body"], "ok");
    let fresh = pool.worker_pids();
    assert_eq!(fresh.len(), 1);
    assert_ne!(fresh[0], worker);
}

#[test]
fn workers_run_under_their_os_limits_without_the_gateways_environment() {
    let pool = WorkerPool::shared(PoolSettings {
        worker_exe: env!("CARGO_BIN_EXE_hookgate").into(),
        workers: 1,
        max_memory_bytes: 300 << 20,
        queue: 25,
    });
    let code = "addHandler('transform', (r) => r);";
    let transformation = load(&pool, code, TransformLimits::default());
    transformation.run(&json!({}), &json!({})).unwrap();
    let worker = pool.worker_pids()[0];
    let limits = std::fs::read_to_string(format!("/proc/{worker}/limits")).unwrap();
    let limit = |name: &str| -> Vec<String> {
        let line = limits.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..]
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(limit("Max address space")[..2], ["314572800", "314572800"]);
    assert_eq!(limit("Max core file size")[..2], ["0", "0"]);
    // Armed for the next command: soft limit set, hard limit open.
    assert_eq!(limit("Max cpu time")[1], "unlimited");
    assert_ne!(limit("Max cpu time")[0], "unlimited");
    let environment = std::fs::read(format!("/proc/{worker}/environ")).unwrap();
    assert_eq!(environment, b"MIMALLOC_ARENA_RESERVE=0\0");
}
