//! Tag codes and TAG subscription expressions (spec §6).

/// Java `String.hashCode` of `s`: `h = 31·h + c` over UTF-16 code units with i32 wrap-around.
/// This is the tag code stored in consume-queue entries (widened to i64 there).
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The tag code of a message: the hash of its `TAGS` property, 0 when it has none.
pub fn tag_code(tags: Option<&str>) -> i64 {
    tags.filter(|t| !t.is_empty())
        .map_or(0, |t| i64::from(java_string_hash(t)))
}

/// A parsed TAG expression: everything, or a set of tags with their codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagFilter {
    All,
    Tags { tags: Vec<String>, codes: Vec<i32> },
}

impl TagFilter {
    /// Parses `"*"`, empty, or `"TagA || TagB"`. Pieces are trimmed and empty pieces dropped;
    /// an expression with no tag left matches everything.
    pub fn parse(expression: Option<&str>) -> TagFilter {
        let expr = expression.map(str::trim).unwrap_or("");
        if expr.is_empty() || expr == "*" {
            return TagFilter::All;
        }
        let tags: Vec<String> = expr
            .split("||")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        if tags.is_empty() {
            return TagFilter::All;
        }
        let codes = tags.iter().map(|t| java_string_hash(t)).collect();
        TagFilter::Tags { tags, codes }
    }

    /// Broker-side match on a consume-queue tag code (compared as i32, spec §6). Hash
    /// collisions over-deliver; clients re-filter by the tag string.
    pub fn matches_code(&self, tag_code: i64) -> bool {
        match self {
            TagFilter::All => true,
            TagFilter::Tags { codes, .. } => codes.contains(&(tag_code as i32)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_examples_from_the_spec() {
        assert_eq!(java_string_hash("TagA"), 2598919);
        assert_eq!(java_string_hash("TagB"), 2598920);
        assert_eq!(java_string_hash("*"), 42);
        assert_eq!(java_string_hash("中文"), 646394);
        assert_eq!(java_string_hash(""), 0);
        // A non-BMP character hashes as its two surrogate units.
        assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
    }

    #[test]
    fn expressions() {
        assert_eq!(TagFilter::parse(None), TagFilter::All);
        assert_eq!(TagFilter::parse(Some(" * ")), TagFilter::All);
        assert_eq!(TagFilter::parse(Some(" || ")), TagFilter::All);
        let f = TagFilter::parse(Some("TagA || TagB||"));
        assert!(f.matches_code(2598919) && f.matches_code(2598920) && !f.matches_code(0));
        assert_eq!(tag_code(Some("TagA")), 2598919);
        assert_eq!(tag_code(None), 0);
    }
}
