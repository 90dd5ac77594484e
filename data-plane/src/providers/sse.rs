//! Incremental server-sent-events parser: bytes in any chunking → the `data` of each event.
//!
//! Follows the WHATWG event-stream rules that matter here: lines end in `\r\n`, `\n` or `\r`;
//! `data:` lines of one event are joined with `\n`; a blank line dispatches; `:` lines are
//! comments; other fields (`event:`, `id:`, `retry:`) are ignored because every provider
//! stream we read says what an event is in its JSON (Anthropic's `type`; Gemini sends only
//! `data:`). Shared by the provider stream translators.

/// An event (or an unterminated line) larger than this is refused rather than buffered.
const MAX_EVENT_BYTES: usize = 4 << 20;

#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// Received bytes not yet consumed as lines; `pos` is where the unconsumed part starts.
    buf: Vec<u8>,
    pos: usize,
    /// Bytes before this index (and from `pos`) hold no line terminator: not scanned again.
    scanned: usize,
    /// The `data` of the event being read, and whether it had any `data` field.
    data: Vec<u8>,
    has_data: bool,
}

/// The upstream sent an event larger than [`MAX_EVENT_BYTES`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct EventTooLarge;

impl SseParser {
    /// Adds received bytes; call [`SseParser::next_event`] until it returns `None`.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            self.scanned = 0;
        } else if self.pos > 4096 && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.scanned -= self.pos;
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The `data` of the next complete event, if one has fully arrived.
    pub(crate) fn next_event(&mut self) -> Result<Option<Vec<u8>>, EventTooLarge> {
        while let Some((start, end, next)) = self.next_line(false) {
            self.pos = next;
            if let Some(event) = self.line(start, end)? {
                return Ok(Some(event));
            }
        }
        if self.buf.len() - self.pos > MAX_EVENT_BYTES {
            return Err(EventTooLarge);
        }
        Ok(None)
    }

    /// At end of input: the last event even without its closing blank line (lenient; the
    /// translator decides whether its JSON is whole).
    pub(crate) fn finish(&mut self) -> Result<Option<Vec<u8>>, EventTooLarge> {
        while let Some((start, end, next)) = self.next_line(true) {
            self.pos = next;
            if let Some(event) = self.line(start, end)? {
                return Ok(Some(event));
            }
        }
        Ok(self.dispatch())
    }

    /// The next line as (start, end, start of the following line). Waits on a final `\r`
    /// (it may be half of `\r\n`) unless `eof`; at `eof` an unterminated tail is a line.
    fn next_line(&mut self, eof: bool) -> Option<(usize, usize, usize)> {
        let from = self.scanned.max(self.pos);
        let rest = self.buf.get(from..)?;
        let found = rest.iter().position(|&b| b == b'\n' || b == b'\r');
        let line = match found {
            Some(i) => {
                let end = from + i;
                match (rest.get(i), rest.get(i + 1)) {
                    (Some(b'\n'), _) => Some((self.pos, end, end + 1)),
                    (_, Some(b'\n')) => Some((self.pos, end, end + 2)),
                    (_, Some(_)) => Some((self.pos, end, end + 1)),
                    (_, None) if eof => Some((self.pos, end, end + 1)),
                    (_, None) => {
                        self.scanned = end;
                        None
                    }
                }
            }
            None if eof && self.buf.len() > self.pos => {
                Some((self.pos, self.buf.len(), self.buf.len()))
            }
            None => {
                self.scanned = self.buf.len();
                None
            }
        };
        if let Some((_, _, next)) = line {
            self.scanned = next;
        }
        line
    }

    /// Handles one line; returns an event when the line is the blank line closing one.
    fn line(&mut self, start: usize, end: usize) -> Result<Option<Vec<u8>>, EventTooLarge> {
        let line = &self.buf[start..end];
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return Ok(None),
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        if field == b"data" {
            if self.data.len() + value.len() + 1 > MAX_EVENT_BYTES {
                return Err(EventTooLarge);
            }
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<Vec<u8>> {
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(std::mem::take(&mut self.data))
    }
}
