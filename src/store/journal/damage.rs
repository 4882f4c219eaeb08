//! Bytes in a segment that are not whole frames, and what is done with them.
//!
//! A crash can only tear the newest segment's last batch, which was never
//! acknowledged (a batch is answered after its sync): bad bytes with no whole
//! frame after them are a torn tail, cut off on open. Bad bytes followed by
//! whole frames running to the segment's end are damage (a disk, or a person,
//! changed acknowledged bytes): cutting them would cut acknowledged requests,
//! so open refuses and names where, and `repair` sets the damaged bytes aside
//! and puts a filler frame of the same size in their place, so that every
//! record around them keeps its offset (sled's index points at offsets).

use super::frame::{self, FRAME_HEADER};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Where whole frames start again in `bad` (bytes that do not start with a
/// frame, up to the segment's end) and run to its end; None when nothing
/// after the bad frame's header is whole frames up to the end: a torn tail.
pub(super) fn frames_resume(bad: &[u8]) -> Option<usize> {
    // The bad frame has a header at least; whole frames cannot start inside it.
    (FRAME_HEADER as usize..bad.len()).find(|&start| {
        let rest = &bad[start..];
        frame::whole_frames_len(rest) == rest.len()
    })
}

/// The error a start gives for damage in the newest segment.
pub(super) fn damaged(path: &Path, offset: u64, resume: u64) -> io::Error {
    let message = format!(
        "journal segment {} is damaged at byte {offset}: whole records follow from byte {resume}, \
         so this is not a torn write and nothing was cut; run `hookgate repair` to set the \
         damaged bytes aside and keep every whole record",
        path.display()
    );
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// What `repair` did to one run of bad bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    pub segment: PathBuf,
    /// Where the bad bytes started, and how many there were.
    pub offset: u64,
    pub len: u64,
    /// Whole records followed (a filler took the bad bytes' place), or the
    /// bad bytes ran to the end (they were cut off).
    pub records_follow: bool,
    /// The file beside the segment that holds the bad bytes.
    pub kept: PathBuf,
}

/// Sets aside every run of bad bytes in the segment at `path`, keeping every
/// whole record where it was.
pub(super) fn repair_segment(path: &Path) -> io::Result<Vec<SetAside>> {
    let mut bytes = std::fs::read(path)?;
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let mut repaired = Vec::new();
    let mut offset = 0;
    loop {
        offset += frame::whole_frames_len(&bytes[offset..]);
        if offset == bytes.len() {
            break;
        }
        let bad = &bytes[offset..];
        let set_aside = match frames_resume(bad) {
            Some(resume) => {
                let kept = keep_beside(path, &format!("damaged-at-{offset}"), &bad[..resume])?;
                let filler = frame::filler(resume as u64)?;
                file.write_all_at(&filler, offset as u64)?;
                file.sync_data()?;
                bytes[offset..offset + resume].copy_from_slice(&filler);
                SetAside {
                    segment: path.to_path_buf(),
                    offset: offset as u64,
                    len: resume as u64,
                    records_follow: true,
                    kept,
                }
            }
            None => {
                let len = bad.len() as u64;
                let kept = cut_off(path, &file, offset as u64)?;
                bytes.truncate(offset);
                SetAside {
                    segment: path.to_path_buf(),
                    offset: offset as u64,
                    len,
                    records_follow: false,
                    kept,
                }
            }
        };
        tracing::warn!(?set_aside, "set damaged bytes of the request journal aside");
        repaired.push(set_aside);
    }
    Ok(repaired)
}

/// Cuts a segment back to `valid_len`. The bytes cut go to a file beside it
/// first: a torn batch was never acknowledged, but if the cause was damage
/// instead, nothing is destroyed. Returns that file.
pub(super) fn cut_off(path: &Path, file: &File, valid_len: u64) -> io::Result<PathBuf> {
    let len = file.metadata()?.len();
    let mut tail = vec![0u8; (len - valid_len) as usize];
    file.read_exact_at(&mut tail, valid_len)?;
    let kept = keep_beside(path, "cut", &tail)?;
    file.set_len(valid_len)?;
    file.sync_all()?;
    Ok(kept)
}

/// Writes `bytes` durably to `<segment>.<what>-<ms>` beside the segment.
fn keep_beside(path: &Path, what: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{what}-{}", crate::ids::now_ms()));
    let kept = PathBuf::from(name);
    std::fs::write(&kept, bytes)?;
    File::open(&kept)?.sync_all()?;
    Ok(kept)
}

/// Deletes the files `keep_beside` wrote for the segment at `path`: they go
/// with it.
pub(super) fn remove_kept_beside(path: &Path) -> io::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    let prefix = format!("{}.", name.to_string_lossy());
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}
