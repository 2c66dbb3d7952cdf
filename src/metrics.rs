//! Request, traffic and upstream counters of the proxy, rendered in the
//! Prometheus text exposition format (version 0.0.4). The operator
//! listener in [`crate::operator`] serves them together with the key
//! operation counters of [`crate::keys::KeyStats`].
//!
//! Every label value comes from a fixed set (operation names, HTTP status
//! codes, error kinds), so the number of series is bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds of the request latency histogram buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The kind of an upstream error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// The upstream could not be reached, timed out, or sent a response
    /// that s3seal could not use (502 or 504 to the client).
    RequestFailed,
    /// The upstream responded with a 5xx status, which was relayed.
    ErrorStatus,
}

impl UpstreamErrorKind {
    fn label(self) -> &'static str {
        match self {
            Self::RequestFailed => "request_failed",
            Self::ErrorStatus => "error_status",
        }
    }
}

#[derive(Default)]
struct Histogram {
    /// Counts per bucket of [`LATENCY_BUCKETS`], not cumulative.
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(index) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[index] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Default)]
struct RequestCounters {
    /// Requests by operation and status.
    totals: BTreeMap<(&'static str, u16), u64>,
    /// Latency by operation.
    latency: BTreeMap<&'static str, Histogram>,
}

/// The proxy's counters. Share it by `Arc`.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<RequestCounters>,
    in_flight: AtomicI64,
    client_received_bytes: AtomicU64,
    client_sent_bytes: AtomicU64,
    upstream_request_failed: AtomicU64,
    upstream_error_status: AtomicU64,
    /// Result of the last readiness check: 0 before the first, 1 ready,
    /// 2 not ready.
    readiness: AtomicU8,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Counts a request that started; [`Self::request_finished`] ends it.
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a finished request. `elapsed` is the time until the response
    /// head was ready; a streamed body may take longer.
    pub fn request_finished(&self, operation: &'static str, status: u16, elapsed: Duration) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        *requests.totals.entry((operation, status)).or_default() += 1;
        requests
            .latency
            .entry(operation)
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    pub fn upstream_error(&self, kind: UpstreamErrorKind) {
        let counter = match kind {
            UpstreamErrorKind::RequestFailed => &self.upstream_request_failed,
            UpstreamErrorKind::ErrorStatus => &self.upstream_error_status,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Stores the result of a readiness check and returns whether it
    /// differs from the previous one. The first check counts as a change.
    pub fn set_ready(&self, ready: bool) -> bool {
        let value = if ready { 1 } else { 2 };
        self.readiness.swap(value, Ordering::Relaxed) != value
    }

    /// Adds bytes read from client connections.
    pub fn add_received(&self, bytes: u64) {
        self.client_received_bytes
            .fetch_add(bytes, Ordering::Relaxed);
    }

    /// Adds bytes written to client connections.
    pub fn add_sent(&self, bytes: u64) {
        self.client_sent_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Returns the number of finished requests with `operation` and
    /// `status`.
    pub fn requests(&self, operation: &str, status: u16) -> u64 {
        let requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        requests
            .totals
            .iter()
            .filter(|((op, st), _)| *op == operation && *st == status)
            .map(|(_, count)| *count)
            .sum()
    }

    /// Appends the counters in the Prometheus text format to `out`.
    pub fn render(&self, out: &mut String) {
        let requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);

        header(
            out,
            "s3seal_requests_total",
            "counter",
            "Client requests by S3 operation and response status.",
        );
        for ((operation, status), count) in &requests.totals {
            let _ = writeln!(
                out,
                "s3seal_requests_total{{operation=\"{operation}\",status=\"{status}\"}} {count}"
            );
        }

        header(
            out,
            "s3seal_request_duration_seconds",
            "histogram",
            "Time from the request head to the response head, by S3 operation.",
        );
        for (operation, histogram) in &requests.latency {
            let mut cumulative = 0;
            for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "s3seal_request_duration_seconds_bucket{{operation=\"{operation}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "s3seal_request_duration_seconds_bucket{{operation=\"{operation}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "s3seal_request_duration_seconds_sum{{operation=\"{operation}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "s3seal_request_duration_seconds_count{{operation=\"{operation}\"}} {}",
                histogram.count
            );
        }
        drop(requests);

        header(
            out,
            "s3seal_requests_in_flight",
            "gauge",
            "Client requests whose response head is not ready yet.",
        );
        let _ = writeln!(
            out,
            "s3seal_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );

        for (name, help, counter) in [
            (
                "s3seal_client_received_bytes_total",
                "Bytes read from client connections, headers and TLS framing included.",
                &self.client_received_bytes,
            ),
            (
                "s3seal_client_sent_bytes_total",
                "Bytes written to client connections, headers and TLS framing included.",
                &self.client_sent_bytes,
            ),
        ] {
            header(out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", counter.load(Ordering::Relaxed));
        }

        header(
            out,
            "s3seal_upstream_errors_total",
            "counter",
            "Client requests that failed at the upstream, by kind.",
        );
        for (kind, counter) in [
            (
                UpstreamErrorKind::RequestFailed,
                &self.upstream_request_failed,
            ),
            (UpstreamErrorKind::ErrorStatus, &self.upstream_error_status),
        ] {
            let _ = writeln!(
                out,
                "s3seal_upstream_errors_total{{kind=\"{}\"}} {}",
                kind.label(),
                counter.load(Ordering::Relaxed)
            );
        }
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a metric family.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        for millis in [1, 20, 20, 70_000] {
            metrics.request_started();
            metrics.request_finished("GetObject", 200, Duration::from_millis(millis));
        }
        let mut text = String::new();
        metrics.render(&mut text);

        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{prefix} missing in\n{text}"))
                .to_string()
        };
        assert_eq!(
            line("s3seal_request_duration_seconds_bucket{operation=\"GetObject\",le=\"0.005\"}"),
            "s3seal_request_duration_seconds_bucket{operation=\"GetObject\",le=\"0.005\"} 1"
        );
        assert!(line(
            "s3seal_request_duration_seconds_bucket{operation=\"GetObject\",le=\"0.025\"}"
        )
        .ends_with(" 3"));
        assert!(
            line("s3seal_request_duration_seconds_bucket{operation=\"GetObject\",le=\"60\"}")
                .ends_with(" 3")
        );
        assert!(line(
            "s3seal_request_duration_seconds_bucket{operation=\"GetObject\",le=\"+Inf\"}"
        )
        .ends_with(" 4"));
        assert_eq!(
            line("s3seal_requests_total{"),
            "s3seal_requests_total{operation=\"GetObject\",status=\"200\"} 4"
        );
        assert_eq!(
            line("s3seal_requests_in_flight "),
            "s3seal_requests_in_flight 0"
        );
    }

    #[test]
    fn every_family_has_help_and_type() {
        let metrics = Metrics::default();
        let mut text = String::new();
        metrics.render(&mut text);
        for family in [
            "s3seal_requests_total",
            "s3seal_request_duration_seconds",
            "s3seal_requests_in_flight",
            "s3seal_client_received_bytes_total",
            "s3seal_client_sent_bytes_total",
            "s3seal_upstream_errors_total",
        ] {
            assert!(text.contains(&format!("# HELP {family} ")), "{family}");
            assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
        }
    }
}
