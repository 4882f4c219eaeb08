//! The frame: how one record lies in a segment, and how it is told from torn
//! or damaged bytes.
//!
//! A frame is `length (u32 LE) ++ crc32 of length and content (u32 LE) ++
//! content` (with the length in the checksum, a run of zeros is not a frame).
//! The length's top bit marks a filler: bytes `repair` set down over damage,
//! so that the records after it keep their offsets; readers skip it. Records
//! are shorter than 2 GiB, so a record's length never has that bit.

use std::io::{self, Read};

pub(super) const FRAME_HEADER: u64 = 8;
/// The length's top bit: the frame is a filler, not a record.
const FILLER: u32 = 1 << 31;
/// Records must be shorter than this (see `FILLER`).
pub(super) const MAX_RECORD: usize = FILLER as usize;

/// A whole frame, as read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Frame<T> {
    Record(T),
    /// This many bytes of content to skip.
    Filler(u32),
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Header and content.
    pub(super) fn size(&self) -> u64 {
        let content = match self {
            Frame::Record(record) => record.as_ref().len() as u64,
            Frame::Filler(len) => u64::from(*len),
        };
        FRAME_HEADER + content
    }
}

/// Appends the frame of `record` to `out`; the caller checked its length
/// against `MAX_RECORD`.
pub(super) fn encode_record(record: &[u8], out: &mut Vec<u8>) {
    let len = record.len() as u32;
    debug_assert!(len < FILLER);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(len, record).to_le_bytes());
    out.extend_from_slice(record);
}

/// A filler frame of exactly `size` bytes (at least a header).
pub(super) fn filler(size: u64) -> io::Result<Vec<u8>> {
    let content = size - FRAME_HEADER;
    let field = match u32::try_from(content) {
        Ok(len) if len < FILLER => FILLER | len,
        _ => {
            let message = format!("{size} damaged bytes are more than one filler covers");
            return Err(io::Error::new(io::ErrorKind::InvalidData, message));
        }
    };
    let zeros = vec![0u8; content as usize];
    let mut frame = Vec::with_capacity(size as usize);
    frame.extend_from_slice(&field.to_le_bytes());
    frame.extend_from_slice(&checksum(field, &zeros).to_le_bytes());
    frame.extend_from_slice(&zeros);
    Ok(frame)
}

/// The length field and checksum of a header.
pub(super) fn header_fields(header: &[u8; FRAME_HEADER as usize]) -> (u32, u32) {
    let field = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    (field, crc)
}

/// How many content bytes a length field announces.
fn content_len(field: u32) -> u32 {
    field & !FILLER
}

/// The frame a header and its content make, if the checksum holds.
fn checked<T: AsRef<[u8]>>(field: u32, crc: u32, content: T) -> Option<Frame<T>> {
    if checksum(field, content.as_ref()) != crc {
        return None;
    }
    Some(match field & FILLER {
        0 => Frame::Record(content),
        _ => Frame::Filler(content_len(field)),
    })
}

pub(super) fn checksum(field: u32, content: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&field.to_le_bytes());
    hasher.update(content);
    hasher.finalize()
}

/// The whole frame at the start of `bytes`, or None when they do not start
/// with one (torn, damaged, or empty).
pub(super) fn frame_at(bytes: &[u8]) -> Option<Frame<&[u8]>> {
    let header = bytes.get(..FRAME_HEADER as usize)?.try_into().ok()?;
    let (field, crc) = header_fields(header);
    let start = FRAME_HEADER as usize;
    let content = bytes.get(start..start.checked_add(content_len(field) as usize)?)?;
    checked(field, crc, content)
}

/// Where the whole frames at the start of `bytes` end: they are all valid,
/// the byte there is not the start of one.
pub(super) fn whole_frames_len(bytes: &[u8]) -> usize {
    let mut offset = 0;
    while let Some(frame) = frame_at(&bytes[offset..]) {
        offset += frame.size() as usize;
    }
    offset
}

