//! Read handles of the journal's segments: a few kept open, the rest opened
//! when read. A store that keeps months of segments must not hold a file
//! descriptor for each (the process's limit is often 1,024); reads mostly hit
//! the newest segments (the router, recent requests), which stay open.

use super::segment_path;
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// How many segments' read handles stay open.
pub(super) const OPEN_SEGMENTS: usize = 8;

/// The segments left, and read handles of the most recently read ones.
pub(super) struct Segments {
    dir: PathBuf,
    /// The oldest segment left, and one past the newest.
    pub(super) first: u32,
    pub(super) end: u32,
    /// Most recently read last.
    open: VecDeque<(u32, Arc<File>)>,
}

impl Segments {
    pub(super) fn new(dir: PathBuf, first: u32, end: u32) -> Segments {
        Segments {
            dir,
            first,
            end,
            open: VecDeque::with_capacity(OPEN_SEGMENTS + 1),
        }
    }

    /// A read handle of segment `number`, which must be left.
    pub(super) fn get(&mut self, number: u32) -> io::Result<Arc<File>> {
        if number < self.first {
            let message = format!("journal segment {number} was deleted (retention)");
            return Err(io::Error::new(io::ErrorKind::NotFound, message));
        }
        if number >= self.end {
            let message = format!("journal segment {number} does not exist");
            return Err(io::Error::new(io::ErrorKind::NotFound, message));
        }
        let file = match self.open.iter().position(|(open, _)| *open == number) {
            Some(index) => self.open.remove(index).expect("found").1,
            None => Arc::new(File::open(segment_path(&self.dir, number))?),
        };
        self.open.push_back((number, file.clone()));
        if self.open.len() > OPEN_SEGMENTS {
            // A read of it still going on keeps its own handle.
            self.open.pop_front();
        }
        Ok(file)
    }

    /// Forgets the oldest segment (deleted by retention).
    pub(super) fn pop_oldest(&mut self) {
        let oldest = self.first;
        self.open.retain(|(number, _)| *number != oldest);
        self.first += 1;
    }
}
