//! The load client of the ingest and cluster benches: N keep-alive HTTP/1.1
//! connections, one task each, sending the same prepared POST back to back
//! (`support::wire` says why not reqwest), on a tokio runtime of their own.
//! Only 2xx answers count as accepted; everything else is an error.

use crate::support;
use crate::support::wire::{content_length, invalid, Wire};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

/// How long and how hard to load: `connections` for `warmup` then
/// `measured`, or (`requests`) a fixed count one at a time.
#[derive(Clone)]
pub struct Plan {
    pub connections: usize,
    pub warmup: Duration,
    pub measured: Duration,
    /// A fixed count of requests, one at a time, instead of timed phases.
    pub requests: Option<u64>,
}

impl Plan {
    /// `defaults` overridden by `--connections` / `HOOKGATE_BENCH_CONNECTIONS`,
    /// `--seconds` / `HOOKGATE_BENCH_SECONDS`, `--warmup` /
    /// `HOOKGATE_BENCH_WARMUP_SECONDS` and `--requests` / `HOOKGATE_BENCH_REQUESTS`.
    pub fn from(args: &[String], defaults: &Plan) -> Plan {
        let number = |flag, env, default| support::setting(args, flag, env, default);
        let plan = Plan {
            connections: number(
                "--connections",
                "HOOKGATE_BENCH_CONNECTIONS",
                defaults.connections as f64,
            )
            .max(1.0) as usize,
            warmup: seconds(number(
                "--warmup",
                "HOOKGATE_BENCH_WARMUP_SECONDS",
                defaults.warmup.as_secs_f64(),
            )),
            measured: seconds(number(
                "--seconds",
                "HOOKGATE_BENCH_SECONDS",
                defaults.measured.as_secs_f64(),
            )),
            requests: Some(number("--requests", "HOOKGATE_BENCH_REQUESTS", 0.0) as u64)
                .filter(|requests| *requests > 0)
                .or(defaults.requests),
        };
        plan.one_at_a_time()
    }

    /// With `requests`: one connection, no warm-up, no time limit.
    pub fn one_at_a_time(self) -> Plan {
        match self.requests {
            Some(_) => Plan {
                connections: 1,
                warmup: Duration::ZERO,
                measured: Duration::from_secs(24 * 3600),
                ..self
            },
            None => self,
        }
    }
}

pub fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A JSON object of exactly `size` bytes.
pub fn json_body(size: usize) -> Vec<u8> {
    let head = r#"{"type":"order.created","id":"evt_0000000000000001","data":{"amount":4200,"currency":"EUR","note":""#;
    let tail = r#""}}"#;
    let padding = size - head.len() - tail.len();
    let body = format!("{head}{}{tail}", "x".repeat(padding));
    assert_eq!(body.len(), size);
    debug_assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok());
    body.into_bytes()
}

