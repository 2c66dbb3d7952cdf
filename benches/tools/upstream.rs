//! The upstream S3 server of the benchmark: an in-memory store, or s3s-fs
//! on a directory (put it on tmpfs).
//!
//! The in-memory store implements only what the benchmark and rclone need:
//! CreateBucket, HeadBucket, PutObject, GetObject (with one byte range),
//! HeadObject, DeleteObject, ListObjectsV2 without pagination, and multipart
//! uploads (create, upload part, list parts, complete, abort). For
//! measurements of what s3seal reads, `GET /_bench/body-bytes-sent` returns
//! the number of GetObject body bytes served so far. It does not check
//! signatures or digests and computes no MD5. Objects get ETags of the form
//! `"<32 hex digits>-1"`, which clients do not take for an MD5, and a part
//! gets the hex of its `Content-MD5` header when it has one. A PutObject
//! whose key starts with `discard/` reads the body and stores nothing, so
//! that large upload figures do not fill memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::common::{self, bytes_body, empty_body, text_body, BoxBody};

/// Key prefix whose uploads are read and dropped.
const DISCARD_PREFIX: &str = "discard/";

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// Objects in memory, no signature check.
    Memory,
    /// s3s-fs 0.14 on --data-dir, with SigV4 checks.
    S3sFs,
}

#[derive(clap::Args, Debug)]
pub struct UpstreamArgs {
    /// File that receives `{"endpoint": "http://127.0.0.1:PORT"}` once the
    /// listener is bound.
    #[arg(long)]
    ready_file: PathBuf,
    #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
    store: StoreKind,
    /// Directory of the s3s-fs store.
    #[arg(long, required_if_eq("store", "s3s-fs"))]
    data_dir: Option<PathBuf>,
    /// Access key id that s3s-fs accepts.
    #[arg(long, default_value = "BENCHUPSTREAM")]
    access_key_id: String,
    /// Secret access key that s3s-fs accepts.
    #[arg(long, env = "S3SEAL_BENCH_UPSTREAM_SECRET", hide_env_values = true)]
    secret_access_key: String,
    /// Seconds after which the server exits by itself.
    #[arg(long, default_value_t = 3600)]
    max_seconds: u64,
}

pub async fn run(args: UpstreamArgs) -> anyhow::Result<()> {
    common::exit_after(Duration::from_secs(args.max_seconds));
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    match args.store {
        StoreKind::Memory => {
            let store = Arc::new(MemoryStore::default());
            common::write_ready_file(&args.ready_file, addr)?;
            eprintln!("in-memory S3 store listening on {addr}");
            let service = service_fn(move |request| {
                let store = Arc::clone(&store);
                async move { Ok::<_, std::convert::Infallible>(store.handle(request).await) }
            });
            serve(listener, service).await
        }
        StoreKind::S3sFs => {
            let data_dir = args.data_dir.expect("clap requires --data-dir for s3s-fs");
            std::fs::create_dir_all(&data_dir)?;
            let fs = s3s_fs::FileSystem::new(&data_dir).map_err(|error| {
                anyhow::anyhow!("failed to open {}: {error:?}", data_dir.display())
            })?;
            let mut builder = s3s::service::S3ServiceBuilder::new(fs);
            builder.set_auth(s3s::auth::SimpleAuth::from_single(
                args.access_key_id,
                args.secret_access_key,
            ));
            let service = builder.build();
            common::write_ready_file(&args.ready_file, addr)?;
            eprintln!("s3s-fs listening on {addr}, data in {}", data_dir.display());
            serve(listener, service).await
        }
    }
}

