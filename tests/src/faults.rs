//! A TCP proxy between the functions and the DynamoDB-compatible server that can delay,
//! reset and refuse connections on command, or let a request through and lose its answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::RwLock;

/// What the proxy does to new traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Pass everything through.
    None,
    /// Hold every request this long before forwarding it.
    Delay(Duration),
    /// Read the request, then reset the connection without forwarding it.
    Reset,
    /// Refuse connections: reset them at once, before reading a byte.
    Refuse,
    /// Forward requests for this operation (e.g. `TransactWriteItems`) but drop the server's
    /// answer and reset: the write happens, the caller never hears of it.
    LoseAnswerOf(&'static str),
    /// As [`Fault::LoseAnswerOf`], for the first such request only (an SDK retry then gets
    /// through): a write that landed once and was asked for twice.
    LoseFirstAnswerOf(&'static str),
    /// Reset requests for this operation before forwarding them (others pass): the write
    /// never happens, the caller sees a dropped connection.
    ResetOn(&'static str),
    /// Hold the first request for this operation until the test releases it (others pass):
    /// a write that lands only after something else has happened.
    HoldFirst(&'static str, Hold),
}

/// The gate of [`Fault::HoldFirst`]: `arrived` resolves once the request is held, `release`
/// lets it go on to the server.
#[derive(Debug, Clone, Default)]
pub struct Hold {
    arrived: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
    used: Arc<std::sync::atomic::AtomicBool>,
}

impl PartialEq for Hold {
    fn eq(&self, other: &Hold) -> bool {
        Arc::ptr_eq(&self.used, &other.used)
    }
}

impl Eq for Hold {}

impl Hold {
    pub async fn arrived(&self) {
        self.arrived.notified().await
    }

    pub fn release(&self) {
        self.release.notify_one()
    }
}

#[derive(Debug, Clone)]
pub struct FaultProxy {
    pub addr: SocketAddr,
    fault: Arc<RwLock<Fault>>,
    /// Requests whose answers were dropped.
    pub lost_answers: Arc<AtomicU64>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 in front of `upstream` (host:port).
    pub async fn start(upstream: String) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = FaultProxy {
            addr: listener.local_addr().unwrap(),
            fault: Arc::new(RwLock::new(Fault::None)),
            lost_answers: Arc::new(AtomicU64::new(0)),
        };
        let (fault, lost) = (proxy.fault.clone(), proxy.lost_answers.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (fault, lost, upstream) = (fault.clone(), lost.clone(), upstream.clone());
                tokio::spawn(async move { handle(client, upstream, fault, lost).await });
            }
        });
        proxy
    }

    pub async fn set(&self, fault: Fault) {
        *self.fault.write().await = fault;
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn handle(mut client: TcpStream, upstream: String, fault: Arc<RwLock<Fault>>, lost: Arc<AtomicU64>) {
    if *fault.read().await == Fault::Refuse {
        // Zero linger: close with RST rather than FIN, before reading anything.
        let _ = client.set_zero_linger();
        return;
    }
    let mut buf_c = vec![0u8; 64 * 1024];
    let mut buf_s = vec![0u8; 64 * 1024];
    let mut drop_answer = false;
    // The upstream connection opens with the first request, after its fault: a single-threaded
    // server (moto, as scripts/test runs it) serves one connection at a time, and one opened
    // for a held request would stall every other client.
    let Ok(n) = client.read(&mut buf_c).await else { return };
    if n == 0 || !apply(&fault, &lost, &buf_c[..n], &mut drop_answer, &mut client).await {
        return;
    }
    let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
    if server.write_all(&buf_c[..n]).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            read = client.read(&mut buf_c) => {
                let Ok(n) = read else { return };
                if n == 0 { return; }
                if !apply(&fault, &lost, &buf_c[..n], &mut drop_answer, &mut client).await { return; }
                if server.write_all(&buf_c[..n]).await.is_err() { return; }
            }
            read = server.read(&mut buf_s) => {
                let Ok(n) = read else { return };
                if n == 0 { return; }
                if drop_answer {
                    lost.fetch_add(1, Ordering::Relaxed);
                    let _ = client.set_zero_linger();
                    return;
                }
                if client.write_all(&buf_s[..n]).await.is_err() { return; }
            }
        }
    }
}

/// The fault on one chunk a client sent, before it is forwarded; false: the connection is reset.
async fn apply(
    fault: &RwLock<Fault>,
    lost: &AtomicU64,
    chunk: &[u8],
    drop_answer: &mut bool,
    client: &mut TcpStream,
) -> bool {
    // The operation by its `X-Amz-Target` (DynamoDB's, or EventBridge's for the limit events).
    let is = |op: &str| {
        let text = String::from_utf8_lossy(chunk);
        ["DynamoDB_20120810", "AWSEvents"].iter().any(|service| text.contains(&format!("{service}.{op}")))
    };
    let current = fault.read().await.clone();
    match current {
        Fault::Delay(d) => tokio::time::sleep(d).await,
        Fault::Reset | Fault::Refuse => {
            let _ = client.set_zero_linger();
            return false;
        }
        Fault::LoseAnswerOf(op) => *drop_answer |= is(op),
        Fault::LoseFirstAnswerOf(op) => *drop_answer |= is(op) && lost.load(Ordering::Relaxed) == 0,
        Fault::ResetOn(op) if is(op) => {
            lost.fetch_add(1, Ordering::Relaxed);
            let _ = client.set_zero_linger();
            return false;
        }
        Fault::HoldFirst(op, hold) if is(op) && !hold.used.swap(true, Ordering::SeqCst) => {
            hold.arrived.notify_one();
            hold.release.notified().await;
        }
        Fault::ResetOn(_) | Fault::HoldFirst(..) | Fault::None => {}
    }
    true
}
