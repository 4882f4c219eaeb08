//! A connection's live rates on the Connections page: requests per minute
//! (events created), its destination's success rate and p95 latency, each
//! with an inline SVG sparkline of the last hour (server-rendered, no chart
//! library), from `metrics::Rates`; and the same charts of one outbound
//! endpoint for the customer portal.

use crate::metrics::{MinuteRates, Rates};
use maud::{html, Markup};

const WIDTH: f64 = 120.0;
const HEIGHT: f64 = 24.0;

/// The three rate cells of one connection.
pub fn cells(rates: &Rates, connection: &str, destination: &str) -> Markup {
    let events = rates.connection(connection);
    let attempts = rates.destination(destination);
    html! {
        td.rate { (requests(&events)) }
        td.rate { (success(&attempts)) }
        td.rate { (latency(&attempts)) }
    }
}

/// An outbound endpoint's success rate and latency (it is delivered to as
/// the destination named by its id), for the portal's endpoint page.
pub fn endpoint_charts(rates: &Rates, endpoint_id: &str) -> Markup {
    let attempts = rates.destination(endpoint_id);
    let charts = [
        ("Success rate", success(&attempts)),
        ("Latency", latency(&attempts)),
    ];
    html! { section #endpoint-rates aria-label="Last hour" { (super::show::facts(&charts)) } }
}

fn requests(events: &[MinuteRates]) -> Markup {
    let per_minute: Vec<f64> = events.iter().map(|minute| minute.count as f64).collect();
    let total: u64 = events.iter().map(|minute| minute.count).sum();
    let last = events.last().map_or(0, |minute| minute.count);
    html! {
        (sparkline("Requests per minute, last hour", &per_minute))
        br; (last) "/min" span.muted { " · " (total) " in 60 min" }
    }
}

fn success(attempts: &[MinuteRates]) -> Markup {
    // A minute without attempts draws at the bottom: nothing succeeded.
    let per_minute: Vec<f64> = attempts.iter().map(success_ratio).collect();
    let (count, successes) = attempts.iter().fold((0, 0), |(count, successes), minute| {
        (count + minute.count, successes + minute.successes)
    });
    html! {
        (sparkline("Success rate per minute, last hour", &per_minute))
        br;
        @if count == 0 { span.muted { "no attempts" } }
        @else { (successes * 100 / count) " % ok" span.muted { " · " (count) " attempts" } }
    }
}

fn success_ratio(minute: &MinuteRates) -> f64 {
    if minute.count == 0 {
        0.0
    } else {
        minute.successes as f64 / minute.count as f64
    }
}

fn latency(attempts: &[MinuteRates]) -> Markup {
    let per_minute: Vec<f64> = attempts
        .iter()
        .map(|minute| minute.p95_seconds.unwrap_or(0.0))
        .collect();
    let latest = attempts.iter().rev().find_map(|minute| minute.p95_seconds);
    html! {
        (sparkline("p95 latency per minute, last hour", &per_minute))
        br;
        @match latest {
            // The window keeps histogram buckets: p95 is known up to its bound.
            Some(seconds) => { "p95 ≤ " (milliseconds(seconds)) }
            None => span.muted { "—" },
        }
    }
}

fn milliseconds(seconds: f64) -> String {
    format!("{} ms", (seconds * 1000.0).round())
}

/// `values` (oldest first) as a polyline scaled to the largest.
fn sparkline(label: &str, values: &[f64]) -> Markup {
    let top = values.iter().copied().fold(0.0, f64::max);
    let step = WIDTH / (values.len().max(2) - 1) as f64;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let height = if top > 0.0 {
                value / top * (HEIGHT - 2.0)
            } else {
                0.0
            };
            format!("{:.1},{:.1}", i as f64 * step, HEIGHT - 1.0 - height)
        })
        .collect();
    html! {
        svg.sparkline xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(label)
            width=(WIDTH) height=(HEIGHT) viewBox={"0 0 " (WIDTH) " " (HEIGHT)} {
            title { (label) }
            polyline fill="none" stroke="currentColor" stroke-width="1.5" points=(points.join(" ")) {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_scales_to_its_largest_value() {
        let svg = sparkline("x", &[0.0, 2.0, 4.0]).into_string();
        assert!(
            svg.contains(r#"points="0.0,23.0 60.0,12.0 120.0,1.0""#),
            "{svg}"
        );
    }

    #[test]
    fn an_empty_series_draws_a_flat_line() {
        let svg = sparkline("x", &[0.0, 0.0]).into_string();
        assert!(svg.contains(r#"points="0.0,23.0 120.0,23.0""#), "{svg}");
    }
}