/// Serves HTTP/1.1 on `listener` with one task per connection.
pub async fn serve<S, B>(listener: TcpListener, service: S) -> anyhow::Result<()>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<common::BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<common::BoxError>,
{
    loop {
        let (socket, _) = match listener.accept().await {
            Ok(connection) => connection,
            Err(error) => {
                eprintln!("failed to accept a connection: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let service = service.clone();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service)
                .await;
            if let Err(error) = connection {
                eprintln!("connection ended with an error: {error}");
            }
        });
    }
}

struct StoredObject {
    body: Bytes,
    etag: String,
    last_modified: SystemTime,
    /// `x-amz-meta-*` and `content-type` headers of the upload.
    headers: HeaderMap,
}

/// A multipart upload in progress.
struct Upload {
    bucket: String,
    key: String,
    headers: HeaderMap,
    /// Each part's body and ETag.
    parts: BTreeMap<u32, (Bytes, String)>,
}

#[derive(Default)]
struct MemoryStore {
    buckets: Mutex<HashSet<String>>,
    objects: Mutex<BTreeMap<(String, String), Arc<StoredObject>>>,
    uploads: Mutex<HashMap<String, Upload>>,
    next_etag: AtomicU64,
    /// GetObject body bytes served since the start.
    body_bytes_sent: AtomicU64,
}

impl MemoryStore {
    async fn handle(&self, request: Request<Incoming>) -> Response<BoxBody> {
        let path = request.uri().path().trim_start_matches('/').to_owned();
        if path == "_bench/body-bytes-sent" && request.method() == Method::GET {
            let sent = self.body_bytes_sent.load(Ordering::Relaxed);
            return Response::new(text_body(sent.to_string()));
        }
        let query = request.uri().query().unwrap_or("").to_owned();
        let (bucket, key) = match path.split_once('/') {
            Some((bucket, key)) if !key.is_empty() => (bucket.to_owned(), Some(key.to_owned())),
            Some((bucket, _)) => (bucket.to_owned(), None),
            None => (path.clone(), None),
        };
        let method = request.method().clone();
        let params: HashMap<String, String> = url_query_pairs(&query).into_iter().collect();
        if let (Some(key), Some(upload_id)) = (&key, params.get("uploadId")) {
            return match method {
                Method::PUT => {
                    let part_number = params.get("partNumber").and_then(|n| n.parse().ok());
                    match part_number {
                        Some(part_number) => {
                            self.upload_part(upload_id, part_number, request).await
                        }
                        None => s3_error(StatusCode::BAD_REQUEST, "InvalidArgument", key),
                    }
                }
                Method::POST => self.complete_upload(upload_id),
                Method::GET => self.list_parts(upload_id),
                Method::DELETE => {
                    self.uploads.lock().unwrap().remove(upload_id);
                    status_only(StatusCode::NO_CONTENT)
                }
                _ => s3_error(StatusCode::NOT_IMPLEMENTED, "NotImplemented", &path),
            };
        }
        match (method, key) {
            (Method::POST, Some(key)) if params.contains_key("uploads") => {
                self.create_upload(bucket, key, request.headers())
            }
            (Method::PUT, None) => {
                self.buckets.lock().unwrap().insert(bucket);
                status_only(StatusCode::OK)
            }
            (Method::HEAD, None) => status_only(StatusCode::OK),
            (Method::GET, None) => self.list(&bucket, &query),
            (Method::PUT, Some(key)) => {
                if request.headers().contains_key("x-amz-copy-source") || !query.is_empty() {
                    return s3_error(StatusCode::NOT_IMPLEMENTED, "NotImplemented", &path);
                }
                self.put(bucket, key, request).await
            }
            (Method::GET, Some(key)) => self.get(&bucket, &key, request.headers(), true),
            (Method::HEAD, Some(key)) => self.get(&bucket, &key, request.headers(), false),
            (Method::DELETE, Some(key)) => {
                self.objects.lock().unwrap().remove(&(bucket, key));
                status_only(StatusCode::NO_CONTENT)
            }
            _ => s3_error(StatusCode::NOT_IMPLEMENTED, "NotImplemented", &path),
        }
    }

    async fn put(
        &self,
        bucket: String,
        key: String,
        request: Request<Incoming>,
    ) -> Response<BoxBody> {
        let (parts, body) = request.into_parts();
        let discard = key.starts_with(DISCARD_PREFIX);
        let Some(stored) = read_body(body, &parts.headers, !discard, &key).await else {
            return s3_error(StatusCode::BAD_REQUEST, "IncompleteBody", &key);
        };

        let etag = self.new_etag();
        if !discard {
            let object = StoredObject {
                body: stored,
                etag: etag.clone(),
                last_modified: SystemTime::now(),
                headers: stored_headers(&parts.headers),
            };
            self.objects
                .lock()
                .unwrap()
                .insert((bucket, key), Arc::new(object));
        }
        let mut response = status_only(StatusCode::OK);
        response.headers_mut().insert(
            http::header::ETAG,
            HeaderValue::from_str(&etag).expect("ASCII ETag"),
        );
        response
    }

    fn new_etag(&self) -> String {
        let serial = self.next_etag.fetch_add(1, Ordering::Relaxed);
        format!("\"{serial:032x}-1\"")
    }

    fn create_upload(&self, bucket: String, key: String, headers: &HeaderMap) -> Response<BoxBody> {
        let upload_id = format!("upload-{}", self.next_etag.fetch_add(1, Ordering::Relaxed));
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>",
            xml_escape(&bucket),
            xml_escape(&key)
        );
        let upload = Upload {
            bucket,
            key,
            headers: stored_headers(headers),
            parts: BTreeMap::new(),
        };
        self.uploads.lock().unwrap().insert(upload_id, upload);
        xml_response(xml)
    }

    async fn upload_part(
        &self,
        upload_id: &str,
        part_number: u32,
        request: Request<Incoming>,
    ) -> Response<BoxBody> {
        let (parts, body) = request.into_parts();
        let Some(data) = read_body(body, &parts.headers, true, upload_id).await else {
            return s3_error(StatusCode::BAD_REQUEST, "IncompleteBody", upload_id);
        };
        let etag = parts
            .headers
            .get("content-md5")
            .and_then(|value| {
                base64::engine::general_purpose::STANDARD
                    .decode(value.as_bytes())
                    .ok()
            })
            .map(|digest| format!("\"{}\"", hex::encode(digest)))
            .unwrap_or_else(|| self.new_etag());
        match self.uploads.lock().unwrap().get_mut(upload_id) {
            Some(upload) => upload.parts.insert(part_number, (data, etag.clone())),
            None => return s3_error(StatusCode::NOT_FOUND, "NoSuchUpload", upload_id),
        };
        let mut response = status_only(StatusCode::OK);
        response.headers_mut().insert(
            http::header::ETAG,
            HeaderValue::from_str(&etag).expect("ASCII ETag"),
        );
        response
    }

    /// Lists every part received so far, in one page (ListParts).
    fn list_parts(&self, upload_id: &str) -> Response<BoxBody> {
        let uploads = self.uploads.lock().unwrap();
        let Some(upload) = uploads.get(upload_id) else {
            return s3_error(StatusCode::NOT_FOUND, "NoSuchUpload", upload_id);
        };
        let parts: String = upload
            .parts
            .iter()
            .map(|(number, (data, etag))| {
                format!(
                    "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag><Size>{}</Size></Part>",
                    xml_escape(etag),
                    data.len()
                )
            })
            .collect();
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListPartsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{}</UploadId><MaxParts>10000</MaxParts><IsTruncated>false</IsTruncated>{parts}</ListPartsResult>",
            xml_escape(&upload.bucket),
            xml_escape(&upload.key),
            xml_escape(upload_id)
        );
        drop(uploads);
        xml_response(xml)
    }

    /// Completes an upload from every part received, in part-number order.
    /// The part list in the request body is not read.
    fn complete_upload(&self, upload_id: &str) -> Response<BoxBody> {
        let Some(upload) = self.uploads.lock().unwrap().remove(upload_id) else {
            return s3_error(StatusCode::NOT_FOUND, "NoSuchUpload", upload_id);
        };
        let len = upload.parts.values().map(|(data, _)| data.len()).sum();
        let mut body = BytesMut::with_capacity(len);
        for (part, _) in upload.parts.values() {
            body.extend_from_slice(part);
        }
        let serial = self.next_etag.fetch_add(1, Ordering::Relaxed);
        let etag = format!("\"{serial:032x}-{}\"", upload.parts.len());
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></CompleteMultipartUploadResult>",
            xml_escape(&upload.bucket),
            xml_escape(&upload.key),
            xml_escape(&etag)
        );
        let object = StoredObject {
            body: body.freeze(),
            etag,
            last_modified: SystemTime::now(),
            headers: upload.headers,
        };
        self.objects
            .lock()
            .unwrap()
            .insert((upload.bucket, upload.key), Arc::new(object));
        xml_response(xml)
    }

    fn get(
        &self,
        bucket: &str,
        key: &str,
        request_headers: &HeaderMap,
        with_body: bool,
    ) -> Response<BoxBody> {
        let object = self
            .objects
            .lock()
            .unwrap()
            .get(&(bucket.to_owned(), key.to_owned()))
            .cloned();
        let Some(object) = object else {
            if with_body {
                return s3_error(StatusCode::NOT_FOUND, "NoSuchKey", key);
            }
            return status_only(StatusCode::NOT_FOUND);
        };

        let total = object.body.len() as u64;
        let range = request_headers
            .get(http::header::RANGE)
            .and_then(|value| value.to_str().ok())
            .map(|value| parse_range(value, total));
        let (status, start, end) = match range {
            None => (StatusCode::OK, 0, total),
            Some(Some((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end),
            Some(None) => return s3_error(StatusCode::RANGE_NOT_SATISFIABLE, "InvalidRange", key),
        };

        let body = if with_body {
            self.body_bytes_sent
                .fetch_add(end - start, Ordering::Relaxed);
            bytes_body(object.body.slice(start as usize..end as usize))
        } else {
            empty_body()
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.extend(object.headers.clone());
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(end - start));
        headers.insert(
            http::header::ETAG,
            HeaderValue::from_str(&object.etag).expect("ASCII ETag"),
        );
        headers.insert(
            http::header::LAST_MODIFIED,
            HeaderValue::from_str(&httpdate::fmt_http_date(object.last_modified))
                .expect("ASCII date"),
        );
        headers.insert(
            http::header::ACCEPT_RANGES,
            HeaderValue::from_static("bytes"),
        );
        if status == StatusCode::PARTIAL_CONTENT {
            let content_range = format!("bytes {start}-{}/{total}", end - 1);
            headers.insert(
                http::header::CONTENT_RANGE,
                HeaderValue::from_str(&content_range).expect("ASCII range"),
            );
        }
        response
    }

    /// Lists the bucket for ListObjectsV2 (V1 requests get the same
    /// response) with `prefix` and `delimiter`, every key in one page.
    fn list(&self, bucket: &str, query: &str) -> Response<BoxBody> {
        let mut prefix = String::new();
        let mut delimiter = String::new();
        for (name, value) in url_query_pairs(query) {
            match name.as_str() {
                "prefix" => prefix = value,
                "delimiter" => delimiter = value,
                _ => {}
            }
        }
        let objects = self.objects.lock().unwrap();
        let mut contents = String::new();
        let mut common_prefixes = std::collections::BTreeSet::new();
        for ((object_bucket, key), object) in objects.iter() {
            if object_bucket != bucket || !key.starts_with(&prefix) {
                continue;
            }
            let rest = &key[prefix.len()..];
            if !delimiter.is_empty() {
                if let Some(index) = rest.find(&delimiter) {
                    common_prefixes.insert(format!("{prefix}{}", &rest[..index + delimiter.len()]));
                    continue;
                }
            }
            let modified = time::OffsetDateTime::from(object.last_modified)
                .format(&time::format_description::well_known::Rfc3339)
                .expect("a valid date formats");
            contents.push_str(&format!(
                "<Contents><Key>{}</Key><LastModified>{modified}</LastModified><ETag>{}</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                xml_escape(key),
                xml_escape(&object.etag),
                object.body.len()
            ));
        }
        let prefixes: String = common_prefixes
            .iter()
            .map(|p| {
                format!(
                    "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                    xml_escape(p)
                )
            })
            .collect();
        let count = contents.matches("<Contents>").count() + common_prefixes.len();
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{}</Name><Prefix>{}</Prefix><KeyCount>{count}</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>{}</Delimiter><IsTruncated>false</IsTruncated>{contents}{prefixes}</ListBucketResult>",
            xml_escape(bucket),
            xml_escape(&prefix),
            xml_escape(&delimiter)
        );
        xml_response(xml)
    }
}

