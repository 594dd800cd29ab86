//! Splitting a byte stream into lines, sans-IO and bounded.
//!
//! Feeds end lines with `\n`, `\r\n` or (some old receivers) a lone `\r`. A line longer than the
//! limit is reported once and its remainder skipped up to the next line end, so one runaway
//! sender costs at most `max_line` bytes of memory.

/// A line that could not be delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineError {
    /// A line exceeded the limit; its bytes up to the next line end were dropped.
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
}

/// Accumulates bytes and yields complete lines.
#[derive(Debug)]
pub struct LineSplitter {
    buf: Vec<u8>,
    max_line: usize,
    /// Skipping the rest of an overlong line.
    skipping: bool,
}

impl LineSplitter {
    /// A splitter that refuses lines longer than `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        LineSplitter {
            buf: Vec::new(),
            max_line: max_line.max(1),
            skipping: false,
        }
    }

    /// Feeds `data`, calling `line` for every complete non-empty line (without its end) and
    /// `error` for every overlong one.
    pub fn push(
        &mut self,
        data: &[u8],
        mut line: impl FnMut(&[u8]),
        mut error: impl FnMut(LineError),
    ) {
        let mut rest = data;
        while !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    let (head, tail) = rest.split_at(end);
                    if self.skipping {
                        self.skipping = false;
                    } else if self.buf.len() + head.len() > self.max_line {
                        error(LineError::TooLong { max: self.max_line });
                        self.buf.clear();
                    } else if self.buf.is_empty() {
                        if !head.is_empty() {
                            line(head);
                        }
                    } else {
                        self.buf.extend_from_slice(head);
                        line(&self.buf);
                        self.buf.clear();
                    }
                    rest = tail.get(1..).unwrap_or_default();
                }
                None => {
                    if !self.skipping {
                        if self.buf.len() + rest.len() > self.max_line {
                            error(LineError::TooLong { max: self.max_line });
                            self.buf.clear();
                            self.skipping = true;
                        } else {
                            self.buf.extend_from_slice(rest);
                        }
                    }
                    rest = &[];
                }
            }
        }
    }

    /// Delivers a final unterminated line (at end of stream or of a datagram).
    pub fn finish(&mut self, mut line: impl FnMut(&[u8])) {
        if !self.skipping && !self.buf.is_empty() {
            line(&self.buf);
        }
        self.buf.clear();
        self.skipping = false;
    }

    /// Bytes held for an incomplete line.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> (Vec<String>, usize) {
        let mut s = LineSplitter::new(max);
        let mut lines = Vec::new();
        let mut errors = 0;
        for c in chunks {
            s.push(
                c,
                |l| lines.push(String::from_utf8_lossy(l).into_owned()),
                |_| errors += 1,
            );
        }
        s.finish(|l| lines.push(String::from_utf8_lossy(l).into_owned()));
        (lines, errors)
    }

    #[test]
    fn splits_on_any_line_end_and_across_chunks() {
        let (lines, errors) = split(&[b"$GPGGA,1", b"23\r\n$GPRMC\n\n", b"last\rtail"], 64);
        assert_eq!(lines, ["$GPGGA,123", "$GPRMC", "last", "tail"]);
        assert_eq!(errors, 0);
        // Every split point of one stream gives the same lines.
        let data = b"aa\r\nbbb\ncc\rd";
        for i in 0..data.len() {
            let (lines, _) = split(&[&data[..i], &data[i..]], 64);
            assert_eq!(lines, ["aa", "bbb", "cc", "d"], "split at {i}");
        }
    }

    #[test]
    fn overlong_lines_are_dropped_once_and_bounded() {
        let long = vec![b'x'; 100];
        let (lines, errors) = split(&[b"ok\n", &long, &long, b"\nafter\n"], 16);
        assert_eq!(lines, ["ok", "after"]);
        assert_eq!(errors, 1);
        let mut s = LineSplitter::new(16);
        s.push(&long, |_| {}, |_| {});
        assert!(s.pending() <= 16);
    }
}
