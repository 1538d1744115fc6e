//! One server per data directory: `<data>/serve.lock`, held under an OS
//! file lock for the server's lifetime. The OS lets go of it when the
//! process ends, however it ends, so a crashed server never leaves a stale
//! lock behind and no one guesses from a pid whether its holder still
//! lives. The file's text (pid, listen address, start time) only names the
//! holder in a second server's refusal.
//!
//! CLI commands do not take the lock: they work beside the server and touch
//! runs only through leases (see [`crate::store::RunQueue`]).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "serve.lock";

/// The data directory held by this process until dropped: proof, for
/// [`super::AppState::open`], that no other server works on it, so runs
/// left `running` by a server are from one that is gone.
#[derive(Debug)]
pub struct ServeLock {
    file: File,
    /// The data directory itself, locked too: deleting `serve.lock` (a
    /// file anyone who can write the directory may remove) does not free it.
    _directory: File,
    data_dir: PathBuf,
}

/// Why the data directory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live process serves the directory; `holder` is what it
    /// wrote about itself, e.g. `pid 41, listening on http://127.0.0.1:8787`.
    #[error(
        "data directory {dir} is already served by another stephost ({holder}); stop it or choose another --data"
    )]
    Held {
        /// The data directory.
        dir: String,
        /// The holder as it described itself.
        holder: String,
    },
    /// The lock file could not be opened or locked.
    #[error("{path}: {source}")]
    Io {
        /// The lock file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl ServeLock {
    /// Takes `data_dir` (creating it if needed), or says who holds it. It
    /// never waits: a second server refuses at once.
    pub fn acquire(data_dir: &Path) -> Result<Self, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| LockError::Io { path: path.display().to_string(), source };
        crate::base::files::create_private_dir(data_dir).map_err(io)?;
        let directory = File::open(data_dir).map_err(io)?;
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match directory.try_lock().and_then(|()| file.try_lock()) {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = describe(&text);
                return Err(LockError::Held { dir: data_dir.display().to_string(), holder });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut lock = Self { file, _directory: directory, data_dir: data_dir.to_path_buf() };
        lock.write(None).map_err(io)?;
        Ok(lock)
    }

    /// Adds where the server listens to what a refused second server prints.
    pub fn record_listen(&mut self, listen: SocketAddr) -> std::io::Result<()> {
        self.write(Some(listen))
    }

    /// The directory this lock holds.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn write(&mut self, listen: Option<SocketAddr>) -> std::io::Result<()> {
        let started = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        let mut text = format!("pid {}\nstarted {started}\n", std::process::id());
        if let Some(listen) = listen {
            text.push_str(&format!("listen http://{listen}\n"));
        }
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()
    }
}

/// `pid 41, listening on http://…, started …` from the lock file's lines;
/// unknown fields are left out (the holder may not have written them yet).
fn describe(text: &str) -> String {
    let field = |name: &str| {
        text.lines().find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
    };
    let mut parts = vec![match field("pid") {
        Some(pid) => format!("pid {}", pid.trim()),
        None => "pid unknown".to_string(),
    }];
    if let Some(listen) = field("listen") {
        parts.push(format!("listening on {}", listen.trim()));
    }
    if let Some(started) = field("started") {
        parts.push(format!("started {}", started.trim()));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = ServeLock::acquire(dir.path()).unwrap();
        first.record_listen("127.0.0.1:9".parse().unwrap()).unwrap();
        let refused = ServeLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(refused.contains(&format!("pid {}", std::process::id())), "{refused}");
        assert!(refused.contains("listening on http://127.0.0.1:9"), "{refused}");
        assert!(!refused.contains('\n'), "one line: {refused}");
        drop(first);
        ServeLock::acquire(dir.path()).expect("free again once the holder lets go");
    }

    #[test]
    fn deleting_the_lock_file_does_not_free_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _first = ServeLock::acquire(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join(LOCK_FILE)).unwrap();
        let refused = ServeLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("already served"), "{refused}");
    }
}
