//! The end of a load: the sink that counts what the gateway delivers
//! (distinct by event id) and the wait until it has every acknowledged
//! request, with what that took.

use crate::support;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// The destination: counts deliveries, distinct by event id.
#[derive(Default)]
pub struct Sink {
    received: AtomicU64,
    event_ids: Mutex<HashSet<String>>,
}

impl Sink {
    pub fn distinct(&self) -> u64 {
        self.event_ids.lock().unwrap().len() as u64
    }
}

/// Serves a counting sink on `rt`: its address, and what it has received.
pub fn start_sink(rt: &Runtime) -> (SocketAddr, Arc<Sink>) {
    let sink = Arc::new(Sink::default());
    let counting = sink.clone();
    let on_request = move |headers: &[httparse::Header]| {
        counting.received.fetch_add(1, Ordering::Relaxed);
        let event_id = headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case("x-hookgate-event-id"))
            .and_then(|header| std::str::from_utf8(header.value).ok());
        if let Some(id) = event_id {
            counting.event_ids.lock().unwrap().insert(id.to_string());
        }
    };
    (support::sink::serve(rt, Arc::new(on_request)), sink)
}

pub struct DrainReport {
    acknowledged: u64,
    /// Distinct events at the sink when the load stopped.
    at_load_end: u64,
    /// Distinct events at the sink when the wait ended.
    pub delivered: u64,
    /// Requests received by the sink in all (retries / redeliveries included).
    received: u64,
    /// From the end of the load until every acknowledged request was delivered (or the timeout).
    drain_time: Duration,
    /// From the first request of the load to the end of the drain.
    pub total_time: Duration,
    pub complete: bool,
    /// CPU this process (load, warm-up, gateway and sink) used until then.
    pub cpu: Option<support::CpuSplit>,
}

/// Waits until the sink has `acknowledged` distinct events, or `timeout`.
pub fn wait_for_drain(
    sink: &Sink,
    acknowledged: u64,
    load_started: Instant,
    load_ended: Instant,
    timeout: Duration,
) -> DrainReport {
    let at_load_end = sink.distinct();
    let deadline = Instant::now() + timeout;
    let (delivered, complete) = loop {
        let delivered = sink.distinct();
        if delivered >= acknowledged {
            break (delivered, true);
        }
        if Instant::now() >= deadline {
            break (delivered, false);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let now = Instant::now();
    DrainReport {
        acknowledged,
        at_load_end,
        delivered,
        received: sink.received.load(Ordering::Relaxed),
        drain_time: now - load_ended,
        total_time: now - load_started,
        complete,
        cpu: None,
    }
}

impl DrainReport {
    /// µs of this process's CPU per delivered event, load to drain.
    pub fn cpu_per_event(&self) -> Option<f64> {
        let cpu = self.cpu.as_ref()?;
        Some(cpu.process_micros() / self.delivered.max(1) as f64)
    }

    /// Delivery rate during the drain (after the load stopped); none when
    /// there was too little left to drain for a rate to mean anything.
    pub fn events_per_second(&self) -> Option<f64> {
        let drained = self.delivered.saturating_sub(self.at_load_end);
        (drained > 0 && self.drain_time >= Duration::from_millis(250))
            .then(|| drained as f64 / self.drain_time.as_secs_f64())
    }

    pub fn print(&self) {
        let load_time = self.total_time.saturating_sub(self.drain_time);
        println!(
            "  delivery: {} acknowledged (warm-up included); {} delivered when the load stopped ({:.0} events/s delivered during the load)",
            self.acknowledged,
            self.at_load_end,
            self.at_load_end as f64 / load_time.as_secs_f64()
        );
        let outcome = if self.complete {
            "all delivered"
        } else {
            "GAVE UP (drain timeout)"
        };
        println!(
            "  drain: {outcome} {:.1} s after the load stopped ({} distinct events, {} sink requests); drain rate {} events/s; end to end {:.0} events/s",
            self.drain_time.as_secs_f64(),
            self.delivered,
            self.received,
            self.events_per_second()
                .map_or("n/a".to_string(), |rate| format!("{rate:.0}")),
            self.delivered as f64 / self.total_time.as_secs_f64(),
        );
        if let Some(cpu) = &self.cpu {
            println!(
                "  CPU per delivered event: {} (this process: load generator, gateway and sink, user + system; by thread)",
                cpu.per(self.delivered)
            );
        }
    }
}
