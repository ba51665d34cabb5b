//! Request templates: one request shape, encoded once, re-sent with a few values changed.
//!
//! A load generator sends the same request over and over (a send to one queue: the same
//! group, topic, queue id and flags) where only the opaque, the birth time and the
//! properties change. A [`RequestTemplate`] is the frame the normal encoder writes for such a
//! command, cut where those values go; [`RequestTemplate::write_frame`] appends a whole frame
//! with new values, byte for byte what [`crate::frame::encode`] would write for the command
//! holding them, without building its header map or re-escaping the fixed fields.
//!
//! JSON headers only: a ROCKETMQ binary header prefixes every value with its length, so it
//! has no fixed pieces to cut (the caller encodes those commands the normal way).

use bytes::{BufMut, BytesMut};

use crate::command::{Command, SerializeType};
use crate::frame::{self, FRAME_PREFIX_LEN};
use crate::header;

/// The opaque the template is cut from; any value works, its digits only mark the place.
const OPAQUE_MARK: i32 = -1_234_567_891;

/// A value for a hole of a [`RequestTemplate`]: extFields values are JSON strings, so an
/// integer is written as its decimal text, quoted, as [`crate::ExtFields`] holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hole<'a> {
    Text(&'a str),
    Int(i64),
}

/// A JSON request frame cut around some extFields values and the opaque.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    /// The header's fixed bytes, back to back.
    fixed: Vec<u8>,
    /// Where in `fixed` the value of hole `k` goes; the last one is the opaque's place.
    cuts: Vec<usize>,
    /// The extFields keys whose values are holes, in the order they are written.
    holes: Vec<String>,
}

impl RequestTemplate {
    /// Cuts `cmd`'s JSON header around the values of the extFields keys `holes` (each must
    /// be present) and around the opaque. `None` when `cmd` is not JSON-serialized or a key
    /// is missing.
    pub fn new(cmd: &Command, holes: &[&str]) -> Option<RequestTemplate> {
        if cmd.serialize != SerializeType::Json {
            return None;
        }
        let mut marked = cmd.clone();
        marked.body = bytes::Bytes::new();
        marked.opaque = OPAQUE_MARK;
        let marks: Vec<String> = (0..holes.len())
            .map(|k| format!("\u{0}ringmq-hole-{k}\u{0}"))
            .collect();
        for (key, mark) in holes.iter().zip(&marks) {
            cmd.ext.get(key)?;
            marked.ext.insert(*key, mark.as_str());
        }
        let mut encoded = BytesMut::new();
        header::encode(&marked, &mut encoded);

        // Each mark, as the encoder wrote it (quoted, escaped), then the opaque's digits.
        // (what to find, how much of it stays with the piece before)
        let mut cuts: Vec<(Vec<u8>, usize)> = marks
            .iter()
            .map(|m| {
                let mut quoted = BytesMut::new();
                header::json_string(&mut quoted, m);
                (quoted.to_vec(), 0)
            })
            .collect();
        let key = "\"opaque\":";
        cuts.push((format!("{key}{OPAQUE_MARK}").into_bytes(), key.len()));
        let mut fixed = Vec::with_capacity(encoded.len());
        let mut places = Vec::with_capacity(cuts.len());
        let mut rest: &[u8] = &encoded;
        for (cut, keep) in &cuts {
            let at = find(rest, cut)?;
            fixed.extend_from_slice(rest.get(..at + keep)?);
            places.push(fixed.len());
            rest = rest.get(at + cut.len()..)?;
        }
        fixed.extend_from_slice(rest);
        Some(RequestTemplate {
            fixed,
            cuts: places,
            holes: holes.iter().map(|h| (*h).to_owned()).collect(),
        })
    }

    /// The extFields keys whose values [`Self::write_frame`] takes, in its order.
    pub fn holes(&self) -> &[String] {
        &self.holes
    }

