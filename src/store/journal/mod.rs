//! The request journal: every received request, appended in commit order to
//! segment files, with one `fdatasync` per group commit.
//!
//! Why not sled for this: a sled insert copies B-tree pages (6–14 µs of CPU
//! each on our 2-core machines, BENCHMARKS.md) and an acknowledgement used to
//! need three of them plus a flush. An append is a copy into one `write`, and
//! the whole batch shares the sync. sled keeps the small records (the request's
//! metadata and where its payload lies), written by the router after the
//! answer; on start, whatever the journal holds past the router's watermark is
//! indexed and routed again (routing is idempotent).
//!
//! Layout: `dir/NNNNNNNNNN.journal` segments, numbered from 0 and never
//! rewritten (but by `repair`); retention deletes the oldest ones once they
//! hold nothing kept (`remove_oldest`), so the numbers start wherever the
//! oldest left is, which `dir/first-kept` names (a start tells a segment
//! deleted from one lost). Frames: see `frame`. A crash can only tear the tail
//! of the newest segment (a batch is acknowledged after its sync), so `open`
//! cuts a torn tail off, keeping the bytes it cut in a `.cut-<ms>` file next
//! to the segment; anything else that is not whole frames is damage (see
//! `damage`).

mod damage;
mod frame;
mod handles;

pub use damage::SetAside;

use frame::{Frame, FRAME_HEADER, MAX_RECORD};
use handles::Segments;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Records longer than this are checked against their segment's length before
/// they are read (see `read`).
const LARGE_RECORD: u32 = 1 << 20;
const EXTENSION: &str = "journal";

/// Where one record lies.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Location {
    pub segment: u32,
    /// Of the frame, from the start of the segment.
    pub offset: u64,
    pub len: u32,
}

impl From<(u32, u64, u32)> for Location {
    fn from((segment, offset, len): (u32, u64, u32)) -> Location {
        Location {
            segment,
            offset,
            len,
        }
    }
}

impl From<Location> for (u32, u64, u32) {
    fn from(location: Location) -> (u32, u64, u32) {
        (location.segment, location.offset, location.len)
    }
}

impl Location {
    pub const ENCODED_LEN: usize = 16;

    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut bytes = [0u8; Self::ENCODED_LEN];
        bytes[..4].copy_from_slice(&self.segment.to_be_bytes());
        bytes[4..12].copy_from_slice(&self.offset.to_be_bytes());
        bytes[12..].copy_from_slice(&self.len.to_be_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Option<Location> {
        let bytes: &[u8; Self::ENCODED_LEN] = bytes.try_into().ok()?;
        Some(Location {
            segment: u32::from_be_bytes(bytes[..4].try_into().ok()?),
            offset: u64::from_be_bytes(bytes[4..12].try_into().ok()?),
            len: u32::from_be_bytes(bytes[12..].try_into().ok()?),
        })
    }

    /// Where the next frame starts.
    fn end(&self) -> u64 {
        self.offset + FRAME_HEADER + u64::from(self.len)
    }
}

/// A handle to the journal; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    segment_bytes: u64,
    writer: Mutex<Writer>,
    segments: Mutex<Segments>,
    /// Why the last append failed; None once one succeeds (readiness).
    last_failure: Mutex<Option<String>>,
}

struct Writer {
    segment: u32,
    file: File,
    len: u64,
    /// The segment's torn tail was cut on open: new records start a new
    /// segment (see `open`).
    torn: bool,
    /// A write failed halfway and cutting it off failed too: bytes past `len`
    /// are junk, to be cut before anything else is written (never left in a
    /// segment that later ones follow, where the next open would call it
    /// corruption).
    junk_past_len: bool,
}

