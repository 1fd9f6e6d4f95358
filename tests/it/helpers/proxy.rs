//! A TCP proxy on loopback that a test can cut: the broker (or any server)
//! "goes away" for the worker behind it, deterministically, without
//! touching the real server other tests share.
//!
//! ```ignore
//! let proxy = TcpProxy::start("127.0.0.1:5672").await;
//! settings.amqp.url = format!("amqp://guest:guest@{}/%2f", proxy.addr()).into();
//! proxy.cut();     // every connection dropped, new ones refused at once
//! proxy.restore(); // connections pass again
//! proxy.hold();    // new connections wait, unanswered, until...
//! proxy.release(); // ...they go through
//! ```

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

pub struct TcpProxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    /// While true, a new connection is accepted but not forwarded.
    held: watch::Sender<bool>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: &str) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let up = Arc::new(AtomicBool::new(true));
        let held = watch::Sender::new(false);
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let target = target.to_string();
        let accept = {
            let (up, links, held) = (up.clone(), links.clone(), held.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        // Refused: the connection closes at once.
                        continue;
                    }
                    let target = target.clone();
                    let mut released = held.subscribe();
                    let link = tokio::spawn(async move {
                        if released.wait_for(|held| !*held).await.is_err() {
                            return;
                        }
                        if let Ok(mut server) = TcpStream::connect(&target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    links.lock().unwrap().push(link.abort_handle());
                }
            })
            .abort_handle()
        };
        TcpProxy {
            addr,
            up,
            held,
            links,
            accept,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open connection and refuses new ones until [`restore`].
    ///
    /// [`restore`]: TcpProxy::restore
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// New connections are accepted and then wait, their requests
    /// unanswered, until [`release`]; open ones go on.
    ///
    /// [`release`]: TcpProxy::release
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// The held connections, and new ones, go through.
    pub fn release(&self) {
        self.held.send_replace(false);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}
