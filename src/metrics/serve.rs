//! Where other programs read a process's metrics: an HTTP endpoint for
//! Prometheus (`--metrics-listen`, `GET /metrics`), and a Unix socket per
//! daemon under `$REEDBASE_HOME/run/` that `rdb metrics` asks.
//!
//! Bounded: each connection is answered on a thread of its own, at most
//! [`MAX_CLIENTS`] at once (more are closed at once); a request must arrive
//! whole within [`CLIENT_TIMEOUT`] and within [`MAX_REQUEST`] bytes, and the
//! answer is written under the same limit. A slow or stuck client holds
//! one thread for seconds, never a commit, and no client makes a daemon
//! buffer more than a request head.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Format, global, render};

/// How long a client may take to send its whole request, and to take the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest request head read (a scraper's headers fit easily).
const MAX_REQUEST: usize = 16 * 1024;
/// Connections answered at once.
const MAX_CLIENTS: usize = 8;

/// Reads until `end` is in what was read, `MAX_REQUEST` bytes, EOF or
/// `CLIENT_TIMEOUT` after the start, whichever comes first: the deadline is
/// for the whole request, not per read.
fn read_request(stream: &mut (impl Read + Timed), end: &[u8]) -> std::io::Result<Vec<u8>> {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(end.len()).any(|w| w == end) && got.len() < MAX_REQUEST {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        stream.set_timeout(left)?;
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(got)
}

/// Streams whose reads and writes take a time limit.
trait Timed {
    fn set_timeout(&self, d: Duration) -> std::io::Result<()>;
}

impl Timed for TcpStream {
    fn set_timeout(&self, d: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(d))?;
        self.set_write_timeout(Some(d))
    }
}

impl Timed for UnixStream {
    fn set_timeout(&self, d: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(d))?;
        self.set_write_timeout(Some(d))
    }
}