impl Journal {
    /// Opens (or creates) the journal in `dir`; a segment is closed once it
    /// holds `segment_bytes`. Damage in the newest segment (see `damage`) is
    /// an error naming the segment and the byte: `repair` deals with it.
    pub fn open(dir: &Path, segment_bytes: u64) -> io::Result<Journal> {
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            // The new directory's own entry must survive a power cut too.
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        let numbers = leftovers_removed(dir, segment_numbers(dir)?)?;
        let first = numbers.first().copied().unwrap_or(0);
        for (expected, number) in (first..).zip(&numbers) {
            if *number != expected {
                let message = format!("journal segment {expected} is missing in {dir:?}");
                return Err(io::Error::new(io::ErrorKind::InvalidData, message));
            }
        }
        let last = numbers.last().copied().unwrap_or(0);
        let path = segment_path(dir, last);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let len = valid_len(&file)?;
        let cut = len < file.metadata()?.len();
        if cut {
            cut_torn_tail(&path, &file, len)?;
        }
        if numbers.is_empty() {
            sync_dir(dir)?;
        }
        let writer = Writer {
            segment: last,
            file,
            len,
            // After a cut, new records go to a new segment: offsets that were
            // handed out before (and may be remembered, e.g. by the router's
            // watermark) never point at different records.
            torn: cut,
            junk_past_len: false,
        };
        Ok(Journal {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                segment_bytes,
                writer: Mutex::new(writer),
                segments: Mutex::new(Segments::new(dir.to_path_buf(), first, last + 1)),
                last_failure: Mutex::default(),
            }),
        })
    }

    /// Sets aside every run of bytes in the journal in `dir` that is not
    /// whole frames (see `damage`), keeping every whole record at its offset.
    /// The journal must not be open meanwhile.
    pub fn repair(dir: &Path) -> io::Result<Vec<SetAside>> {
        let mut repaired = Vec::new();
        for number in segment_numbers(dir)? {
            repaired.extend(damage::repair_segment(&segment_path(dir, number))?);
        }
        sync_dir(dir)?;
        Ok(repaired)
    }

    /// Appends records and syncs them to disk; returns where each one lies.
    pub fn append(&self, records: &[&[u8]]) -> io::Result<Vec<Location>> {
        let appended = self.append_synced(records);
        *self
            .inner
            .last_failure
            .lock()
            .expect("journal failure lock") = appended.as_ref().err().map(io::Error::to_string);
        appended
    }

    /// Why the last append failed, unless one has succeeded since.
    pub fn last_failure(&self) -> Option<String> {
        self.inner
            .last_failure
            .lock()
            .expect("journal failure lock")
            .clone()
    }

    fn append_synced(&self, records: &[&[u8]]) -> io::Result<Vec<Location>> {
        let mut writer = self.inner.writer.lock().expect("journal writer lock");
        if writer.junk_past_len {
            // Until this works, nothing is written (and nothing acknowledged).
            let len = writer.len;
            writer.file.set_len(len)?;
            writer.junk_past_len = false;
        }
        if writer.len >= self.inner.segment_bytes || writer.torn {
            self.roll(&mut writer)?;
        }
        let mut frames = Vec::with_capacity(
            records
                .iter()
                .map(|r| r.len() + FRAME_HEADER as usize)
                .sum(),
        );
        let mut locations = Vec::with_capacity(records.len());
        for record in records {
            if record.len() >= MAX_RECORD {
                let message = "a journal record must be shorter than 2 GiB";
                return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
            }
            locations.push(Location {
                segment: writer.segment,
                offset: writer.len + frames.len() as u64,
                len: record.len() as u32,
            });
            frame::encode_record(record, &mut frames);
        }
        let written = writer
            .file
            .write_all(&frames)
            .and_then(|()| writer.file.sync_data());
        if let Err(error) = written {
            // Undo the partial batch so that the segment stays readable.
            let len = writer.len;
            writer.junk_past_len = writer.file.set_len(len).is_err();
            return Err(error);
        }
        writer.len += frames.len() as u64;
        Ok(locations)
    }

    /// Starts the next segment (the current one is full or torn).
    fn roll(&self, writer: &mut Writer) -> io::Result<()> {
        let segment = writer.segment + 1;
        let path = segment_path(&self.inner.dir, segment);
        // Not `create_new`: a roll that failed after creating the file leaves
        // it empty, and the next roll takes it over.
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        if file.metadata()?.len() > 0 {
            let message = format!("journal segment {} already holds records", path.display());
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, message));
        }
        sync_dir(&self.inner.dir)?;
        self.inner
            .segments
            .lock()
            .expect("journal segments lock")
            .end = segment + 1;
        *writer = Writer {
            segment,
            file,
            len: 0,
            torn: false,
            junk_past_len: false,
        };
        Ok(())
    }

    /// The record at `location`, checked against its length and checksum.
    pub fn read(&self, location: Location) -> io::Result<Vec<u8>> {
        let file = self.segment(location.segment)?;
        let past_the_end = || corrupt(location, "it runs past the segment's end");
        // A bad location must not make us allocate gigabytes: a large length
        // is checked against the file first (small ones need no extra call).
        if location.len > LARGE_RECORD && location.end() > file.metadata()?.len() {
            return Err(past_the_end());
        }
        // The location knows the length: header and record in one read.
        let mut bytes = vec![0u8; FRAME_HEADER as usize + location.len as usize];
        file.read_exact_at(&mut bytes, location.offset)
            .map_err(|error| match error.kind() {
                io::ErrorKind::UnexpectedEof => past_the_end(),
                _ => error,
            })?;
        let header = bytes[..FRAME_HEADER as usize].try_into().expect("header");
        // A filler's length field has its top bit set: it never matches.
        let (len, crc) = frame::header_fields(header);
        if len != location.len {
            return Err(corrupt(location, "its length does not match"));
        }
        bytes.drain(..FRAME_HEADER as usize);
        if frame::checksum(len, &bytes) != crc {
            return Err(corrupt(location, "its checksum does not match"));
        }
        Ok(bytes)
    }

    fn segment(&self, number: u32) -> io::Result<Arc<File>> {
        self.inner
            .segments
            .lock()
            .expect("journal segments lock")
            .get(number)
    }

    /// The numbers of the segments left: the oldest, and one past the newest.
    pub fn segment_range(&self) -> std::ops::Range<u32> {
        let segments = self.inner.segments.lock().expect("journal segments lock");
        segments.first..segments.end
    }

    /// Deletes segment `number`, which must be the oldest and not the one
    /// being written. Its records can no longer be read (retention: none of
    /// them is kept).
    pub fn remove_oldest(&self, number: u32) -> io::Result<()> {
        // The writer only moves on: once past `number`, it stays past.
        let writing = self
            .inner
            .writer
            .lock()
            .expect("journal writer lock")
            .segment;
        {
            let mut segments = self.inner.segments.lock().expect("journal segments lock");
            if segments.first != number || number >= writing {
                let message =
                    format!("journal segment {number} is not the oldest one or is being written");
                return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
            }
            segments.pop_oldest();
        }
        // Outside the locks: appends and reads go on meanwhile. The mark goes
        // first, so that a start can tell a segment deleted on purpose (or
        // half deleted: it finishes the job) from one that went missing.
        write_first_kept(&self.inner.dir, number + 1)?;
        let path = segment_path(&self.inner.dir, number);
        std::fs::remove_file(&path)?;
        damage::remove_kept_beside(&path)?;
        sync_dir(&self.inner.dir)
    }

    /// Calls `visit` with every record after `after` (all of them for None),
    /// in the order they were appended. A segment must end with whole frames
    /// (`open` cut the newest one's torn tail): anything else is an error
    /// naming where, rather than records silently skipped.
    pub fn each_after<E: From<io::Error>>(
        &self,
        after: Option<Location>,
        mut visit: impl FnMut(Location, Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let segments = self.segment_range();
        let (first, mut offset) = match after {
            Some(location) if location.segment >= segments.start => {
                (location.segment, location.end())
            }
            // Everything up to `after` is gone (retention): what is left follows it.
            _ => (segments.start, 0),
        };
        for segment in first..segments.end {
            self.each_in(segment, offset, &mut visit)?;
            offset = 0;
        }
        Ok(())
    }

    /// `each_after` within one segment, from the frame at `offset`.
    pub fn each_in<E: From<io::Error>>(
        &self,
        segment: u32,
        mut offset: u64,
        mut visit: impl FnMut(Location, Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let file = self.segment(segment)?;
        let segment_len = file.metadata()?.len();
        let mut reader = BufReader::new(file.as_ref());
        reader.seek(SeekFrom::Start(offset))?;
        while let Some(frame) = frame::next_frame(&mut reader, segment_len.saturating_sub(offset))?
        {
            let at = offset;
            offset += frame.size();
            if let Frame::Record(record) = frame {
                let location = Location {
                    segment,
                    offset: at,
                    len: record.len() as u32,
                };
                visit(location, record)?;
            }
        }
        if offset < segment_len {
            let message = format!("journal segment {segment} has a bad frame at {offset}");
            return Err(io::Error::new(io::ErrorKind::InvalidData, message).into());
        }
        Ok(())
    }
}

/// How much of a segment is whole frames.
fn valid_len(file: &File) -> io::Result<u64> {
    let file_len = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::Start(0))?;
    let mut len = 0;
    while let Some(frame) = frame::next_frame(&mut reader, file_len - len)? {
        len += frame.size();
    }
    Ok(len)
}

