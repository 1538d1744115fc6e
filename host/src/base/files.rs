//! Files and directories stephost creates for itself.

use std::path::Path;

/// Creates `dir` and its parents, owner-only on Unix.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// What identifies a file's current contents without reading it: two
/// stamps are equal when device, inode, size, modification and change
/// times all are. Take it before reading the file.
#[derive(Debug, Clone)]
pub struct FileStamp {
    identity: Identity,
    recent: bool,
}

/// The fields a stamp compares (numbers, no text: audit appends take four
/// stamps each).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    device: u64,
    inode: u64,
    len: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl PartialEq for FileStamp {
    fn eq(&self, other: &Self) -> bool {
        self.identity == other.identity
    }
}

impl FileStamp {
    /// The stamp of `path` now; `None` if it cannot be read.
    pub fn of(path: &Path) -> Option<Self> {
        Self::from_metadata(&std::fs::metadata(path).ok()?)
    }

    /// The stamp of an open file now (no path looked up); `None` if it
    /// cannot be read.
    pub fn of_file(file: &std::fs::File) -> Option<Self> {
        Self::from_metadata(&file.metadata().ok()?)
    }

    fn from_metadata(meta: &std::fs::Metadata) -> Option<Self> {
        let modified = meta.modified().ok()?;
        let recent = modified.elapsed().map_or(true, |age| age < std::time::Duration::from_secs(2));
        #[cfg(unix)]
        let identity = {
            use std::os::unix::fs::MetadataExt;
            Identity {
                device: meta.dev(),
                inode: meta.ino(),
                len: meta.len(),
                modified: (meta.mtime(), meta.mtime_nsec()),
                changed: (meta.ctime(), meta.ctime_nsec()),
            }
        };
        #[cfg(not(unix))]
        let identity = {
            let since = modified.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            Identity {
                device: 0,
                inode: 0,
                len: meta.len(),
                modified: (since.as_secs() as i64, i64::from(since.subsec_nanos())),
                changed: (0, 0),
            }
        };
        Some(Self { identity, recent })
    }

    /// Modified within the last two seconds when stamped: a change made
    /// in the same clock tick may not show in the times yet.
    pub fn is_recent(&self) -> bool {
        self.recent
    }

    /// The stamp as one line of text, to keep beside what was learned
    /// from the file (e.g. its hash).
    pub fn as_text(&self) -> String {
        let Identity { device, inode, len, modified, changed } = &self.identity;
        format!("{device} {inode} {len} {}.{} {}.{}", modified.0, modified.1, changed.0, changed.1)
    }
}
