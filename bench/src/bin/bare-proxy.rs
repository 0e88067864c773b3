//! `bare-proxy`: the floor every gateway is compared against. It owns nothing
//! but forwarding: each request's method, path and query, headers (less the
//! hop-by-hop ones) and body bytes go to one `--upstream` over a pooled
//! keep-alive hyper client, and the upstream's status, headers and body are
//! streamed back unchanged, frame by frame. No parsing, no routing, no
//! buffering; an unreachable upstream is answered with 502.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[derive(Parser, Debug)]
#[command(about = "Minimal forwarding proxy: the baseline a gateway is measured against")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4202")]
    listen: SocketAddr,
    /// Upstream base URL (scheme and authority; http only), e.g. http://127.0.0.1:4201
    #[arg(long, default_value = "http://127.0.0.1:4201")]
    upstream: String,
    /// Tokio worker threads (0 = one per CPU).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// The upstream body as is, or a small error body made here.
type ProxyBody = Either<Incoming, Full<Bytes>>;

struct Proxy {
    client: Client<HttpConnector, Incoming>,
    scheme: hyper::http::uri::Scheme,
    authority: hyper::http::uri::Authority,
    host: HeaderValue,
}

fn main() {
    let args = Args::parse();
    let upstream: Uri = args
        .upstream
        .parse()
        .expect("--upstream must be a URL such as http://127.0.0.1:4201");
    let authority = upstream
        .authority()
        .cloned()
        .expect("--upstream must include host:port");
    let scheme = upstream
        .scheme()
        .cloned()
        .unwrap_or(hyper::http::uri::Scheme::HTTP);
    assert!(
        scheme == hyper::http::uri::Scheme::HTTP,
        "--upstream must be plain http://"
    );
    let host =
        HeaderValue::from_str(authority.as_str()).expect("upstream authority is a valid Host");

    let rt = switchyard_bench::runtime(args.threads);
    let result = rt.block_on(async move {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        let proxy = Arc::new(Proxy {
            client,
            scheme,
            authority,
            host,
        });
        eprintln!(
            "bare-proxy listening on {} -> {}",
            args.listen, args.upstream
        );
        switchyard_bench::serve(args.listen, move |req| forward(req, proxy.clone())).await
    });
    if let Err(err) = result {
        eprintln!("bare-proxy: cannot serve on {}: {err}", args.listen);
        std::process::exit(1);
    }
}

async fn forward(
    req: Request<Incoming>,
    proxy: Arc<Proxy>,
) -> Result<Response<ProxyBody>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let mut uri = hyper::http::uri::Parts::default();
    uri.scheme = Some(proxy.scheme.clone());
    uri.authority = Some(proxy.authority.clone());
    uri.path_and_query = parts.uri.path_and_query().cloned();
    parts.uri = match Uri::from_parts(uri) {
        Ok(uri) => uri,
        Err(_) => return Ok(bad_gateway("cannot build upstream URI")),
    };
    // HTTP/1.1 towards the upstream whatever the client spoke.
    parts.version = hyper::Version::HTTP_11;
    switchyard_bench::strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(HOST, proxy.host.clone());

    match proxy.client.request(Request::from_parts(parts, body)).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            switchyard_bench::strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, Either::Left(body)))
        }
        Err(err) => Ok(bad_gateway(&format!("upstream request failed: {err}"))),
    }
}

fn bad_gateway(message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "error": { "message": message, "type": "bad_gateway" } });
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(body.to_string()))));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
