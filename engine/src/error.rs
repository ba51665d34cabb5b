//! The engine's error type: what failed, where, and the OS error behind it.

use std::io;
use std::path::PathBuf;

/// A storage failure a caller can meet. I/O errors keep their source, the operation, the file
/// and the offset, so an operator message says exactly which write on which file failed.
#[derive(Debug)]
pub enum StorageError {
    /// An I/O call failed.
    Io {
        op: &'static str,
        file: PathBuf,
        offset: u64,
        source: io::Error,
    },
    /// Disk use is above the hard limit: appends are refused, reads still served. Fix: free
    /// space or lower `file_reserved_time_hours` so retention can delete older segments.
    DiskFull { used_ratio: f64, limit_ratio: f64 },
    /// An earlier write or sync failed; the log refuses appends until `recover()` runs.
    Broken { since: Box<StorageError> },
    /// The append failed because the write or sync covering it failed (the cause is in
    /// `Broken`, reported to the first waiter as `Io`).
    WriteFailed {
        op: &'static str,
        phys_offset: u64,
        kind: io::ErrorKind,
        message: String,
    },
    /// The request cannot be stored (topic, properties or body too long, bad batch...).
    Invalid { reason: String },
    /// A file on disk does not have the expected format.
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The store was closed.
    Closed,
}

impl StorageError {
    pub(crate) fn io(
        op: &'static str,
        file: impl Into<PathBuf>,
        offset: u64,
        source: io::Error,
    ) -> Self {
        StorageError::Io {
            op,
            file: file.into(),
            offset,
            source,
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        StorageError::Invalid {
            reason: reason.into(),
        }
    }

    /// Whether this error means "out of disk space" (ENOSPC or the hard usage limit).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StorageError::DiskFull { .. } => true,
            StorageError::Io { source, .. } => source.raw_os_error() == Some(libc::ENOSPC),
            StorageError::WriteFailed { kind, .. } => *kind == io::ErrorKind::StorageFull,
            StorageError::Broken { since } => since.is_disk_full(),
            _ => false,
        }
    }

    /// A copy good enough to hand to every append that a failure affects.
    pub(crate) fn share(&self) -> StorageError {
        match self {
            StorageError::Io {
                op,
                file,
                offset,
                source,
            } => StorageError::WriteFailed {
                op,
                phys_offset: *offset,
                kind: source.kind(),
                message: format!("{} at {}: {source}", file.display(), offset),
            },
            StorageError::DiskFull {
                used_ratio,
                limit_ratio,
            } => StorageError::DiskFull {
                used_ratio: *used_ratio,
                limit_ratio: *limit_ratio,
            },
            StorageError::Broken { since } => StorageError::Broken {
                since: Box::new(since.share()),
            },
            StorageError::WriteFailed {
                op,
                phys_offset,
                kind,
                message,
            } => StorageError::WriteFailed {
                op,
                phys_offset: *phys_offset,
                kind: *kind,
                message: message.clone(),
            },
            StorageError::Invalid { reason } => StorageError::Invalid {
                reason: reason.clone(),
            },
            StorageError::Corrupt {
                file,
                offset,
                reason,
            } => StorageError::Corrupt {
                file: file.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            StorageError::Closed => StorageError::Closed,
        }
    }
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageError::Io {
                op,
                file,
                offset,
                source,
            } => {
                write!(
                    f,
                    "{op} failed on {} at offset {offset}: {source}",
                    file.display()
                )?;
                if source.raw_os_error() == Some(libc::ENOSPC) {
                    write!(f, " (disk full: free space or shorten fileReservedTime)")?;
                }
                Ok(())
            }
            StorageError::DiskFull {
                used_ratio,
                limit_ratio,
            } => write!(
                f,
                "disk full: {:.1}% used, above the {:.1}% limit; appends refused, reads served \
                 (free space or shorten fileReservedTime)",
                used_ratio * 100.0,
                limit_ratio * 100.0
            ),
            StorageError::Broken { since } => {
                write!(
                    f,
                    "commit log refuses appends until recovered; it failed with: {since}"
                )
            }
            StorageError::WriteFailed {
                op,
                phys_offset,
                kind,
                message,
            } => {
                write!(
                    f,
                    "{op} covering commit-log offset {phys_offset} failed ({kind:?}): {message}"
                )
            }
            StorageError::Invalid { reason } => write!(f, "invalid message: {reason}"),
            StorageError::Corrupt {
                file,
                offset,
                reason,
            } => {
                write!(
                    f,
                    "corrupt file {} at offset {offset}: {reason}",
                    file.display()
                )
            }
            StorageError::Closed => write!(f, "store is closed"),
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::Io { source, .. } => Some(source),
            StorageError::Broken { since } => Some(since.as_ref()),
            _ => None,
        }
    }
}
