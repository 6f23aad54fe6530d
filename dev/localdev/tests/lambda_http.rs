//! The gateway's events and responses as the functions' own library (`lambda_http`) sees them:
//! a stand-in Lambda endpoint runs a `lambda_http` handler in-process.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::tower::Service;
use lambda_http::{Adapter, Context, LambdaEvent, RequestExt};
use localdev::gateway::{Gateway, GatewayOptions};
use localdev::Template;
use serde_json::{json, Value};
use tokio::net::TcpListener;

async fn handler(req: lambda_http::Request) -> Result<Response<lambda_http::Body>, Infallible> {
    let stage = match req.request_context() {
        RequestContext::ApiGatewayV1(ctx) => ctx.stage.clone(),
        _ => None,
    };
    if req.query_string_parameters().first("bin").is_some() {
        let mut r = Response::new(lambda_http::Body::Binary(vec![0xff, 0x00, 0x01]));
        r.headers_mut().insert("content-type", "application/octet-stream".parse().unwrap());
        return Ok(r);
    }
    let body = json!({
        "id": req.path_parameters().first("id"),
        "q": req.query_string_parameters().all("q"),
        "raw_path": req.raw_http_path(),
        "uri_path": req.uri().path(),
        "stage": stage,
        "body": String::from_utf8_lossy(req.body().as_ref()),
        "binary_body": matches!(req.body(), lambda_http::Body::Binary(_)),
        "key": req.headers().get("x-api-key").and_then(|v| v.to_str().ok()),
    });
    let mut r = Response::new(lambda_http::Body::Text(body.to_string()));
    r.headers_mut().insert("content-type", "application/json".parse().unwrap());
    r.headers_mut().append("x-multi", "a".parse().unwrap());
    r.headers_mut().append("x-multi", "b".parse().unwrap());
    Ok(r)
}

async fn invoke(request: Request<Incoming>) -> Response<Full<Bytes>> {
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let event: LambdaRequest = serde_json::from_slice(&body).expect("lambda_http rejects the event");
    let mut adapter = Adapter::from(lambda_http::service_fn(handler));
    std::future::poll_fn(|cx| adapter.poll_ready(cx)).await.unwrap();
    let response = adapter.call(LambdaEvent::new(event, Context::default())).await.unwrap();
    Response::new(Full::new(Bytes::from(serde_json::to_vec(&response).unwrap())))
}

async fn gateway() -> Gateway {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = service_fn(|r| async { Ok::<_, Infallible>(invoke(r).await) });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    let template = Template::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml")).unwrap();
    let options = GatewayOptions {
        lambda_endpoint: format!("http://{addr}"),
        api_keys: vec!["k-0123456789abcdef".into()],
        ..GatewayOptions::default()
    };
    Gateway::new(&template, options).unwrap()
}

fn request(method: &str, uri: &str, body: Vec<u8>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1:3000")
        .header("content-type", "application/json")
        .header("x-api-key", "k-0123456789abcdef")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

#[tokio::test]
async fn lambda_http_reads_the_event_and_the_gateway_reads_its_response() {
    let gw = Arc::new(gateway().await);
    let remote: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let r = gw.respond(request("GET", "/users/u%2D1?q=1&q=2", Vec::new()), remote).await;
    assert_eq!(r.status(), 200);
    let multi: Vec<_> = r.headers().get_all("x-multi").iter().collect();
    assert_eq!(multi, ["a", "b"]);
    let v: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(v["id"], "u-1");
    assert_eq!(v["q"], json!(["1", "2"]));
    assert_eq!(v["raw_path"], "/users/u%2D1");
    assert_eq!(v["uri_path"], "/v1/users/u%2D1");
    assert_eq!(v["stage"], "v1");
    assert_eq!(v["key"], "k-0123456789abcdef");

    let r = gw.respond(request("POST", "/login", br#"{"email":"a@b.c"}"#.to_vec()), remote).await;
    let v: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(v["body"], r#"{"email":"a@b.c"}"#);
    assert_eq!(v["binary_body"], false);

    let r = gw.respond(request("POST", "/refresh", vec![0xff, 0xfe]), remote).await;
    let v: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(v["binary_body"], true);

    let r = gw.respond(request("GET", "/users/x?bin=1", Vec::new()), remote).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.body().as_ref(), [0xff, 0x00, 0x01]);
}
