//! A TCP front for a local server (Postgres, moto) that a test controls: it records when it
//! accepted each connection, may hold each one back a while before forwarding it (a slow
//! answer), and leaves those numbered below a mark unanswered (a login that never finishes, as
//! through a swamped proxy).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime},
};

use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
};

pub struct Front {
    pub port: u16,
    accepted: Arc<Mutex<Vec<SystemTime>>>,
    stall_below: Arc<AtomicUsize>,
}

impl Front {
    /// A front forwarding every connection to `127.0.0.1:target`.
    pub async fn start(target: u16) -> Front {
        Self::start_delayed(target, Duration::ZERO).await
    }

    /// A front that holds each connection `delay` before it forwards it: nothing the client
    /// sent reaches the server, and so no answer comes back, before then.
    pub async fn start_delayed(target: u16, delay: Duration) -> Front {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let stall_below = Arc::new(AtomicUsize::new(0));
        let (times, below) = (accepted.clone(), stall_below.clone());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let n = {
                    let mut times = times.lock().unwrap();
                    times.push(SystemTime::now());
                    times.len() - 1
                };
                if n < below.load(Ordering::SeqCst) {
                    held.push(client);
                    continue;
                }
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let mut server = TcpStream::connect(("127.0.0.1", target)).await.unwrap();
                    let _ = copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        Front {
            port,
            accepted,
            stall_below,
        }
    }

    /// Leaves the connections numbered below `n` (counting from 0, in the order accepted)
    /// unanswered from now on.
    pub fn stall_below(&self, n: usize) {
        self.stall_below.store(n, Ordering::SeqCst);
    }

    /// How many connections it has accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }

    /// When it accepted each, in order.
    pub fn accept_times(&self) -> Vec<SystemTime> {
        self.accepted.lock().unwrap().clone()
    }
}