/// Answers each connection of `incoming` with `answer` on a thread of its
/// own, at most `MAX_CLIENTS` at once.
fn serve<S: Send + 'static>(
    incoming: impl Iterator<Item = std::io::Result<S>>,
    answer: fn(S) -> std::io::Result<()>,
) {
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in incoming.flatten() {
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            busy.fetch_sub(1, Ordering::SeqCst);
            drop(stream);
            continue;
        }
        let held = Arc::clone(&busy);
        let spawned = std::thread::Builder::new()
            .name("metrics-client".into())
            .spawn(move || {
                if let Err(e) = answer(stream) {
                    tracing::debug!(error = %e, "a metrics request failed");
                }
                held.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            busy.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Serves `GET /metrics` on `addr` (every database's metrics) from a thread.
/// Returns the address bound (port 0 picks one).
pub fn serve_http(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || serve(listener.incoming(), answer_http))?;
    Ok(bound)
}

fn answer_http(mut stream: TcpStream) -> std::io::Result<()> {
    let head = read_request(&mut stream, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, kind, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render(None, Format::Text),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            b"only /metrics is here\n".to_vec(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            b"GET /metrics\n".to_vec(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.set_timeout(CLIENT_TIMEOUT)?;
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(&body)?;
    }
    stream.flush()
}

fn run_dir(home: &Path) -> PathBuf {
    home.join("run")
}

fn socket_name(pid: u32) -> String {
    format!("metrics-{pid}.sock")
}

/// A daemon's socket for `rdb metrics`; removed when dropped.
pub struct LocalService {
    path: PathBuf,
}

impl Drop for LocalService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `dir`, made private to this user: created 0700 if missing; an existing
/// one must be a directory (not a symlink) of this user, and is set to 0700.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let meta = std::fs::symlink_metadata(dir)?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if !meta.file_type().is_dir() || meta.uid() != me {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a directory of this user: refusing to put a socket there",
                dir.display()
            ),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Listens on `$REEDBASE_HOME/run/metrics-<pid>.sock` (the directory private
/// to this user) for `rdb metrics`, until the returned service is dropped
/// (the thread stays, its socket gone).
pub fn serve_local(home: &Path) -> std::io::Result<LocalService> {
    let dir = run_dir(home);
    private_dir(&dir)?;
    let path = dir.join(socket_name(std::process::id()));
    // A socket of a process that had this pid before.
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    std::thread::Builder::new()
        .name("metrics-local".into())
        .spawn(move || serve(listener.incoming(), answer_local))?;
    Ok(LocalService { path })
}

/// The user id of the process at the other end of `s`.
fn peer_uid(s: &UnixStream) -> Option<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, a ucred.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(cred.uid)
}

/// A request is `<format> <db>\n`; the answer is the metrics of `db` in
/// that format, or nothing when this process does not serve `db` or the
/// asker is another user.
fn answer_local(mut stream: UnixStream) -> std::io::Result<()> {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if peer_uid(&stream).is_some_and(|uid| uid != me && uid != 0) {
        return Ok(());
    }
    let line = read_request(&mut stream, b"\n")?;
    let line = String::from_utf8_lossy(&line);
    let (format, db) = line.trim_end().split_once(' ').unwrap_or(("", ""));
    if let Some(format) = Format::parse(format)
        && global().serves(db)
    {
        stream.set_timeout(CLIENT_TIMEOUT)?;
        stream.write_all(&render(Some(db), format))?;
    }
    stream.flush()
}

/// Asks every daemon of this home that serves `db` for its metrics: (pid,
/// answer) for each that answered. Sockets of processes that are gone are
/// removed.
pub fn ask_daemons(home: &Path, db: &str, format: Format) -> Vec<(u32, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(run_dir(home)) else {
        return Vec::new();
    };
    let mut socks: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.strip_prefix("metrics-")?.strip_suffix(".sock")?;
            Some((pid.parse().ok()?, e.path()))
        })
        .collect();
    socks.sort();
    let mut out = Vec::new();
    for (pid, path) in socks {
        let mut stream = match UnixStream::connect(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            Err(_) => continue,
        };
        let asked = (|| -> std::io::Result<Vec<u8>> {
            stream.set_timeout(CLIENT_TIMEOUT)?;
            stream.write_all(format!("{} {db}\n", format.name()).as_bytes())?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer)?;
            Ok(answer)
        })();
        match asked {
            Ok(answer) if !answer.is_empty() => out.push((pid, answer)),
            Ok(_) => {}
            Err(e) => tracing::info!(pid, error = %e, "a daemon did not answer for its metrics"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn the_endpoint_serves_metrics_and_nothing_else() {
        super::super::inc(&global().commits, &["unit-http", "t", "write"]);
        let addr = serve_http("127.0.0.1:0".parse().unwrap()).unwrap();
        let ok = get(addr, "/metrics");
        assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        assert!(ok.contains(r#"db="unit-http""#), "{ok}");
        assert!(get(addr, "/").starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn a_stalled_client_does_not_stop_the_next_one() {
        let addr = serve_http("127.0.0.1:0".parse().unwrap()).unwrap();
        // Sends half a request and waits.
        let mut stalled = TcpStream::connect(addr).unwrap();
        stalled.write_all(b"GET /metr").unwrap();
        let started = Instant::now();
        assert!(get(addr, "/metrics").starts_with("HTTP/1.1 200 OK"));
        assert!(started.elapsed() < CLIENT_TIMEOUT);
        // And the stalled one is cut at the deadline, not served forever.
        stalled.set_read_timeout(Some(CLIENT_TIMEOUT * 3)).unwrap();
        let mut rest = Vec::new();
        let _ = stalled.read_to_end(&mut rest);
        assert!(started.elapsed() < CLIENT_TIMEOUT * 3);
    }

    #[test]
    fn a_daemon_answers_for_the_databases_it_serves_only() {
        let home = tempfile::tempdir().unwrap();
        global().serve_db("unit-local");
        super::super::inc(&global().commits, &["unit-local", "t", "write"]);
        let service = serve_local(home.path()).unwrap();
        let run = home.path().join("run");
        assert_eq!(
            std::fs::metadata(&run).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let got = ask_daemons(home.path(), "unit-local", Format::Text);
        assert_eq!(got.len(), 1);
        assert!(String::from_utf8_lossy(&got[0].1).contains(r#"db="unit-local""#));
        assert!(ask_daemons(home.path(), "not-served", Format::Text).is_empty());
        // A socket whose process is gone is removed.
        drop(service);
        let stale = run.join("metrics-1.sock");
        drop(UnixListener::bind(&stale).unwrap());
        assert!(ask_daemons(home.path(), "unit-local", Format::Text).is_empty());
        assert!(!stale.exists());
    }

    #[test]
    fn a_symlink_is_never_the_socket_directory() {
        let home = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), home.path().join("run")).unwrap();
        assert!(serve_local(home.path()).is_err());
    }
}
