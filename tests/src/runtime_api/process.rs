//! The function's process: started with exactly the environment it is given, its stdout and
//! stderr collected line by line, and supervised on a thread (and a small runtime) of its own,
//! so that synchronous code such as `Drop` can stop it and still read everything it wrote.

use std::{
    ffi::OsString,
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::Command,
    sync::{oneshot, watch},
};

/// How long, after the process is gone, its output may take to reach end of file (a
/// grandchild holding the pipes open would keep them open for ever).
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// A running (or finished) process and what it has written.
pub(super) struct Process {
    pid: Option<u32>,
    spawned_at: Instant,
    logs: Arc<Mutex<Vec<String>>>,
    /// How the process ended, once it has and its output is read to the end.
    exited: watch::Receiver<Option<String>>,
    kill: Option<oneshot::Sender<()>>,
    supervisor: Option<JoinHandle<()>>,
}

impl Process {
    /// Starts `program` with `args` and exactly `env` plus `PATH`. With `HARNESS_ECHO_LOGS`
    /// set, every line is also copied to stderr.
    pub(super) async fn spawn(
        program: &Path,
        args: &[&str],
        env: Vec<(String, String)>,
    ) -> std::io::Result<Process> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.into_iter().map(|(k, v)| (OsString::from(k), v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (exited_tx, exited) = watch::channel(None);
        let (kill, kill_rx) = oneshot::channel();
        let (started_tx, started) = oneshot::channel();
        let supervised = Supervised {
            logs: logs.clone(),
            exited: exited_tx,
            kill: kill_rx,
            echo: std::env::var_os("HARNESS_ECHO_LOGS").is_some(),
        };
        let supervisor = std::thread::Builder::new()
            .name(format!("supervise {}", program.display()))
            .spawn(move || supervise(cmd, supervised, started_tx))?;
        let (pid, spawned_at) = started
            .await
            .map_err(|_| std::io::Error::other("the supervisor thread ended before spawning"))??;
        Ok(Process {
            pid,
            spawned_at,
            logs,
            exited,
            kill: Some(kill),
            supervisor: Some(supervisor),
        })
    }

    pub(super) fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// When the process was started.
    pub(super) fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    /// Every line written so far (stdout and stderr, in the order they were read).
    pub(super) fn logs(&self) -> MutexGuard<'_, Vec<String>> {
        self.logs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The exit status, once the process has exited and its output has been read.
    pub(super) fn exit(&self) -> Option<String> {
        self.exited.borrow().clone()
    }

    /// Waits for [`Process::exit`] to be known.
    pub(super) async fn wait(&self) -> String {
        let mut exited = self.exited.clone();
        let status = exited
            .wait_for(Option::is_some)
            .await
            .map(|s| s.clone().unwrap_or_default());
        status.unwrap_or_else(|_| "the supervisor thread ended".to_owned())
    }

    /// Asks the supervisor to kill the process (once; later calls do nothing).
    pub(super) fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }

    /// Kills the process and blocks until it is gone and its output read. Safe to call from
    /// async code: the supervisor does not need the caller's runtime.
    pub(super) fn kill_and_wait_blocking(&mut self) {
        self.kill();
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.join();
        }
    }
}

/// What the supervisor thread owns.
struct Supervised {
    logs: Arc<Mutex<Vec<String>>>,
    exited: watch::Sender<Option<String>>,
    kill: oneshot::Receiver<()>,
    echo: bool,
}

type Started = std::io::Result<(Option<u32>, Instant)>;

fn supervise(mut cmd: Command, s: Supervised, started: oneshot::Sender<Started>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = started.send(Err(e));
            return;
        }
    };
    runtime.block_on(async move {
        let spawned_at = Instant::now();
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                let _ = started.send(Err(e));
                return;
            }
        };
        let _ = started.send(Ok((child.id(), spawned_at)));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(collect_lines(out, s.logs.clone(), s.echo)));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(collect_lines(err, s.logs.clone(), s.echo)));
        }
        let status = tokio::select! {
            status = child.wait() => status,
            _ = s.kill => {
                let _ = child.kill().await;
                child.wait().await
            }
        };
        let drained = async {
            for reader in readers {
                let _ = reader.await;
            }
        };
        let _ = tokio::time::timeout(DRAIN_LIMIT, drained).await;
        let _ = s.exited.send(Some(
            status.map_or_else(|e| e.to_string(), |s| s.to_string()),
        ));
    });
}

/// Reads lines until end of file; bytes that are not UTF-8 are kept, replaced, rather than
/// ending the read (the process would then block on a full pipe, and the rest go unchecked).
async fn collect_lines<R: AsyncRead + Unpin>(r: R, logs: Arc<Mutex<Vec<String>>>, echo: bool) {
    let mut reader = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                let line = text.strip_suffix('\n').unwrap_or(&text);
                let line = line.strip_suffix('\r').unwrap_or(line).to_owned();
                if echo {
                    eprintln!("{line}");
                }
                logs.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line);
            }
        }
    }
}