/// The next whole frame from `reader`, or None at the end of the segment or
/// at a torn or damaged frame. `remaining`: bytes left in the segment, so that
/// a bad length cannot ask for more memory than the file holds.
pub(super) fn next_frame(
    reader: &mut impl Read,
    remaining: u64,
) -> io::Result<Option<Frame<Vec<u8>>>> {
    let mut header = [0u8; FRAME_HEADER as usize];
    if !read_full(reader, &mut header)? {
        return Ok(None);
    }
    let (field, crc) = header_fields(&header);
    let len = content_len(field);
    if u64::from(len) + FRAME_HEADER > remaining {
        return Ok(None);
    }
    let mut content = vec![0u8; len as usize];
    if !read_full(reader, &mut content)? {
        return Ok(None);
    }
    Ok(checked(field, crc, content))
}

/// Fills `buf`; false when the input ends first.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A segment holding `records`, and where each frame ends.
    fn segment(records: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for record in records {
            encode_record(record, &mut bytes);
            ends.push(bytes.len());
        }
        (bytes, ends)
    }

    /// The whole frames at the start of `bytes`, with their offsets, as the
    /// slice decoder and the streaming one read them (they must agree).
    fn decode(bytes: &[u8]) -> Vec<(usize, Frame<Vec<u8>>)> {
        let mut sliced = Vec::new();
        let mut offset = 0;
        while let Some(frame) = frame_at(&bytes[offset..]) {
            let size = frame.size() as usize;
            let owned = match frame {
                Frame::Record(record) => Frame::Record(record.to_vec()),
                Frame::Filler(len) => Frame::Filler(len),
            };
            sliced.push((offset, owned));
            offset += size;
        }
        assert_eq!(offset, whole_frames_len(bytes));
        let mut streamed = Vec::new();
        let mut reader = std::io::Cursor::new(bytes);
        let mut offset = 0;
        while let Some(frame) = next_frame(&mut reader, (bytes.len() - offset) as u64).unwrap() {
            let size = frame.size() as usize;
            streamed.push((offset, frame));
            offset += size;
        }
        assert_eq!(sliced, streamed, "the two decoders disagree");
        sliced
    }

    fn records() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..48), 0..8)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn a_valid_prefix_decodes_exactly(records in records(), cut in any::<prop::sample::Index>()) {
            let (bytes, ends) = segment(&records);
            let cut = cut.index(bytes.len() + 1);
            let whole = ends.iter().take_while(|end| **end <= cut).count();
            let decoded = decode(&bytes[..cut]);
            let expected: Vec<(usize, Frame<Vec<u8>>)> = records[..whole]
                .iter()
                .zip(std::iter::once(0).chain(ends.iter().copied()))
                .map(|(record, offset)| (offset, Frame::Record(record.clone())))
                .collect();
            prop_assert_eq!(decoded, expected);
        }

        #[test]
        fn damage_never_panics_nor_yields_a_frame_whose_checksum_fails(
            records in records(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let (mut bytes, ends) = segment(&records);
            prop_assume!(!bytes.is_empty());
            let mut first_flip = bytes.len();
            for (at, mask) in &flips {
                let at = at.index(bytes.len());
                bytes[at] ^= mask;
                first_flip = first_flip.min(at);
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            let decoded = decode(&bytes);
            for (offset, frame) in &decoded {
                let header = bytes[*offset..*offset + 8].try_into().unwrap();
                let (field, crc) = header_fields(header);
                let content = &bytes[*offset + 8..*offset + frame.size() as usize];
                prop_assert_eq!(checksum(field, content), crc);
            }
            // The frames before the first damaged byte are all still read.
            let untouched = ends.iter().take_while(|end| **end <= first_flip.min(bytes.len())).count();
            prop_assert!(decoded.len() >= untouched);
            for (index, (_, frame)) in decoded.iter().take(untouched).enumerate() {
                prop_assert_eq!(frame, &Frame::Record(records[index].clone()));
            }
        }
    }

    #[test]
    fn a_filler_is_whole_frames_of_its_size_and_no_record() {
        let frame = filler(FRAME_HEADER + 5).unwrap();
        assert_eq!(frame.len(), 13);
        assert_eq!(frame_at(&frame), Some(Frame::Filler(5)));
        assert!(filler(u64::from(FILLER) + FRAME_HEADER).is_err());
    }
}
