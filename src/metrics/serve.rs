//! Where other programs read a process's metrics: an HTTP endpoint for
//! Prometheus (`--metrics-listen`, `GET /metrics`), and a Unix socket per
//! daemon under `$REEDBASE_HOME/run/` that `rdb metrics` asks. Both answer
//! one request at a time on a thread of their own, with bounded reads and
//! time limits: a stuck client holds no commit, and no client can make a
//! daemon buffer more than a request line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Format, global, render};

/// How long a client may take to send its request or take the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest request head read (a scraper's headers fit easily).
const MAX_REQUEST: u64 = 16 * 1024;

/// Serves `GET /metrics` on `addr` (every database's metrics) from a thread.
/// Returns the address bound (port 0 picks one).
pub fn serve_http(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = answer_http(stream) {
                    tracing::debug!(error = %e, "a metrics request failed");
                }
            }
        })?;
    Ok(bound)
}

fn answer_http(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut reader = BufReader::new((&stream).take(MAX_REQUEST));
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The rest of the head, up to its blank line.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
    }
    let mut words = request.split_whitespace();
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

impl LocalService {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LocalService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens on `$REEDBASE_HOME/run/metrics-<pid>.sock` (the directory private
/// to this user) for `rdb metrics`, until the returned service is dropped
/// (the thread stays, its socket gone).
pub fn serve_local(home: &Path) -> std::io::Result<LocalService> {
    let dir = run_dir(home);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let path = dir.join(socket_name(std::process::id()));
    // A socket of a process that had this pid before.
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    std::thread::Builder::new()
        .name("metrics-local".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = answer_local(stream) {
                    tracing::debug!(error = %e, "a metrics request failed");
                }
            }
        })?;
    Ok(LocalService { path })
}

/// A request is `<format> <db>\n`; the answer is the metrics of `db` in
/// that format, or nothing when this process does not serve `db`.
fn answer_local(mut stream: UnixStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_REQUEST)).read_line(&mut line)?;
    let (format, db) = line.trim_end().split_once(' ').unwrap_or(("", ""));
    if let Some(format) = Format::parse(format)
        && global().serves(db)
    {
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
            stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
            stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
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
    fn a_daemon_answers_for_the_databases_it_serves_only() {
        let home = tempfile::tempdir().unwrap();
        global().serve_db("unit-local");
        super::super::inc(&global().commits, &["unit-local", "t", "write"]);
        let service = serve_local(home.path()).unwrap();
        let got = ask_daemons(home.path(), "unit-local", Format::Text);
        assert_eq!(got.len(), 1);
        assert!(String::from_utf8_lossy(&got[0].1).contains(r#"db="unit-local""#));
        assert!(ask_daemons(home.path(), "not-served", Format::Text).is_empty());
        // A socket whose process is gone is removed.
        drop(service);
        let stale = home.path().join("run").join("metrics-1.sock");
        drop(UnixListener::bind(&stale).unwrap());
        assert!(ask_daemons(home.path(), "unit-local", Format::Text).is_empty());
        assert!(!stale.exists());
    }
}
