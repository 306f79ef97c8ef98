//! A TCP front that puts a modelled network between a client and a local server: every chunk
//! of bytes reaches the other side `one_way` after it was read, in order, without holding back
//! what follows (a pipe, not stop-and-wait), so that a request and its answer cost one round
//! trip of `2 × one_way` while requests written together share one. It also counts the
//! exchanges on the link: each time the server answers after the client last wrote.
//!
//! Its threads are the operating system's, not the async runtime's: tokio's timers round a
//! sleep up to the next millisecond, which would add up to a millisecond to every hop.
//! What it cannot model is TCP's own handshake: the kernel completes it before the front
//! accepts, so a new connection costs no round trip here, where a network charges one.

use std::{
    io::{Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant, SystemTime},
};

/// Which way the last chunk went on a connection.
const NONE: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

#[derive(Default)]
struct Counts {
    connections: AtomicUsize,
    exchanges: AtomicUsize,
    /// When each exchange's answer was delivered.
    times: Mutex<Vec<SystemTime>>,
}

pub struct LatencyFront {
    pub port: u16,
    counts: Arc<Counts>,
}

impl LatencyFront {
    /// A front to `127.0.0.1:target` delaying each direction by `one_way`.
    pub fn start(target: u16, one_way: Duration) -> std::io::Result<LatencyFront> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let counts = Arc::new(Counts::default());
        let shared = counts.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let last = Arc::new(AtomicU8::new(NONE));
                for (from, to, way) in [
                    (client.try_clone(), server.try_clone(), UP),
                    (server.try_clone(), client.try_clone(), DOWN),
                ] {
                    if let (Ok(from), Ok(to)) = (from, to) {
                        pipe(from, to, one_way, way, last.clone(), shared.clone());
                    }
                }
            }
        });
        Ok(LatencyFront { port, counts })
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.counts.connections.load(Ordering::SeqCst)
    }

    /// Exchanges so far on all its connections: chunks from the server that follow a chunk
    /// from the client, so a login of three request-and-answer steps counts three.
    pub fn exchanges(&self) -> usize {
        self.counts.exchanges.load(Ordering::SeqCst)
    }

    /// When each exchange's answer was delivered to the client, in order.
    pub fn exchange_times(&self) -> Vec<SystemTime> {
        self.counts.times.lock().unwrap().clone()
    }
}

/// One direction: a reader stamping each chunk with when it is due, and a writer delivering
/// it then.
fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    one_way: Duration,
    way: u8,
    last: Arc<AtomicU8>,
    counts: Arc<Counts>,
) {
    let _ = from.set_nodelay(true);
    let _ = to.set_nodelay(true);
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + one_way, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    thread::spawn(move || {
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            let before = last.swap(way, Ordering::SeqCst);
            if way == DOWN && before == UP {
                counts.exchanges.fetch_add(1, Ordering::SeqCst);
                counts.times.lock().unwrap().push(SystemTime::now());
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        // The sender closed its side: pass the end on, as the network would.
        let _ = to.shutdown(Shutdown::Write);
    });
}
