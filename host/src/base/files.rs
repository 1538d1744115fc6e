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
    key: String,
    recent: bool,
}

impl PartialEq for FileStamp {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
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
        let key = {
            use std::os::unix::fs::MetadataExt;
            format!(
                "{} {} {} {}.{} {}.{}",
                meta.dev(),
                meta.ino(),
                meta.len(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime(),
                meta.ctime_nsec()
            )
        };
        #[cfg(not(unix))]
        let key = format!("{} {:?}", meta.len(), modified);
        Some(Self { key, recent })
    }

    /// Modified within the last two seconds when stamped: a change made
    /// in the same clock tick may not show in the times yet.
    pub fn is_recent(&self) -> bool {
        self.recent
    }

    /// The stamp as one line of text, to keep beside what was learned
    /// from the file (e.g. its hash).
    pub fn as_text(&self) -> &str {
        &self.key
    }
}
