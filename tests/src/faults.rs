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
    let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
    let mut buf_c = vec![0u8; 64 * 1024];
    let mut buf_s = vec![0u8; 64 * 1024];
    let mut drop_answer = false;
    loop {
        tokio::select! {
            read = client.read(&mut buf_c) => {
                let Ok(n) = read else { return };
                if n == 0 { return; }
                let chunk = &buf_c[..n];
                match fault.read().await.clone() {
                    Fault::Delay(d) => tokio::time::sleep(d).await,
                    Fault::Reset | Fault::Refuse => { let _ = client.set_zero_linger(); return; }
                    Fault::LoseAnswerOf(op) => {
                        let text = String::from_utf8_lossy(chunk);
                        if text.contains(&format!("DynamoDB_20120810.{op}")) { drop_answer = true; }
                    }
                    Fault::LoseFirstAnswerOf(op) => {
                        let text = String::from_utf8_lossy(chunk);
                        if text.contains(&format!("DynamoDB_20120810.{op}")) && lost.load(Ordering::Relaxed) == 0 {
                            drop_answer = true;
                        }
                    }
                    Fault::ResetOn(op) => {
                        if String::from_utf8_lossy(chunk).contains(&format!("DynamoDB_20120810.{op}")) {
                            lost.fetch_add(1, Ordering::Relaxed);
                            let _ = client.set_zero_linger();
                            return;
                        }
                    }
                    Fault::None => {}
                }
                if server.write_all(chunk).await.is_err() { return; }
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