    /// Appends one frame: the template's header with `values` in its holes (in the order of
    /// [`Self::holes`]; a missing value is written as empty) and `opaque`, then `body`.
    pub fn write_frame(&self, values: &[Hole<'_>], opaque: i32, body: &[u8], dst: &mut BytesMut) {
        let text: usize = values
            .iter()
            .map(|v| match v {
                Hole::Text(t) => t.len() + 2,
                Hole::Int(_) => 22,
            })
            .sum();
        dst.reserve(FRAME_PREFIX_LEN + self.fixed.len() + text + 12 + body.len());
        let start = dst.len();
        dst.put_u64(0);
        let mut from = 0;
        for (k, &cut) in self.cuts.iter().enumerate() {
            dst.put_slice(self.fixed.get(from..cut).unwrap_or_default());
            from = cut;
            if k < self.holes.len() {
                match values.get(k).copied().unwrap_or(Hole::Text("")) {
                    Hole::Text(t) => header::json_string(dst, t),
                    Hole::Int(v) => {
                        dst.put_u8(b'"');
                        header::json_int(dst, v);
                        dst.put_u8(b'"');
                    }
                }
            } else {
                header::json_int(dst, i64::from(opaque));
            }
        }
        dst.put_slice(self.fixed.get(from..).unwrap_or_default());
        let header_len = dst.len() - start - FRAME_PREFIX_LEN;
        dst.put_slice(body);
        frame::write_prefix(dst, start, SerializeType::Json, header_len, body.len());
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::request;
    use crate::frame::FRAME_MAX_DEFAULT;
    use crate::headers::send::SendMessageRequestHeader;
    use crate::{Header, LanguageCode};

    fn send(born: i64, props: &str, opaque: i32) -> Command {
        let h = SendMessageRequestHeader {
            producer_group: "PG \"quoted\"".into(),
            topic: "T-1".into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id: 3,
            born_timestamp_ms: born,
            properties: Some(props.to_owned()),
            reconsume_times: Some(0),
            ..SendMessageRequestHeader::default()
        };
        let mut cmd = Command::request(request::SEND_MESSAGE_V2);
        cmd.language = LanguageCode::RUST;
        cmd.version = 399;
        cmd.opaque = opaque;
        h.encode(&mut cmd.ext);
        cmd.body = bytes::Bytes::from(vec![7u8; 100]);
        cmd
    }

    /// A template's frame is the normal encoder's frame for the same values, and decodes
    /// back to them.
    #[test]
    fn frames_match_the_encoder() {
        let model = send(1, "x", 0);
        let t = RequestTemplate::new(&model, &["g", "i"]).expect("a JSON send cuts");
        assert_eq!(t.holes(), ["g", "i"]);
        let cases = [
            (
                1_700_000_000_123,
                "UNIQ_KEY\u{1}AB12\u{2}WAIT\u{1}true\u{2}",
                5,
            ),
            (0, "TAGS\u{1}a \"b\" \\c\u{2}", -1),
            (-42, "é\u{1}中\u{2}\u{7f}", i32::MIN),
            (i64::MAX, "", i32::MAX),
            (i64::MIN, "x", 0),
        ];
        for (born, props, opaque) in cases {
            let want_cmd = send(born, props, opaque);
            let mut want = BytesMut::new();
            frame::encode(&want_cmd, &mut want);
            let mut got = BytesMut::from(&b"prefix"[..]);
            let holes = [Hole::Int(born), Hole::Text(props)];
            t.write_frame(&holes, opaque, &want_cmd.body, &mut got);
            assert_eq!(&got[6..], &want[..], "born {born} props {props:?}");
            let mut buf = got.split_off(6);
            let back = frame::decode_from(&mut buf, FRAME_MAX_DEFAULT)
                .unwrap()
                .unwrap();
            assert_eq!(back, want_cmd);
        }
    }

    #[test]
    fn binary_headers_and_missing_keys_have_no_template() {
        let mut cmd = send(1, "x", 0);
        assert!(RequestTemplate::new(&cmd, &["nope"]).is_none());
        cmd.serialize = SerializeType::RocketMq;
        assert!(RequestTemplate::new(&cmd, &["g"]).is_none());
    }
}
