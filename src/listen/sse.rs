//! Reading a `text/event-stream` as it arrives: each complete event's name
//! and data (comments, such as keep-alives, and other fields are skipped).

/// One event of the stream.
#[derive(Debug, PartialEq)]
pub struct SseEvent {
    /// `message` when the event names none.
    pub name: String,
    pub data: String,
}

/// The bytes received so far that do not yet end an event.
#[derive(Default)]
pub struct SseReader {
    pending: Vec<u8>,
}

impl SseReader {
    /// Takes the next bytes received; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.pending.extend(bytes.iter().filter(|b| **b != b'\r'));
        let mut events = Vec::new();
        while let Some(end) = self.pending.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.pending.drain(..end + 2).collect();
            events.extend(parse(&String::from_utf8_lossy(&block)));
        }
        events
    }
}

/// One event's lines; none when it has no data (a comment, a keep-alive).
fn parse(block: &str) -> Option<SseEvent> {
    let (mut name, mut data) = (None, Vec::new());
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => name = Some(value.to_string()),
            "data" => data.push(value),
            _ => {}
        }
    }
    (!data.is_empty()).then(|| SseEvent {
        name: name.unwrap_or_else(|| "message".into()),
        data: data.join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_reads_come_out_whole_and_comments_are_skipped() {
        let mut reader = SseReader::default();
        assert!(reader.push(b":\n\nevent: ready\nda").is_empty());
        let events = reader.push(b"ta: {\"a\":1}\n\r\ndata: x\ndata: y\n\n");
        assert_eq!(
            events,
            vec![
                SseEvent {
                    name: "ready".into(),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    name: "message".into(),
                    data: "x\ny".into()
                },
            ]
        );
    }
}
