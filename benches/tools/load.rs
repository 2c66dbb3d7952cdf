//! The load driver: PutObject and GetObject against several targets (the
//! upstream directly, the reference hop, s3seal) in one run, interleaved so
//! that every comparison is made within the same run.
//!
//! Requests are signed with SigV4 (`UNSIGNED-PAYLOAD`, signed headers
//! `host`, `x-amz-content-sha256` and `x-amz-date`). Every loop is bounded
//! by a count, the small-object loops also by time, and every request by
//! `--request-timeout-secs`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;

use crate::common::{self, empty_body, BoxBody, PatternBody, FRAME_LEN};

const SMALL_OBJECT_LEN: u64 = 1024;
/// Number of 1 KiB objects that GetObject measurements read, round-robin.
const SMALL_OBJECT_COUNT: usize = 64;

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// JSON file with a list of targets: name, endpoint, bucket,
    /// access_key_id, secret_access_key and optionally pid (the proxy
    /// process whose CPU time and peak memory are recorded).
    #[arg(long)]
    targets: PathBuf,
    /// File that receives the results as JSON.
    #[arg(long)]
    out: PathBuf,
    /// Size of each large object, in MiB.
    #[arg(long, default_value_t = 1024)]
    large_mib: u64,
    /// Runs of every large-object measurement.
    #[arg(long, default_value_t = 3)]
    large_runs: usize,
    /// Concurrent streams of the large-object measurements.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    large_streams: Vec<usize>,
    /// Runs of every small-object measurement.
    #[arg(long, default_value_t = 5)]
    small_runs: usize,
    /// Concurrent requests of the small-object measurements.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    small_concurrency: Vec<usize>,
    /// Duration of one small-object measurement, in seconds.
    #[arg(long, default_value_t = 1.5)]
    small_seconds: f64,
    /// Maximum requests of one small-object measurement.
    #[arg(long, default_value_t = 100_000)]
    small_max_ops: u64,
    /// Delete each uploaded large object after its measurement, for an
    /// upstream that stores `discard/` keys (s3s-fs).
    #[arg(long)]
    delete_after_put: bool,
    /// Clock ticks per second of /proc/PID/stat (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    clk_tck: u64,
    /// Region that requests are signed for.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Time limit of one request, including its body, in seconds.
    #[arg(long, default_value_t = 300)]
    request_timeout_secs: u64,
}

#[derive(Deserialize, Debug, Clone)]
struct TargetSpec {
    name: String,
    endpoint: String,
    bucket: String,
    access_key_id: String,
    secret_access_key: String,
    pid: Option<u32>,
    /// Measured with 1 KiB objects only: a second bucket rule of a proxy
    /// that another target measures in full.
    #[serde(default)]
    small_only: bool,
}

struct Target {
    spec: TargetSpec,
    authority: http::uri::Authority,
    credentials: Credentials,
    client: Client<HttpConnector, BoxBody>,
}