/// A `POST {path}` to `addr` with a JSON body, as bytes on the wire;
/// `extra_headers`: more header lines, each ending in `\r\n`.
pub fn json_post(addr: SocketAddr, path: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{extra_headers}content-length: {}\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

pub struct Connection {
    wire: Wire,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> io::Result<Connection> {
        let wire = Wire::new(TcpStream::connect(addr).await?)?;
        Ok(Connection { wire })
    }

    /// Sends `request` and reads the whole answer; returns its status. After
    /// an error the connection is not fit for another request.
    pub async fn exchange(&mut self, request: &[u8]) -> io::Result<u16> {
        self.wire.write_all(request).await?;
        let ((status, body_bytes), head_bytes) = self
            .wire
            .read_head(read_response)
            .await?
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        self.wire.skip(head_bytes + body_bytes).await?;
        Ok(status)
    }
}

/// A whole response head at the start of `buffer`: ((status, body length), head length).
fn read_response(buffer: &[u8]) -> io::Result<Option<((u16, usize), usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(buffer).map_err(invalid)? {
        httparse::Status::Complete(head_bytes) => {
            let status = response.code.unwrap_or_default();
            Ok(Some((
                (status, content_length(response.headers)?),
                head_bytes,
            )))
        }
        httparse::Status::Partial => Ok(None),
    }
}

pub struct LoadReport {
    /// 200s completed inside the measured window.
    pub ok: u64,
    /// Non-200 answers inside the measured window.
    bad_status: u64,
    /// Connection / protocol failures inside the measured window.
    transport_errors: u64,
    first_error: Option<String>,
    /// Every 200 received, warm-up included: what the sink must eventually get.
    pub acknowledged: u64,
    window: Duration,
    latencies_ns: Vec<u64>,
    pub load_started: Instant,
    pub load_ended: Instant,
    sockets: Option<SocketCount>,
    /// CPU this process used during the load (warm-up included).
    pub cpu: support::CpuSplit,
}

#[derive(Default)]
struct ConnectionTally {
    ok: u64,
    bad_status: u64,
    transport_errors: u64,
    first_error: Option<String>,
    acknowledged: u64,
    latencies_ns: Vec<u64>,
}

/// The load of `targets`' requests (each a whole HTTP request, sent back to
/// back on every connection to the server it names), the connections dealt
/// out over the targets in turn.
pub fn run(rt: &Runtime, plan: &Plan, targets: &[(SocketAddr, Vec<u8>)]) -> LoadReport {
    let targets: Vec<(SocketAddr, Arc<[u8]>)> = targets
        .iter()
        .map(|(addr, request)| (*addr, request.as_slice().into()))
        .collect();
    let load_started = Instant::now();
    let cpu_at_start = support::CpuReading::now();
    let measure_from = load_started + plan.warmup;
    let measure_until = measure_from + plan.measured;
    let (tallies, sockets) = rt.block_on(async {
        let tasks: Vec<_> = (0..plan.connections)
            .map(|n| {
                let (addr, request) = targets[n % targets.len()].clone();
                let window = Window {
                    addr,
                    request,
                    measure_from,
                    measure_until,
                    requests: plan.requests,
                };
                tokio::spawn(connection_loop(window))
            })
            .collect();
        // Look at the server's sockets near the end of the window: a keep-alive
        // regression shows as fresh connections and a pile of TIME_WAIT.
        let sockets = match plan.requests {
            Some(_) => None,
            None => {
                let probe_at = measure_until - plan.measured.min(Duration::from_millis(500));
                tokio::time::sleep_until(probe_at.into()).await;
                SocketCount::of_port(targets[0].0.port())
            }
        };
        let mut tallies = Vec::with_capacity(tasks.len());
        for task in tasks {
            tallies.push(task.await.expect("load task"));
        }
        (tallies, sockets)
    });
    let load_ended = Instant::now();
    let mut report = LoadReport {
        ok: 0,
        bad_status: 0,
        transport_errors: 0,
        first_error: None,
        acknowledged: 0,
        window: plan.measured.min(load_ended - load_started),
        latencies_ns: Vec::new(),
        load_started,
        load_ended,
        sockets,
        cpu: support::CpuSplit::since(&cpu_at_start),
    };
    for tally in tallies {
        report.ok += tally.ok;
        report.bad_status += tally.bad_status;
        report.transport_errors += tally.transport_errors;
        report.acknowledged += tally.acknowledged;
        report.first_error = report.first_error.or(tally.first_error);
        report.latencies_ns.extend(tally.latencies_ns);
    }
    report.latencies_ns.sort_unstable();
    report
}

/// What one connection sends, where, and when its answers count.
struct Window {
    addr: SocketAddr,
    request: Arc<[u8]>,
    measure_from: Instant,
    measure_until: Instant,
    /// Stop once this many are acknowledged (`--requests`).
    requests: Option<u64>,
}

/// Sends the window's request on `connection`, opened first if need be and
/// dropped after an error.
async fn exchange(connection: &mut Option<Connection>, window: &Window) -> std::io::Result<u16> {
    let open = match connection {
        Some(open) => open,
        None => connection.insert(Connection::open(window.addr).await?),
    };
    let outcome = open.exchange(&window.request).await;
    if outcome.is_err() {
        *connection = None;
    }
    outcome
}

/// One keep-alive HTTP/1.1 connection, requests back to back until the
/// window closes; after an error it connects again.
async fn connection_loop(window: Window) -> ConnectionTally {
    let mut tally = ConnectionTally::default();
    let mut connection = None;
    loop {
        let started = Instant::now();
        let sent_all = window.requests.is_some_and(|n| tally.acknowledged >= n);
        if started >= window.measure_until || sent_all {
            return tally;
        }
        let outcome = exchange(&mut connection, &window).await;
        let finished = Instant::now();
        let accepted = matches!(outcome, Ok(200..=299));
        if accepted {
            tally.acknowledged += 1;
        }
        if started < window.measure_from || finished > window.measure_until {
            if outcome.is_err() {
                // Don't spin on a refused connection.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            continue;
        }
        match outcome {
            Ok(_) if accepted => {
                tally.ok += 1;
                tally
                    .latencies_ns
                    .push((finished - started).as_nanos() as u64);
            }
            Ok(status) => {
                tally.bad_status += 1;
                tally
                    .first_error
                    .get_or_insert_with(|| format!("HTTP {status}"));
            }
            Err(error) => {
                tally.transport_errors += 1;
                tally
                    .first_error
                    .get_or_insert_with(|| format!("{error:?}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

impl LoadReport {
    pub fn requests_per_second(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }

    /// Nearest-rank percentile of the 200s' latencies.
    pub fn percentile(&self, q: f64) -> Option<Duration> {
        if self.latencies_ns.is_empty() {
            return None;
        }
        let rank = (q * self.latencies_ns.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies_ns.len()) - 1;
        Some(Duration::from_nanos(self.latencies_ns[index]))
    }

    pub fn print(&self) {
        println!(
            "  requests/s: {:.0}  ({} x 200 in {:.1} s)",
            self.requests_per_second(),
            self.ok,
            self.window.as_secs_f64()
        );
        println!(
            "  latency: p50 {}  p99 {}  p99.9 {}  max {}",
            format_latency(self.percentile(0.50)),
            format_latency(self.percentile(0.99)),
            format_latency(self.percentile(0.999)),
            format_latency(self.percentile(1.0)),
        );
        println!(
            "  errors: {} (non-200: {}, transport: {}){}",
            self.bad_status + self.transport_errors,
            self.bad_status,
            self.transport_errors,
            self.first_error
                .as_ref()
                .map_or(String::new(), |e| format!("; first: {e}")),
        );
        if let Some(sockets) = &self.sockets {
            println!(
                "  server sockets near the end: {} established, {} in TIME_WAIT",
                sockets.established, sockets.time_wait
            );
        }
        println!(
            "  CPU per acknowledged request during the load: {} (by thread; with delivery running, its share counts too)",
            self.cpu.per(self.acknowledged)
        );
    }
}

pub fn format_latency(latency: Option<Duration>) -> String {
    match latency {
        Some(d) => format!("{:.2} ms", d.as_secs_f64() * 1e3),
        None => "n/a".to_string(),
    }
}

/// Server-side sockets of a loopback port (the first target's), from /proc/net/tcp.
struct SocketCount {
    established: usize,
    time_wait: usize,
}

impl SocketCount {
    fn of_port(port: u16) -> Option<SocketCount> {
        let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
        let local = format!(":{port:04X}");
        let mut count = SocketCount {
            established: 0,
            time_wait: 0,
        };
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local_addr), Some(state)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            if !local_addr.ends_with(&local) {
                continue;
            }
            match *state {
                "01" => count.established += 1,
                "06" => count.time_wait += 1,
                _ => {}
            }
        }
        Some(count)
    }
}
