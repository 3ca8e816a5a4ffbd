//! The wire: rsync (locally or over SSH) for the files under `sync/`, and
//! `rdb` run over SSH for what a remote location must do itself (say what
//! it is, create a location, integrate). Nothing else runs on a remote.
//!
//! Every command has a time limit; a peer that does not answer in time is
//! reported unreachable, never waited on forever.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::error::{Result, SyncError};
use super::locations::{Location, Url};

/// The ssh command when a location names none: the user's keys and
/// known_hosts, never a password prompt.
pub const DEFAULT_SSH: &str = "ssh -o BatchMode=yes -o ConnectTimeout=10";

/// Environment variable with the ssh command for locations that name none.
pub const SSH_ENV: &str = "REEDBASE_SSH";

/// How long one remote command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one transfer may take in all: a large one goes on as long as
/// bytes flow (rsync's own `--timeout` ends a stalled one after 30 s).
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// What one transfer moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    pub files: u64,
    /// Bytes on the wire, both ways (rsync's own accounting).
    pub bytes: u64,
}

/// A command's outcome.
pub struct Ran {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` with a time limit (killed past it: status None).
pub fn run(cmd: Command, timeout: Duration) -> std::io::Result<Ran> {
    run_with_input(cmd, timeout, None)
}

/// [`run`], writing `input` to the command's stdin.
pub fn run_with_input(
    mut cmd: Command,
    timeout: Duration,
    input: Option<Vec<u8>>,
) -> std::io::Result<Ran> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&bytes);
        });
    }
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    // Drain both pipes on threads so a chatty child never blocks.
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let status = wait_bounded(&mut child, timeout)?;
    Ok(Ran {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    })
}

/// Waits for `child` at most `timeout`, then kills it: its exit code
/// (none: killed, or ended by a signal).
fn wait_bounded(
    child: &mut std::process::Child,
    timeout: Duration,
) -> std::io::Result<Option<i32>> {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(s.code());
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Most of a command's stderr kept by [`run_into`].
const MAX_STDERR: u64 = 1 << 20;

/// [`run`], with the command's stdout copied into `out` as it comes (none
/// of it held here; `Ran::stdout` is empty) and its stderr kept up to 1 MiB.
pub fn run_into(
    mut cmd: Command,
    timeout: Duration,
    out: &mut (dyn std::io::Write + Send),
) -> std::io::Result<Ran> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    std::thread::scope(|s| {
        let copied = s.spawn(move || -> std::io::Result<()> {
            if let Some(mut o) = stdout {
                std::io::copy(&mut o, out)?;
            }
            Ok(())
        });
        let t_err = s.spawn(move || {
            let mut text = String::new();
            if let Some(e) = stderr {
                let _ = e.take(MAX_STDERR).read_to_string(&mut text);
            }
            text
        });
        let status = wait_bounded(&mut child, timeout)?;
        let copied = copied
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the output copy failed")));
        let stderr = t_err.join().unwrap_or_default();
        copied?;
        Ok(Ran {
            status,
            stdout: String::new(),
            stderr,
        })
    })
}

/// Quotes `s` for a POSIX shell (the remote side of ssh).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A location to talk to.
pub struct Remote<'a> {
    pub location: &'a Location,
    pub url: Url,
    /// Where ssh may keep a shared connection's socket (none: no sharing).
    pub sockets: Option<std::path::PathBuf>,
}

/// Environment variable naming `rdb` on remote hosts whose location sets
/// none (default: `rdb` on the remote PATH).
pub const REMOTE_RDB_ENV: &str = "REEDBASE_REMOTE_RDB";

/// Environment variable that turns connection sharing off (`0`).
pub const SSH_MUX_ENV: &str = "REEDBASE_SSH_MUX";

/// Longest socket path ssh can use (sun_path is 108 bytes; ssh adds a
/// 17-byte suffix while it creates one).
const MAX_SOCKET_PATH: usize = 100;

/// rsync and ssh exit codes that mean "could not reach it" (255: ssh's
/// own failure; 10, 12, 30, 35: socket, stream, timeouts).
fn unreachable_code(code: Option<i32>) -> bool {
    matches!(
        code,
        None | Some(255) | Some(10) | Some(12) | Some(30) | Some(35)
    )
}

impl<'a> Remote<'a> {
    pub fn new(location: &'a Location) -> Result<Remote<'a>> {
        Ok(Remote {
            url: location.url()?,
            location,
            sockets: None,
        })
    }

    /// Shares one ssh connection per peer across a round's commands (and
    /// for a minute after), with sockets in `dir` (private to this user).
    pub fn sharing(mut self, dir: std::path::PathBuf) -> Remote<'a> {
        self.sockets = Some(dir);
        self
    }

    /// The location's ssh command, else `$REEDBASE_SSH`, else [`DEFAULT_SSH`].
    fn ssh_words(&self) -> Vec<String> {
        let env = std::env::var(SSH_ENV).ok().filter(|s| !s.trim().is_empty());
        let mut words: Vec<String> = self
            .location
            .ssh
            .clone()
            .or(env)
            .unwrap_or_else(|| DEFAULT_SSH.to_string())
            .split_whitespace()
            .map(str::to_string)
            .collect();
        // Connection sharing, unless the command sets its own or it is off.
        let off = std::env::var(SSH_MUX_ENV).is_ok_and(|v| v == "0");
        if let Some(dir) = &self.sockets
            && !off
            && !words.iter().any(|w| w.contains("ControlPath"))
        {
            let path = format!("{}/%C", dir.display());
            if path.len() + 38 + 17 <= MAX_SOCKET_PATH && !path.contains(char::is_whitespace) {
                words.splice(
                    1..1,
                    [
                        "-o".to_string(),
                        "ControlMaster=auto".to_string(),
                        "-o".to_string(),
                        format!("ControlPath={path}"),
                        "-o".to_string(),
                        "ControlPersist=60".to_string(),
                        // A shared connection over a cut link is noticed in
                        // seconds, not when TCP gives up.
                        "-o".to_string(),
                        "ServerAliveInterval=3".to_string(),
                        "-o".to_string(),
                        "ServerAliveCountMax=2".to_string(),
                    ],
                );
            }
        }
        words
    }

    /// The ssh program and its arguments (an empty command is an error).
    fn ssh_program<'w>(&self, words: &'w [String]) -> Result<(&'w String, &'w [String])> {
        words.split_first().ok_or_else(|| {
            SyncError::Config(format!("{}: an empty ssh command", self.location.name))
        })
    }

    fn fail(&self, what: &str, ran: &Ran) -> SyncError {
        let detail = match ran.status {
            None => format!("no answer within {} s", COMMAND_TIMEOUT.as_secs()),
            Some(c) => format!("exit {c}: {}", ran.stderr.trim()),
        };
        SyncError::Transport {
            peer: self.location.name.clone(),
            what: what.to_string(),
            detail,
            unreachable: unreachable_code(ran.status),
        }
    }

    fn spawn_error(&self, what: &str, e: std::io::Error) -> SyncError {
        SyncError::Transport {
            peer: self.location.name.clone(),
            what: what.to_string(),
            detail: e.to_string(),
            unreachable: false,
        }
    }

    /// This location's root as rsync names it (files are named relative to it).
    fn sync_spec(&self) -> String {
        match &self.url {
            Url::Path(p) => format!("{}/", p.display()),
            Url::Ssh { host, path } => format!("{host}:{path}/"),
        }
    }

    fn rsync(&self, src: &str, dst: &str, what: &str, files: &[String]) -> Result<(Moved, String)> {
        let mut cmd = Command::new("rsync");
        // Immutable files only: never overwrite one (--ignore-existing);
        // rsync writes each to a dot-named temp file and renames it, so a
        // cut transfer leaves no partial file under a record's name; dot
        // files (another transfer's temp files) are not copied.
        cmd.args([
            "-rt",
            "--ignore-existing",
            "--chmod=D700,F600",
            "--exclude=.*",
            "--stats",
            "--timeout=30",
            "--protect-args",
        ]);
        // Exactly these paths, relative to the source root (directories
        // among them copied whole).
        cmd.arg("--files-from=-");
        let input = Some(
            files
                .iter()
                .map(|p| format!("{p}\n"))
                .collect::<String>()
                .into_bytes(),
        );
        if matches!(self.url, Url::Ssh { .. }) {
            cmd.arg("-e").arg(self.ssh_words().join(" "));
        }
        cmd.arg(src).arg(dst);
        let ran =
            run_with_input(cmd, TRANSFER_TIMEOUT, input).map_err(|e| self.spawn_error(what, e))?;
        if ran.status != Some(0) {
            return Err(self.fail(what, &ran));
        }
        let stat = |label: &str| {
            ran.stdout
                .lines()
                .find_map(|l| l.strip_prefix(label))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.replace(',', "").parse::<u64>().ok())
                .unwrap_or(0)
        };
        let moved = Moved {
            files: stat("Number of regular files transferred:"),
            bytes: stat("Total bytes sent:") + stat("Total bytes received:"),
        };
        Ok((moved, ran.stdout))
    }

    /// Takes `files` (paths under the root, travelling ones only: files, or
    /// directories copied whole) from the peer into the root `local_sync`.
    pub fn pull(&self, local_sync: &Path, files: &[String]) -> Result<Moved> {
        let dst = format!("{}/", local_sync.display());
        match self.rsync(&self.sync_spec(), &dst, "pull", files) {
            Ok((moved, _)) => Ok(moved),
            // A location that has never synced has no sync/ yet: nothing to take.
            Err(SyncError::Transport { detail, .. })
                if detail.contains("change_dir") && detail.contains("No such file") =>
            {
                Ok(Moved::default())
            }
            Err(e) => Err(e),
        }
    }

    /// Gives the peer `files` (as for [`Self::pull`]).
    pub fn push(&self, local_root: &Path, files: &[String]) -> Result<Moved> {
        let src = format!("{}/", local_root.display());
        Ok(self.rsync(&src, &self.sync_spec(), "push", files)?.0)
    }

    /// Runs `rdb <args>` on the remote host; its stdout.
    pub fn rdb(&self, args: &[&str]) -> Result<String> {
        let what = format!("rdb {}", args.first().copied().unwrap_or(""));
        let ran = self.rdb_ran(args, COMMAND_TIMEOUT)?;
        if ran.status != Some(0) {
            return Err(self.fail(&what, &ran));
        }
        Ok(ran.stdout)
    }

    /// Runs `rdb <args>` on the remote host within `timeout`, its stdout
    /// copied into `out` as it comes ([`run_into`]); the caller reads the status.
    pub fn rdb_into(
        &self,
        args: &[&str],
        timeout: Duration,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<Ran> {
        let what = format!("rdb {}", args.first().copied().unwrap_or(""));
        let cmd = self.ssh_command(&self.remote_rdb(args))?;
        run_into(cmd, timeout, out).map_err(|e| self.spawn_error(&what, e))
    }

    /// The remote shell command that runs `rdb <args>`.
    fn remote_rdb(&self, args: &[&str]) -> String {
        let env = std::env::var(REMOTE_RDB_ENV)
            .ok()
            .filter(|s| !s.trim().is_empty());
        let rdb = self
            .location
            .rdb
            .clone()
            .or(env)
            .unwrap_or_else(|| "rdb".into());
        let mut remote = vec![shell_quote(&rdb)];
        remote.extend(args.iter().map(|a| shell_quote(a)));
        remote.join(" ")
    }

    /// Runs `rdb <args>` on the remote host within `timeout`, whatever its
    /// exit: the caller reads the status (a failure to start ssh is the error).
    pub fn rdb_ran(&self, args: &[&str], timeout: Duration) -> Result<Ran> {
        let what = format!("rdb {}", args.first().copied().unwrap_or(""));
        self.ssh_run(&what, &self.remote_rdb(args), timeout)
    }

    /// The ssh command that runs the shell command `remote` on the host.
    fn ssh_command(&self, remote: &str) -> Result<Command> {
        let Url::Ssh { host, .. } = &self.url else {
            return Err(SyncError::Config(format!(
                "{} is a local path: nothing to run remotely",
                self.location.name
            )));
        };
        let words = self.ssh_words();
        let (program, rest) = self.ssh_program(&words)?;
        let mut cmd = Command::new(program);
        cmd.args(rest).arg(host).arg("--").arg(remote);
        Ok(cmd)
    }

    /// Runs the shell command `remote` on the remote host within `timeout`.
    fn ssh_run(&self, what: &str, remote: &str, timeout: Duration) -> Result<Ran> {
        let cmd = self.ssh_command(remote)?;
        run(cmd, timeout).map_err(|e| self.spawn_error(what, e))
    }

    /// The round trip of one trivial command (`true`) on the remote host.
    pub fn ping(&self, timeout: Duration) -> Result<Duration> {
        let started = std::time::Instant::now();
        let ran = self.ssh_run("ping", "true", timeout)?;
        if ran.status != Some(0) {
            return Err(self.fail("ping", &ran));
        }
        Ok(started.elapsed())
    }

    /// The error of a command that ran and failed (for callers of [`Self::rdb_ran`]).
    pub fn failure(&self, what: &str, ran: &Ran) -> SyncError {
        self.fail(what, ran)
    }

    /// Copies the running `rdb` to `dest` on the remote host (creating its
    /// directory) and makes it executable.
    pub fn install_rdb(&self, dest: &str) -> Result<()> {
        let Url::Ssh { host, .. } = &self.url else {
            return Ok(());
        };
        let exe = std::env::current_exe().map_err(|e| self.spawn_error("install rdb", e))?;
        let words = self.ssh_words();
        let dir = dest.rsplit_once('/').map_or(".", |(d, _)| d);
        let (program, rest) = self.ssh_program(&words)?;
        let mut mk = Command::new(program);
        mk.args(rest)
            .arg(host)
            .arg("--")
            .arg(format!("mkdir -p {}", shell_quote(dir)));
        let ran = run(mk, COMMAND_TIMEOUT).map_err(|e| self.spawn_error("install rdb", e))?;
        if ran.status != Some(0) {
            return Err(self.fail("install rdb", &ran));
        }
        let mut cmd = Command::new("rsync");
        cmd.args(["-t", "--chmod=F755", "-e"])
            .arg(words.join(" "))
            .arg(&exe)
            .arg(format!("{host}:{dest}"));
        let ran = run(cmd, COMMAND_TIMEOUT).map_err(|e| self.spawn_error("install rdb", e))?;
        if ran.status != Some(0) {
            return Err(self.fail("install rdb", &ran));
        }
        Ok(())
    }
}