struct Driver {
    targets: Vec<Target>,
    region: String,
    request_timeout: Duration,
    /// 1 MiB of random bytes: every object body repeats it.
    pattern: Bytes,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Put,
    Get,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
        }
    }
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let specs: Vec<TargetSpec> = serde_json::from_slice(&std::fs::read(&args.targets)?)?;
    anyhow::ensure!(
        !specs.is_empty(),
        "{} lists no target",
        args.targets.display()
    );
    let mut targets = Vec::new();
    for spec in specs {
        let uri: Uri = spec.endpoint.parse()?;
        anyhow::ensure!(
            uri.scheme_str() == Some("http"),
            "target {} must have an http:// endpoint",
            spec.name
        );
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("target {} has no host", spec.name))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .build(connector);
        let credentials = Credentials::new(
            &spec.access_key_id,
            &spec.secret_access_key,
            None,
            None,
            "s3seal-bench",
        );
        targets.push(Target {
            spec,
            authority,
            credentials,
            client,
        });
    }
    let mut pattern = vec![0u8; FRAME_LEN];
    rand::rngs::OsRng.fill_bytes(&mut pattern);
    let driver = Arc::new(Driver {
        targets,
        region: args.region.clone(),
        request_timeout: Duration::from_secs(args.request_timeout_secs),
        pattern: Bytes::from(pattern),
    });

    let started = Instant::now();
    let large_len = args.large_mib << 20;
    driver.setup(large_len).await?;
    eprintln!("setup done in {:.1} s", started.elapsed().as_secs_f64());

    let large = driver.large_phase(&args, large_len).await?;
    let small = driver.small_phase(&args).await?;

    let mut peak_rss_kib = serde_json::Map::new();
    for target in driver.targets.iter().filter(|t| !t.spec.small_only) {
        if let Some(pid) = target.spec.pid {
            peak_rss_kib.insert(target.spec.name.clone(), json!(common::peak_rss_kib(pid)?));
        }
    }
    let result = json!({
        "large_object_bytes": large_len,
        "small_object_bytes": SMALL_OBJECT_LEN,
        "large": large,
        "small": small,
        "peak_rss_kib": peak_rss_kib,
        "seconds": started.elapsed().as_secs_f64(),
    });
    std::fs::write(&args.out, serde_json::to_vec_pretty(&result)?)?;
    eprintln!(
        "load driver done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

impl Driver {
    /// Creates the buckets and the objects that GetObject measurements
    /// read, and checks one large and one small object byte for byte.
    async fn setup(&self, large_len: u64) -> anyhow::Result<()> {
        for target in &self.targets {
            let response = self
                .send(target, Method::PUT, "", empty_body(), None)
                .await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::ensure!(
                status.is_success() || status == StatusCode::CONFLICT,
                "{}: CreateBucket {} returned {status}: {}",
                target.spec.name,
                target.spec.bucket,
                String::from_utf8_lossy(&body)
            );

            if !target.spec.small_only {
                self.put(target, "big", large_len).await?;
                self.get_and_verify(target, "big", large_len).await?;
            }
            for index in 0..SMALL_OBJECT_COUNT {
                self.put(target, &format!("small/{index}"), SMALL_OBJECT_LEN)
                    .await?;
            }
            self.get_and_verify(target, "small/0", SMALL_OBJECT_LEN)
                .await?;
        }
        Ok(())
    }

    async fn large_phase(
        self: &Arc<Self>,
        args: &LoadArgs,
        len: u64,
    ) -> anyhow::Result<Vec<serde_json::Value>> {
        let mut results = Vec::new();
        for run in 0..args.large_runs {
            for &streams in &args.large_streams {
                for op in [Op::Put, Op::Get] {
                    for target_index in rotated(self.targets.len(), run) {
                        let target = &self.targets[target_index];
                        if target.spec.small_only {
                            continue;
                        }
                        let cpu_before = target.spec.pid.map(common::cpu_ticks).transpose()?;
                        let start = Instant::now();
                        let mut tasks = Vec::new();
                        for stream in 0..streams {
                            let driver = Arc::clone(self);
                            let key = match op {
                                Op::Put => format!("discard/{run}-{stream}"),
                                Op::Get => "big".to_owned(),
                            };
                            tasks.push(tokio::spawn(async move {
                                let target = &driver.targets[target_index];
                                match op {
                                    Op::Put => driver.put(target, &key, len).await,
                                    Op::Get => driver.get(target, &key, len).await,
                                }
                            }));
                        }
                        for task in tasks {
                            task.await??;
                        }
                        let seconds = start.elapsed().as_secs_f64();
                        let cpu_after = target.spec.pid.map(common::cpu_ticks).transpose()?;
                        let bytes = len * streams as u64;
                        let cpu_seconds = match (cpu_before, cpu_after) {
                            (Some(before), Some(after)) => {
                                Some((after - before) as f64 / args.clk_tck as f64)
                            }
                            _ => None,
                        };
                        let gigabytes = bytes as f64 / 1e9;
                        let record = json!({
                            "run": run,
                            "op": op.name(),
                            "streams": streams,
                            "target": target.spec.name,
                            "bytes": bytes,
                            "seconds": seconds,
                            "gb_per_s": gigabytes / seconds,
                            "cpu_seconds": cpu_seconds,
                            "cpu_seconds_per_gb": cpu_seconds.map(|cpu| cpu / gigabytes),
                        });
                        eprintln!("{record}");
                        results.push(record);

                        if op == Op::Put && args.delete_after_put {
                            for stream in 0..streams {
                                self.delete(target, &format!("discard/{run}-{stream}"))
                                    .await?;
                            }
                        }
                    }
                }
            }
        }
        Ok(results)
    }

    async fn small_phase(
        self: &Arc<Self>,
        args: &LoadArgs,
    ) -> anyhow::Result<Vec<serde_json::Value>> {
        let limit = Duration::from_secs_f64(args.small_seconds);
        let mut results = Vec::new();
        for run in 0..args.small_runs {
            for &concurrency in &args.small_concurrency {
                for target_index in rotated(self.targets.len(), run) {
                    // Opens `concurrency` pooled connections before timing.
                    self.small_measurement(target_index, Op::Get, concurrency, limit / 5, 1000)
                        .await?;
                    for op in [Op::Put, Op::Get] {
                        let target = &self.targets[target_index];
                        let cpu_before = target.spec.pid.map(common::cpu_ticks).transpose()?;
                        let (mut latencies, seconds) = self
                            .small_measurement(
                                target_index,
                                op,
                                concurrency,
                                limit,
                                args.small_max_ops,
                            )
                            .await?;
                        let cpu_after = target.spec.pid.map(common::cpu_ticks).transpose()?;
                        latencies.sort_unstable();
                        let ops = latencies.len() as u64;
                        let cpu_us_per_op = match (cpu_before, cpu_after) {
                            (Some(before), Some(after)) => Some(
                                (after - before) as f64 / args.clk_tck as f64 * 1e6 / ops as f64,
                            ),
                            _ => None,
                        };
                        let record = json!({
                            "run": run,
                            "op": op.name(),
                            "concurrency": concurrency,
                            "target": target.spec.name,
                            "ops": ops,
                            "seconds": seconds,
                            "ops_per_s": ops as f64 / seconds,
                            "p50_ms": percentile_ms(&latencies, 0.50),
                            "p99_ms": percentile_ms(&latencies, 0.99),
                            "cpu_us_per_op": cpu_us_per_op,
                        });
                        eprintln!("{record}");
                        results.push(record);
                    }
                }
            }
        }
        Ok(results)
    }

    /// Runs `concurrency` workers that repeat `op` on 1 KiB objects until
    /// `limit` has passed or `max_ops` requests have started. Returns every
    /// request's latency and the wall time.
    async fn small_measurement(
        self: &Arc<Self>,
        target_index: usize,
        op: Op,
        concurrency: usize,
        limit: Duration,
        max_ops: u64,
    ) -> anyhow::Result<(Vec<Duration>, f64)> {
        let started_ops = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let deadline = start + limit;
        let mut workers = Vec::new();
        for worker in 0..concurrency {
            let driver = Arc::clone(self);
            let started_ops = Arc::clone(&started_ops);
            workers.push(tokio::spawn(async move {
                let target = &driver.targets[target_index];
                let mut latencies = Vec::new();
                let mut count = 0usize;
                while Instant::now() < deadline
                    && started_ops.fetch_add(1, Ordering::Relaxed) < max_ops
                {
                    let begin = Instant::now();
                    match op {
                        Op::Put => {
                            let key = format!("small-put/{worker}");
                            driver.put(target, &key, SMALL_OBJECT_LEN).await?;
                        }
                        Op::Get => {
                            let key = format!("small/{}", (worker + count) % SMALL_OBJECT_COUNT);
                            driver.get(target, &key, SMALL_OBJECT_LEN).await?;
                        }
                    }
                    latencies.push(begin.elapsed());
                    count += 1;
                }
                anyhow::Ok(latencies)
            }));
        }
        let mut latencies = Vec::new();
        for worker in workers {
            latencies.extend(worker.await??);
        }
        Ok((latencies, start.elapsed().as_secs_f64()))
    }

    /// Uploads `len` bytes of the pattern to `key`.
    async fn put(&self, target: &Target, key: &str, len: u64) -> anyhow::Result<()> {
        let body = PatternBody::new(self.pattern.clone(), len).boxed_unsync();
        let work = async {
            let response = self.send(target, Method::PUT, key, body, Some(len)).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::ensure!(
                status.is_success(),
                "{}: PutObject {key} returned {status}: {}",
                target.spec.name,
                String::from_utf8_lossy(&body)
            );
            Ok(())
        };
        self.with_timeout(&target.spec.name, key, work).await
    }

    /// Downloads `key` and checks that it is `len` bytes long.
    async fn get(&self, target: &Target, key: &str, len: u64) -> anyhow::Result<()> {
        let work = async {
            let response = self
                .send(target, Method::GET, key, empty_body(), None)
                .await?;
            let status = response.status();
            let mut body = response.into_body();
            if !status.is_success() {
                let text = body.collect().await?.to_bytes();
                anyhow::bail!(
                    "{}: GetObject {key} returned {status}: {}",
                    target.spec.name,
                    String::from_utf8_lossy(&text)
                );
            }
            let mut received = 0u64;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    received += data.len() as u64;
                }
            }
            anyhow::ensure!(
                received == len,
                "{}: GetObject {key} returned {received} bytes, expected {len}",
                target.spec.name
            );
            Ok(())
        };
        self.with_timeout(&target.spec.name, key, work).await
    }

    /// Downloads `key` and compares it with the pattern byte for byte.
    async fn get_and_verify(&self, target: &Target, key: &str, len: u64) -> anyhow::Result<()> {
        let work = async {
            let response = self
                .send(target, Method::GET, key, empty_body(), None)
                .await?;
            let status = response.status();
            anyhow::ensure!(
                status.is_success(),
                "{}: GetObject {key} returned {status}",
                target.spec.name
            );
            let mut body = response.into_body();
            let mut offset = 0u64;
            while let Some(frame) = body.frame().await {
                let Ok(data) = frame?.into_data() else {
                    continue;
                };
                let mut checked = 0usize;
                while checked < data.len() {
                    let start = ((offset + checked as u64) % self.pattern.len() as u64) as usize;
                    let take = (self.pattern.len() - start).min(data.len() - checked);
                    anyhow::ensure!(
                        data[checked..checked + take] == self.pattern[start..start + take],
                        "{}: GetObject {key} differs from what was uploaded near byte {}",
                        target.spec.name,
                        offset + checked as u64
                    );
                    checked += take;
                }
                offset += data.len() as u64;
            }
            anyhow::ensure!(
                offset == len,
                "{}: GetObject {key} returned {offset} bytes, expected {len}",
                target.spec.name
            );
            Ok(())
        };
        self.with_timeout(&target.spec.name, key, work).await
    }

    async fn delete(&self, target: &Target, key: &str) -> anyhow::Result<()> {
        let work = async {
            let response = self
                .send(target, Method::DELETE, key, empty_body(), None)
                .await?;
            let status = response.status();
            anyhow::ensure!(
                status.is_success(),
                "{}: DeleteObject {key} returned {status}",
                target.spec.name
            );
            Ok(())
        };
        self.with_timeout(&target.spec.name, key, work).await
    }

    async fn with_timeout(
        &self,
        target: &str,
        key: &str,
        work: impl std::future::Future<Output = anyhow::Result<()>>,
    ) -> anyhow::Result<()> {
        tokio::time::timeout(self.request_timeout, work)
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "{target}: request for {key} timed out after {} s",
                    self.request_timeout.as_secs()
                )
            })?
    }

    /// Signs and sends one request for `key` (an empty key addresses the
    /// bucket) in the target's bucket, path-style.
    async fn send(
        &self,
        target: &Target,
        method: Method,
        key: &str,
        body: BoxBody,
        content_length: Option<u64>,
    ) -> anyhow::Result<http::Response<hyper::body::Incoming>> {
        let path = if key.is_empty() {
            format!("/{}", target.spec.bucket)
        } else {
            format!("/{}/{key}", target.spec.bucket)
        };
        let uri = Uri::builder()
            .scheme("http")
            .authority(target.authority.clone())
            .path_and_query(path)
            .build()?;
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::HOST, target.authority.as_str())
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .body(body)?;
        self.sign(target, &mut request)?;
        // Added after signing, so that the hop may change it.
        if let Some(len) = content_length {
            request
                .headers_mut()
                .insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        Ok(target.client.request(request).await?)
    }

    fn sign(&self, target: &Target, request: &mut Request<BoxBody>) -> anyhow::Result<()> {
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .map(|(name, value)| Ok((name.as_str(), value.to_str()?)))
            .collect::<anyhow::Result<_>>()?;
        let uri = request.uri().to_string();
        let signable = SignableRequest::new(
            request.method().as_str(),
            &uri,
            headers.into_iter(),
            SignableBody::UnsignedPayload,
        )?;
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
        let identity = target.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let (instructions, _signature) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

/// Returns `0..count` rotated left by `run`, so that no target always goes
/// first.
fn rotated(count: usize, run: usize) -> Vec<usize> {
    (0..count).map(|index| (index + run) % count).collect()
}

/// Returns the `quantile` of sorted `latencies` in milliseconds (nearest
/// rank).
fn percentile_ms(latencies: &[Duration], quantile: f64) -> f64 {
    if latencies.is_empty() {
        return f64::NAN;
    }
    let rank = ((latencies.len() as f64 * quantile).ceil() as usize).clamp(1, latencies.len());
    latencies[rank - 1].as_secs_f64() * 1e3
}
