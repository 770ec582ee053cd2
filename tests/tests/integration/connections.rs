//! Slow and idle clients cannot hold the server: idle connections are closed, request bodies
//! must arrive in time, announced oversized bodies are refused before they are read, and the
//! connection limit holds new connections back instead of exhausting the process.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{default_config, Gateway, COUNTRY};

fn limited(idle: &str) -> impl Fn(&str, &str) -> String {
    let idle = idle.to_string();
    move |countries, weather| {
        format!(
            "[server]\nidle_timeout = \"{idle}\"\nbody_timeout = \"300ms\"\nmax_connections = 4\n{}",
            default_config(countries, weather)
        )
    }
}

async fn connect(gw: &Gateway) -> TcpStream {
    let addr = gw
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/graphql");
    TcpStream::connect(addr).await.unwrap()
}

/// Reads until the server closes the connection (or `limit` passes); the bytes read.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut out)).await;
    read.ok().map(|_| out)
}

fn status(response: &[u8]) -> String {
    String::from_utf8_lossy(response)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_idle_timeout() {
    let gw = Gateway::start_with(&[COUNTRY], limited("300ms")).await;
    let mut idle = connect(&gw).await;
    let closed = read_until_closed(&mut idle, Duration::from_secs(3)).await;
    assert_eq!(closed, Some(Vec::new()), "closed without a response");
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408_and_an_oversized_one_413_before_it_is_read() {
    let gw = Gateway::start_with(&[COUNTRY], limited("5s")).await;
    let mut slow = connect(&gw).await;
    slow.write_all(b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"do")
        .await
        .unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), slow.read(&mut buf))
        .await
        .expect("answered before the test's limit")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("REQUEST_TIMEOUT"), "{text}");

    let mut big = connect(&gw).await;
    big.write_all(b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000000\r\n\r\n")
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_millis(250), big.read(&mut buf))
        .await
        .expect("refused at once, not after the body timeout")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("REQUEST_TOO_LARGE"), "{text}");
}

#[tokio::test]
async fn at_the_connection_limit_new_connections_wait_for_a_free_slot() {
    let gw = Gateway::start_with(&[COUNTRY], limited("1s")).await;
    // Four silent connections take every slot.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect(&gw).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A fifth is accepted by the kernel but not served while the slots are taken...
    let mut fifth = connect(&gw).await;
    fifth
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0; 4096];
    let early = tokio::time::timeout(Duration::from_millis(400), fifth.read(&mut buf)).await;
    assert!(early.is_err(), "served while every slot was taken");
    // ...and is served once the idle ones are closed.
    let answer = read_until_closed(&mut fifth, Duration::from_secs(5))
        .await
        .expect("served after the idle connections closed");
    assert!(
        status(&answer).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    for mut h in held {
        assert_eq!(
            read_until_closed(&mut h, Duration::from_secs(3)).await,
            Some(Vec::new())
        );
    }
}

#[tokio::test]
async fn idle_connections_do_not_hold_shutdown() {
    let mut gw = Gateway::start(&[COUNTRY]).await;
    // An HTTP/2 client that opened its connection (preface and SETTINGS) and then says
    // nothing, and a TCP client that never sent a byte; the grace period is 5 s.
    let mut h2 = connect(&gw).await;
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(2), h2.read(&mut buf))
        .await
        .expect("the server answers the preface")
        .unwrap();
    assert!(
        n >= 9 && buf[3] == 0x04,
        "a SETTINGS frame: {:?}",
        &buf[..n]
    );
    let _silent = connect(&gw).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    gw.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown waited {:?} for idle connections",
        started.elapsed()
    );
}
