//! The recovery scan over bytes: walk records from a known-good position, verify each, and
//! report where the valid log ends and why. Pure: the caller feeds it file contents.

use ringmq_codec::message::record::{MAGIC_BLANK, MessageError, RecordView, peek_header};

use super::record::{self, Invalid};

/// Why a scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The chunk ended in the middle of a record (or before its header): read more.
    NeedMore,
    /// The end-of-file filler: the log continues at the next segment.
    Blank,
    /// Zero TOTALSIZE: unwritten (preallocated or zero-filled) space; the log ends here.
    Zero,
    /// A record that fails verification; the log ends here.
    Corrupt(Invalid),
}

/// Outcome of scanning one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Bytes of valid records from the start of the chunk.
    pub valid_len: usize,
    pub stop: Stop,
}

/// Scans `chunk`, which sits at log offset `base`. `at_file_end` says the chunk reaches the
/// end of the segment file, so a record cut by the chunk's end is torn, not merely unread.
/// `on_record` sees every valid record with its offset.
pub fn scan(
    chunk: &[u8],
    base: u64,
    at_file_end: bool,
    mut on_record: impl FnMut(&RecordView<'_>, u64),
) -> ScanOutcome {
    let mut pos = 0usize;
    loop {
        let rest = chunk.get(pos..).unwrap_or_default();
        let Some((total, magic)) = peek_header(rest) else {
            let stop = if rest.iter().all(|b| *b == 0) && (at_file_end || rest.is_empty()) {
                if at_file_end {
                    Stop::Zero
                } else {
                    Stop::NeedMore
                }
            } else if at_file_end {
                Stop::Corrupt(Invalid::Format(MessageError::Truncated {
                    need: 8,
                    have: rest.len(),
                }))
            } else {
                Stop::NeedMore
            };
            return ScanOutcome {
                valid_len: pos,
                stop,
            };
        };
        if total == 0 {
            return ScanOutcome {
                valid_len: pos,
                stop: Stop::Zero,
            };
        }
        if magic == MAGIC_BLANK {
            return ScanOutcome {
                valid_len: pos,
                stop: Stop::Blank,
            };
        }
        if total > 0 && (total as usize) > rest.len() && !at_file_end {
            return ScanOutcome {
                valid_len: pos,
                stop: Stop::NeedMore,
            };
        }
        match record::verify(rest, base + pos as u64) {
            Ok(view) => {
                on_record(&view, base + pos as u64);
                pos += view.total_size;
            }
            Err(e) => {
                return ScanOutcome {
                    valid_len: pos,
                    stop: Stop::Corrupt(e),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::record::{Placement, encode, stored_properties};
    use crate::types::{AppendRequest, Durability};

    fn log_of(n: usize) -> (Vec<u8>, Vec<usize>) {
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for i in 0..n {
            let body = vec![i as u8; 10 + i];
            let req = AppendRequest {
                topic: "T",
                queue_id: 0,
                body: &body,
                flag: 0,
                sys_flag: 0,
                born_timestamp: 1,
                born_host: "127.0.0.1:1".parse().unwrap(),
                properties: "TAGS\u{1}a\u{2}",
                reconsume_times: 0,
                prepared_transaction_offset: 0,
                tag_code: 0,
                durability: Durability::Written,
            };
            let at = Placement {
                phys_offset: buf.len() as u64,
                queue_offset: i as u64,
                store_timestamp: 2,
                store_host: "127.0.0.1:2".parse().unwrap(),
            };
            let props = stored_properties(req.properties);
            encode(&req, &props, &at, &mut buf).unwrap();
            ends.push(buf.len());
        }
        (buf, ends)
    }

    /// Recovery after any truncation or any single bit flip stops at exactly the last record
    /// that is entirely intact (fjall's TolerateCorruptTail, exhaustively over a small log).
    #[test]
    fn stops_at_the_last_valid_record() {
        let (log, ends) = log_of(5);
        let full = scan(&log, 0, true, |_, _| {});
        assert_eq!(
            full,
            ScanOutcome {
                valid_len: log.len(),
                stop: Stop::Zero
            }
        );
        for cut in 0..log.len() {
            let out = scan(&log[..cut], 0, true, |_, _| {});
            let expect = ends
                .iter()
                .copied()
                .filter(|e| *e <= cut)
                .max()
                .unwrap_or(0);
            assert_eq!(out.valid_len, expect, "cut at {cut}");
        }
        for byte in 0..log.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = log.clone();
                bad[byte] ^= bit;
                let out = scan(&bad, 0, true, |_, _| {});
                let expect = ends
                    .iter()
                    .copied()
                    .filter(|e| *e <= byte)
                    .max()
                    .unwrap_or(0);
                assert_eq!(out.valid_len, expect, "flip at {byte}");
            }
        }
    }

    #[test]
    fn zero_tail_blank_and_need_more() {
        let (mut log, ends) = log_of(2);
        log.extend_from_slice(&[0; 100]);
        let mut seen = Vec::new();
        let out = scan(&log, 0, true, |v, at| seen.push((v.queue_offset, at)));
        assert_eq!(
            out,
            ScanOutcome {
                valid_len: ends[1],
                stop: Stop::Zero
            }
        );
        assert_eq!(seen, vec![(0, 0), (1, ends[0] as u64)]);
        let out = scan(&log[..ends[0] + 20], 0, false, |_, _| {});
        assert_eq!(
            out,
            ScanOutcome {
                valid_len: ends[0],
                stop: Stop::NeedMore
            }
        );
        let mut blank = log[..ends[0]].to_vec();
        ringmq_codec::message::record::encode_blank(30, &mut blank);
        let out = scan(&blank, 0, true, |_, _| {});
        assert_eq!(
            out,
            ScanOutcome {
                valid_len: ends[0],
                stop: Stop::Blank
            }
        );
    }
}