/// Cuts the newest segment back to its whole frames, unless whole frames
/// follow the bad bytes: then they are damage, not a torn tail (an error
/// naming where; see `damage`).
fn cut_torn_tail(path: &Path, file: &File, valid_len: u64) -> io::Result<()> {
    let mut bad = Vec::new();
    let mut reader = file;
    reader.seek(SeekFrom::Start(valid_len))?;
    reader.read_to_end(&mut bad)?;
    if let Some(resume) = damage::frames_resume(&bad) {
        return Err(damage::damaged(path, valid_len, valid_len + resume as u64));
    }
    let kept = damage::cut_off(path, file, valid_len)?;
    tracing::warn!(
        segment = %path.display(),
        valid_len,
        cut = bad.len(),
        kept = %kept.display(),
        "cut a torn tail off the request journal"
    );
    Ok(())
}

fn corrupt(location: Location, why: &str) -> io::Error {
    let message = format!("journal record at {location:?} is corrupt: {why}");
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn segment_path(dir: &Path, number: u32) -> PathBuf {
    dir.join(format!("{number:010}.{EXTENSION}"))
}

/// The numbers of the segments in `dir`, ascending.
/// The number of the newest segment in `dir`, read from the file names
/// alone (nothing is opened); None when there is none.
pub(in crate::store) fn newest_segment(dir: &Path) -> io::Result<Option<u32>> {
    Ok(segment_numbers(dir)?.last().copied())
}

fn segment_numbers(dir: &Path) -> io::Result<Vec<u32>> {
    let mut numbers = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            continue;
        }
        if let Some(number) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
        {
            numbers.push(number);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// The file naming the oldest segment retention keeps.
const FIRST_KEPT: &str = "first-kept";

fn write_first_kept(dir: &Path, number: u32) -> io::Result<()> {
    let staged = dir.join(format!("{FIRST_KEPT}.new"));
    std::fs::write(&staged, number.to_string())?;
    File::open(&staged)?.sync_all()?;
    std::fs::rename(&staged, dir.join(FIRST_KEPT))?;
    sync_dir(dir)
}

/// `numbers` without the segments retention meant to delete (a crash came
/// between its mark and the deletion: deleted now); an error when one it
/// meant to keep is missing.
fn leftovers_removed(dir: &Path, numbers: Vec<u32>) -> io::Result<Vec<u32>> {
    let first_kept: u32 = match std::fs::read_to_string(dir.join(FIRST_KEPT)) {
        Ok(text) => text.trim().parse().map_err(|_| {
            let message = format!("{:?} does not hold a segment number", dir.join(FIRST_KEPT));
            io::Error::new(io::ErrorKind::InvalidData, message)
        })?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => 0,
        Err(error) => return Err(error),
    };
    let (leftovers, kept): (Vec<u32>, Vec<u32>) =
        numbers.into_iter().partition(|number| *number < first_kept);
    match kept.first() {
        // A new journal.
        None if first_kept == 0 => {}
        Some(first) if *first == first_kept => {}
        // Never deleted: the segment being written is always kept. Nothing is
        // deleted either: a data dir in this state needs a person.
        _ => {
            let message = format!("journal segment {first_kept} is missing in {dir:?}");
            return Err(io::Error::new(io::ErrorKind::InvalidData, message));
        }
    }
    if !leftovers.is_empty() {
        for number in leftovers {
            std::fs::remove_file(segment_path(dir, number))?;
        }
        sync_dir(dir)?;
    }
    Ok(kept)
}

/// Makes a new segment's directory entry durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Large enough that no test rolls a segment by accident.
    const ONE_SEGMENT: u64 = 1 << 20;
    /// Small enough that a batch of a few records fills a segment.
    const TINY_SEGMENTS: u64 = 64;

    fn journal_in_tempdir(segment_bytes: u64) -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), segment_bytes).unwrap();
        (dir, journal)
    }

    fn all_after(journal: &Journal, after: Option<Location>) -> Vec<(Location, Vec<u8>)> {
        let mut seen = Vec::new();
        journal
            .each_after(after, |location, record| {
                seen.push((location, record));
                Ok::<(), io::Error>(())
            })
            .unwrap();
        seen
    }

    /// Appends each record in a batch of its own.
    fn append_one_by_one(journal: &Journal, records: &[Vec<u8>]) -> Vec<(Location, Vec<u8>)> {
        records
            .iter()
            .map(|record| {
                let locations = journal.append(&[record]).unwrap();
                assert_eq!(locations.len(), 1);
                (locations[0], record.clone())
            })
            .collect()
    }

    fn segment_file_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn frame_bytes(records: &[&[u8]]) -> u64 {
        records.iter().map(|r| FRAME_HEADER + r.len() as u64).sum()
    }

    fn flip_byte(path: &Path, at: u64) {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut byte = [0u8; 1];
        file.read_exact_at(&mut byte, at).unwrap();
        file.write_all_at(&[byte[0] ^ 0xff], at).unwrap();
    }

    #[test]
    fn append_then_read_returns_every_record_byte_for_byte() {
        let (_dir, journal) = journal_in_tempdir(ONE_SEGMENT);
        let every_byte: Vec<u8> = (0..=255).collect();
        let first: [&[u8]; 3] = [b"first", b"", &every_byte];
        let second: [&[u8]; 2] = [&[0, 0, 0, 0, 0, 0, 0, 0], b"last"];

        let mut locations = journal.append(&first).unwrap();
        locations.extend(journal.append(&second).unwrap());

        let records: Vec<&[u8]> = first.iter().chain(&second).copied().collect();
        assert_eq!(locations.len(), records.len());
        for (location, record) in locations.iter().zip(&records) {
            assert_eq!(location.len as usize, record.len());
            assert_eq!(journal.read(*location).unwrap(), *record);
        }
        assert!(
            locations.windows(2).all(|pair| pair[0] < pair[1]),
            "locations are not in strictly increasing order: {locations:?}"
        );
    }

    #[test]
    fn a_location_round_trips_through_its_encoding() {
        let location = Location {
            segment: 0x0102_0304,
            offset: 0x0506_0708_090a_0b0c,
            len: 0x0d0e_0f10,
        };
        let encoded = location.encode();
        assert_eq!(encoded.len(), Location::ENCODED_LEN);
        assert_eq!(Location::decode(&encoded), Some(location));
    }

    #[test]
    fn decoding_a_slice_of_the_wrong_length_gives_none() {
        let encoded = Location {
            segment: 1,
            offset: 2,
            len: 3,
        }
        .encode();
        assert_eq!(
            Location::decode(&encoded[..Location::ENCODED_LEN - 1]),
            None
        );
        assert_eq!(Location::decode(&[encoded.as_slice(), &[0]].concat()), None);
        assert_eq!(Location::decode(&[]), None);
    }

    #[test]
    fn records_survive_reopening_and_new_appends_follow_them() {
        let dir = tempfile::tempdir().unwrap();
        let old: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 20]).collect();
        let journal = Journal::open(dir.path(), TINY_SEGMENTS).unwrap();
        let mut expected = append_one_by_one(&journal, &old);
        drop(journal);
        assert!(
            segment_file_names(dir.path()).len() > 1,
            "the old records should span several segments"
        );

        let journal = Journal::open(dir.path(), TINY_SEGMENTS).unwrap();
        for (location, record) in &expected {
            assert_eq!(journal.read(*location).unwrap(), *record);
        }
        expected.extend(append_one_by_one(&journal, &[b"new".to_vec()]));

        assert_eq!(all_after(&journal, None), expected);
    }

    #[test]
    fn each_after_yields_exactly_the_later_records_across_segments() {
        let (_dir, journal) = journal_in_tempdir(TINY_SEGMENTS);
        let mut expected = Vec::new();
        for batch in 0..4u8 {
            let records: Vec<Vec<u8>> = (0..3u8).map(|i| vec![batch * 3 + i; 20]).collect();
            let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            let locations = journal.append(&slices).unwrap();
            expected.extend(locations.into_iter().zip(records));
        }
        let last_segment = expected.last().unwrap().0.segment;
        assert!(last_segment >= 2, "batches should have rolled segments");

        assert_eq!(all_after(&journal, None), expected);
        for (i, (location, _)) in expected.iter().enumerate() {
            assert_eq!(
                all_after(&journal, Some(*location)),
                expected[i + 1..],
                "after record {i} at {location:?}"
            );
        }
    }

    #[test]
    fn a_torn_tail_is_cut_off_on_open() {
        let partial_frame = [&100u32.to_le_bytes()[..], &[0xab; 4], &[7; 10]].concat();
        let partial_header = vec![5, 0, 0];
        let bad_checksum = [&4u32.to_le_bytes()[..], &[0; 4], b"oops"].concat();
        // A file system may extend the file before the data lands.
        let zeros = vec![0; 20];
        for (case, tail) in [
            ("partial frame", partial_frame),
            ("partial header", partial_header),
            ("bad checksum", bad_checksum),
            ("zeros", zeros),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let good: [&[u8]; 3] = [b"one", b"two", b"three"];
            let journal = Journal::open(dir.path(), ONE_SEGMENT).unwrap();
            let locations = journal.append(&good).unwrap();
            drop(journal);
            let path = segment_path(dir.path(), 0);
            let valid = frame_bytes(&good);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), valid, "{case}");
            OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap()
                .write_all(&tail)
                .unwrap();

            let journal = Journal::open(dir.path(), ONE_SEGMENT).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().len(), valid, "{case}");
            let good_records: Vec<_> = locations
                .iter()
                .zip(good)
                .map(|(location, record)| (*location, record.to_vec()))
                .collect();
            assert_eq!(all_after(&journal, None), good_records, "{case}");

            // Offsets past the cut may have been handed out: new records go
            // to a new segment.
            let new = journal.append(&[b"after the tear"]).unwrap()[0];
            assert_eq!((new.segment, new.offset), (1, 0), "{case}");
            assert_eq!(journal.read(new).unwrap(), b"after the tear", "{case}");
            assert_eq!(
                all_after(&journal, Some(locations[2])),
                vec![(new, b"after the tear".to_vec())],
                "{case}"
            );
        }
    }

    #[test]
    fn a_frame_with_flipped_bytes_is_reported_as_corrupt() {
        let (dir, journal) = journal_in_tempdir(ONE_SEGMENT);
        let locations = journal
            .append(&[b"record body flipped", b"checksum flipped", b"intact"])
            .unwrap();
        let path = segment_path(dir.path(), 0);
        flip_byte(&path, locations[0].offset + FRAME_HEADER + 3);
        flip_byte(&path, locations[1].offset + 5);

        for location in &locations[..2] {
            let error = journal.read(*location).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
        }
        assert_eq!(journal.read(locations[2]).unwrap(), b"intact");
    }

    #[test]
    fn reading_with_a_location_of_the_wrong_length_fails() {
        let (_dir, journal) = journal_in_tempdir(ONE_SEGMENT);
        let location = journal.append(&[b"twelve bytes"]).unwrap()[0];
        for len in [location.len - 1, location.len + 1, u32::MAX] {
            let error = journal.read(Location { len, ..location }).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
        }
        assert_eq!(journal.read(location).unwrap(), b"twelve bytes");
    }

    #[test]
    fn a_missing_middle_segment_makes_open_fail() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), TINY_SEGMENTS).unwrap();
        let records: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 40]).collect();
        append_one_by_one(&journal, &records);
        drop(journal);
        assert!(segment_file_names(dir.path()).len() >= 3);
        std::fs::remove_file(segment_path(dir.path(), 1)).unwrap();

        let error = match Journal::open(dir.path(), TINY_SEGMENTS) {
            Ok(_) => panic!("open succeeded without segment 1"),
            Err(error) => error,
        };
        assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
        assert!(
            error.to_string().contains("segment 1 is missing"),
            "{error}"
        );
    }

    #[test]
    fn segments_roll_once_full_and_old_segments_stay_readable() {
        let (dir, journal) = journal_in_tempdir(TINY_SEGMENTS);
        // 32-byte frames: two of them fill a 64-byte segment exactly.
        let records: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 24]).collect();
        let appended = append_one_by_one(&journal, &records);

        let segments: Vec<u32> = appended.iter().map(|(l, _)| l.segment).collect();
        assert_eq!(segments, [0, 0, 1, 1, 2, 2]);
        assert_eq!(
            segment_file_names(dir.path()),
            [
                "0000000000.journal",
                "0000000001.journal",
                "0000000002.journal"
            ]
        );
        for (location, record) in &appended {
            assert_eq!(journal.read(*location).unwrap(), *record);
        }
    }

    #[test]
    fn the_oldest_segments_are_deleted_and_the_journal_reopens_without_them() {
        let (dir, journal) = journal_in_tempdir(TINY_SEGMENTS);
        let records: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 24]).collect();
        let appended = append_one_by_one(&journal, &records);
        assert_eq!(journal.segment_range(), 0..3);

        let error = journal.remove_oldest(1).unwrap_err();
        assert_eq!(
            error.kind(),
            io::ErrorKind::InvalidInput,
            "not the oldest: {error}"
        );
        let cut_tail = dir.path().join("0000000000.journal.cut-123");
        std::fs::write(&cut_tail, b"torn").unwrap();
        journal.remove_oldest(0).unwrap();
        assert!(!cut_tail.exists(), "a cut tail goes with its segment");
        journal.remove_oldest(1).unwrap();
        let error = journal.remove_oldest(2).unwrap_err();
        assert_eq!(
            error.kind(),
            io::ErrorKind::InvalidInput,
            "being written: {error}"
        );
        assert_eq!(journal.segment_range(), 2..3);
        assert_eq!(
            segment_file_names(dir.path()),
            ["0000000002.journal", FIRST_KEPT]
        );
        let error = journal.read(appended[0].0).unwrap_err();
        assert!(error.to_string().contains("deleted"), "{error}");
        assert_eq!(all_after(&journal, None), appended[4..]);
        // A position in a deleted segment (an old watermark): what is left follows it.
        assert_eq!(all_after(&journal, Some(appended[1].0)), appended[4..]);

        drop(journal);
        let journal = Journal::open(dir.path(), TINY_SEGMENTS).unwrap();
        assert_eq!(journal.segment_range(), 2..3);
        assert_eq!(all_after(&journal, None), appended[4..]);
        let more = journal.append(&[b"after the reopen"]).unwrap();
        assert_eq!(more[0].segment, 3);
    }

    #[test]
    fn a_segment_deleted_halfway_is_finished_on_open_and_a_lost_one_is_an_error() {
        let (dir, journal) = journal_in_tempdir(TINY_SEGMENTS);
        let records: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 24]).collect();
        append_one_by_one(&journal, &records);
        drop(journal);
        // A crash after the mark, before the deletion.
        write_first_kept(dir.path(), 1).unwrap();
        let journal = Journal::open(dir.path(), TINY_SEGMENTS).unwrap();
        assert_eq!(journal.segment_range(), 1..3);
        assert!(!segment_path(dir.path(), 0).exists());
        drop(journal);

        // A mark past every segment (a data dir put together by hand): an
        // error, and nothing deleted.
        write_first_kept(dir.path(), 3).unwrap();
        let error = Journal::open(dir.path(), TINY_SEGMENTS).err().unwrap();
        assert!(
            error.to_string().contains("segment 3 is missing"),
            "{error}"
        );
        assert!(segment_path(dir.path(), 1).exists() && segment_path(dir.path(), 2).exists());
        write_first_kept(dir.path(), 1).unwrap();

        std::fs::remove_file(segment_path(dir.path(), 1)).unwrap();
        let error = Journal::open(dir.path(), TINY_SEGMENTS).err().unwrap();
        assert!(
            error.to_string().contains("segment 1 is missing"),
            "{error}"
        );
        // Every segment gone: still an error, not a new journal numbered from 0.
        std::fs::remove_file(segment_path(dir.path(), 2)).unwrap();
        let error = Journal::open(dir.path(), TINY_SEGMENTS).err().unwrap();
        assert!(
            error.to_string().contains("segment 1 is missing"),
            "{error}"
        );
    }

    #[test]
    fn an_empty_append_returns_no_locations() {
        let (dir, journal) = journal_in_tempdir(ONE_SEGMENT);
        assert_eq!(journal.append(&[]).unwrap(), []);
        assert_eq!(all_after(&journal, None), []);

        let location = journal.append(&[b"one"]).unwrap()[0];
        assert_eq!(journal.append(&[]).unwrap(), []);
        let path = segment_path(dir.path(), 0);
        assert_eq!(
            std::fs::metadata(path).unwrap().len(),
            frame_bytes(&[b"one"])
        );
        assert_eq!(all_after(&journal, None), [(location, b"one".to_vec())]);
    }

    /// The files beside the segments in `dir` whose names hold `what`.
    fn kept_beside(dir: &Path, what: &str) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.to_string_lossy().contains(what))
            .collect()
    }

    #[test]
    fn the_bytes_cut_off_on_open_are_kept_next_to_the_segment() {
        let (dir, journal) = journal_in_tempdir(ONE_SEGMENT);
        let locations = journal.append(&[b"one", b"two", b"three"]).unwrap();
        drop(journal);
        let path = segment_path(dir.path(), 0);
        flip_byte(&path, locations[2].offset + FRAME_HEADER);

        let journal = Journal::open(dir.path(), ONE_SEGMENT).unwrap();
        assert_eq!(journal.read(locations[1]).unwrap(), b"two");
        let kept = kept_beside(dir.path(), ".journal.cut-");
        assert_eq!(kept.len(), 1, "{kept:?}");
        let cut = std::fs::read(&kept[0]).unwrap();
        assert_eq!(cut.len() as u64, frame_bytes(&[b"three"]));
    }

    /// Three records, the middle one damaged (a byte of its `part`, 0 for the
    /// header, 1 for the record), in a journal reopened from `dir`.
    fn damaged_in_the_middle(part: u64) -> (tempfile::TempDir, Vec<Location>) {
        let (dir, journal) = journal_in_tempdir(ONE_SEGMENT);
        let locations = journal
            .append(&[b"before the damage", b"damaged", b"after the damage"])
            .unwrap();
        drop(journal);
        flip_byte(
            &segment_path(dir.path(), 0),
            locations[1].offset + part * FRAME_HEADER + 2,
        );
        (dir, locations)
    }

    #[test]
    fn damage_followed_by_whole_records_stops_the_open_and_names_segment_and_byte() {
        for part in [0, 1] {
            let (dir, locations) = damaged_in_the_middle(part);
            let path = segment_path(dir.path(), 0);
            let len_before = std::fs::metadata(&path).unwrap().len();

            let error = Journal::open(dir.path(), ONE_SEGMENT).err().unwrap();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            let message = error.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            let at = format!("damaged at byte {}", locations[1].offset);
            assert!(message.contains(&at), "{message}");
            assert!(message.contains("hookgate repair"), "{message}");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), len_before);
            assert!(kept_beside(dir.path(), ".cut-").is_empty());
        }
    }

    #[test]
    fn repair_sets_the_damage_aside_and_keeps_every_whole_record_where_it_was() {
        for part in [0, 1] {
            let (dir, locations) = damaged_in_the_middle(part);
            let path = segment_path(dir.path(), 0);
            let damaged_frame = frame_bytes(&[b"damaged"]);
            let original = std::fs::read(&path).unwrap();

            let repaired = Journal::repair(dir.path()).unwrap();
            assert_eq!(repaired.len(), 1, "{repaired:?}");
            let set_aside = &repaired[0];
            assert_eq!(
                (set_aside.offset, set_aside.len, set_aside.records_follow),
                (locations[1].offset, damaged_frame, true)
            );
            let start = locations[1].offset as usize;
            assert_eq!(
                std::fs::read(&set_aside.kept).unwrap(),
                original[start..start + damaged_frame as usize]
            );
            assert_eq!(
                Journal::repair(dir.path()).unwrap(),
                [],
                "repaired for good"
            );

            let journal = Journal::open(dir.path(), ONE_SEGMENT).unwrap();
            assert_eq!(journal.read(locations[0]).unwrap(), b"before the damage");
            assert_eq!(journal.read(locations[2]).unwrap(), b"after the damage");
            assert!(journal.read(locations[1]).is_err());
            assert_eq!(
                all_after(&journal, None),
                [
                    (locations[0], b"before the damage".to_vec()),
                    (locations[2], b"after the damage".to_vec())
                ]
            );
            let new = journal.append(&[b"new"]).unwrap()[0];
            assert_eq!(
                (new.segment, new.offset),
                (0, locations[2].end()),
                "appends follow"
            );
        }
    }

    #[test]
    fn repair_cuts_a_bad_tail_and_mends_a_closed_segment_too() {
        let (dir, journal) = journal_in_tempdir(16);
        let closed = journal.append(&[b"one", b"two", b"three"]).unwrap();
        let newest = journal.append(&[b"newest"]).unwrap()[0];
        drop(journal);
        flip_byte(&segment_path(dir.path(), 0), closed[1].offset + 1);
        let mut torn = OpenOptions::new()
            .append(true)
            .open(segment_path(dir.path(), 1))
            .unwrap();
        torn.write_all(&[9, 0, 0, 0, 1]).unwrap();

        let repaired = Journal::repair(dir.path()).unwrap();
        let what: Vec<(u64, bool)> = repaired
            .iter()
            .map(|set_aside| (set_aside.offset, set_aside.records_follow))
            .collect();
        assert_eq!(what, [(closed[1].offset, true), (newest.end(), false)]);
        let journal = Journal::open(dir.path(), 16).unwrap();
        let records: Vec<Vec<u8>> = all_after(&journal, None)
            .into_iter()
            .map(|(_, record)| record)
            .collect();
        assert_eq!(records, [&b"one"[..], b"three", b"newest"]);
    }

    /// How many files of `dir` this process has open.
    fn open_files_in(dir: &Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|entry| std::fs::read_link(entry.unwrap().path()).ok())
            .filter(|target| target.starts_with(dir))
            .count()
    }

    #[test]
    fn only_a_few_segments_are_held_open_however_many_are_read() {
        let (dir, journal) = journal_in_tempdir(TINY_SEGMENTS);
        let records: Vec<Vec<u8>> = (0..60u8).map(|i| vec![i; 60]).collect();
        let appended = append_one_by_one(&journal, &records);
        assert!(journal.segment_range().len() >= 60);
        let dir = dir.path().canonicalize().unwrap();

        for (location, record) in appended.iter().rev().chain(&appended) {
            assert_eq!(journal.read(*location).unwrap(), *record);
        }
        assert_eq!(all_after(&journal, None), appended);
        // The kept read handles and the writer's.
        let open = open_files_in(&dir);
        assert!(open <= handles::OPEN_SEGMENTS + 1, "{open} files open");
        drop(journal);
        assert_eq!(open_files_in(&dir), 0);
    }

    #[test]
    fn a_bad_frame_in_a_closed_segment_is_an_error_not_a_silent_skip() {
        let (dir, journal) = journal_in_tempdir(16);
        let locations = journal.append(&[b"one", b"two", b"three"]).unwrap();
        journal.append(&[b"next segment"]).unwrap();
        flip_byte(
            &segment_path(dir.path(), 0),
            locations[0].offset + FRAME_HEADER,
        );

        let error = journal
            .each_after(None, |_, _| Ok::<(), io::Error>(()))
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("segment 0"), "{error}");
    }
}