/// Reads a request body of the declared `Content-Length`. Returns the bytes
/// (empty unless `keep`), or `None` if the body failed or had another
/// length.
async fn read_body(
    mut body: Incoming,
    headers: &HeaderMap,
    keep: bool,
    resource: &str,
) -> Option<Bytes> {
    let declared = common_content_length(headers).unwrap_or(0);
    let mut stored = BytesMut::with_capacity(if keep { declared as usize } else { 0 });
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => {
                eprintln!("upload of {resource} failed: {error}");
                return None;
            }
        };
        if let Ok(data) = frame.into_data() {
            received += data.len() as u64;
            if keep {
                stored.extend_from_slice(&data);
            }
        }
    }
    (received == declared).then(|| stored.freeze())
}

/// Returns the `x-amz-meta-*` and `content-type` headers of an upload.
fn stored_headers(headers: &HeaderMap) -> HeaderMap {
    let mut stored = HeaderMap::new();
    for (name, value) in headers {
        if name.as_str().starts_with("x-amz-meta-") || name == http::header::CONTENT_TYPE {
            stored.insert(name.clone(), value.clone());
        }
    }
    stored
}

fn xml_response(xml: String) -> Response<BoxBody> {
    let mut response = Response::new(text_body(xml));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response
}

fn common_content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Parses one `bytes=` range of an object of `total` bytes into a
/// half-open interval, or returns `None` if it is invalid or unsatisfiable.
fn parse_range(value: &str, total: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    let (start, end) = match (first.trim(), last.trim()) {
        ("", suffix) => {
            let suffix: u64 = suffix.parse().ok()?;
            (total.saturating_sub(suffix), total)
        }
        (first, "") => (first.parse().ok()?, total),
        (first, last) => (
            first.parse().ok()?,
            last.parse::<u64>().ok()?.saturating_add(1).min(total),
        ),
    };
    (start < end).then_some((start, end))
}

fn url_query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |text: &str| {
                percent_encoding::percent_decode_str(&text.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(name), decode(value))
        })
        .collect()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn status_only(status: StatusCode) -> Response<BoxBody> {
    let mut response = Response::new(empty_body());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(http::header::CONTENT_LENGTH, HeaderValue::from(0));
    response
}

fn s3_error(status: StatusCode, code: &str, resource: &str) -> Response<BoxBody> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{code}</Message><Resource>{}</Resource></Error>",
        xml_escape(resource)
    );
    let mut response = xml_response(xml);
    *response.status_mut() = status;
    response
}
