//! Files of secrets the gateway keeps in `data_dir` (`secrets.key`,
//! `signing-secret.json`): readable by their owner only, and written whole or
//! not at all, so a crash mid-write leaves the old file (or none), never a
//! half-written key that would fail the next start.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Replaces `file` with `contents`: written beside it (mode 0600), synced,
/// renamed over it, and the directory entry synced.
pub fn write_whole(file: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut partial_name = file.as_os_str().to_owned();
    partial_name.push(".partial");
    let partial = Path::new(&partial_name);
    let _ = std::fs::remove_file(partial);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)?;
    out.write_all(contents)?;
    out.sync_all()?;
    std::fs::rename(partial, file)?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn replaces_the_file_owner_only_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("secret.json");
        std::fs::write(&file, b"old").expect("old file");
        write_whole(&file, b"new").expect("written");
        assert_eq!(std::fs::read(&file).expect("read back"), b"new");
        let mode = std::fs::metadata(&file)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("listing").collect();
        assert_eq!(names.len(), 1, "no partial file left: {names:?}");
    }
}
