//! Retention: which commit-log segments to delete. [`decide`] is pure (segments with ages
//! and sizes, disk use, the hour in); the store's executor deletes the files and drops
//! consume-queue and index entries below the new minimum.
//!
//! RocketMQ's knobs: `fileReservedTime` (hours, 72), `deleteWhen` ("04": hours of day when
//! expired segments go, `;`-separated), `diskMaxUsedSpaceRatio` (75 %: above it expired
//! segments go at any hour), a forcible ratio (85 %: above it the oldest segments go even
//! unexpired) and a hard ratio (90 %: appends are refused with a disk-full error; reads go on).

/// Retention settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionConfig {
    pub file_reserved_time_hours: u64,
    /// Hours of the day (0–23) when expired segments are deleted.
    pub delete_when_hours: Vec<u8>,
    pub disk_max_used_space_ratio: f64,
    pub disk_clean_forcibly_ratio: f64,
    /// Above this, appends fail with `StorageError::DiskFull`.
    pub disk_full_ratio: f64,
    /// Most segments deleted in one pass (keeps one pass short).
    pub delete_files_per_pass_max: usize,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            file_reserved_time_hours: 72,
            delete_when_hours: vec![4],
            disk_max_used_space_ratio: 0.75,
            disk_clean_forcibly_ratio: 0.85,
            disk_full_ratio: 0.90,
            delete_files_per_pass_max: 10,
        }
    }
}

impl RetentionConfig {
    /// Parses RocketMQ's `deleteWhen` ("04", "04;16").
    pub fn parse_delete_when(text: &str) -> Vec<u8> {
        text.split(';')
            .filter_map(|h| h.trim().parse::<u8>().ok())
            .filter(|h| *h < 24)
            .collect()
    }
}

/// A closed segment as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentAge {
    pub start: u64,
    pub size_bytes: u64,
    /// Store time of its last record (or of the next segment's first record), ms.
    pub last_store_ms: i64,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Segment starts to delete: always a prefix of the oldest segments.
    pub delete: Vec<u64>,
    /// Appends must be refused (disk above the hard ratio).
    pub refuse_appends: bool,
}

/// Decides which of the closed segments `closed` (oldest first; the active segment is never
/// among them) to delete.
pub fn decide(
    closed: &[SegmentAge],
    now_ms: i64,
    hour_of_day: u8,
    used_ratio: f64,
    total_bytes: u64,
    cfg: &RetentionConfig,
) -> Decision {
    let reserved_ms = cfg.file_reserved_time_hours as i64 * 3_600_000;
    let at_delete_hour = cfg.delete_when_hours.contains(&hour_of_day);
    let space_pressure = used_ratio >= cfg.disk_max_used_space_ratio;
    let forcibly = used_ratio >= cfg.disk_clean_forcibly_ratio;
    let mut delete = Vec::new();
    let mut ratio = used_ratio;
    for seg in closed.iter().take(cfg.delete_files_per_pass_max) {
        let expired = now_ms - seg.last_store_ms >= reserved_ms;
        let by_age = expired && (at_delete_hour || space_pressure);
        // Forcible deletion frees space only until the ratio is back under the soft limit.
        let by_force = forcibly && ratio >= cfg.disk_max_used_space_ratio;
        if !(by_age || by_force) {
            break; // deletions stay a prefix: the log must remain contiguous from its min
        }
        delete.push(seg.start);
        if total_bytes > 0 {
            ratio -= seg.size_bytes as f64 / total_bytes as f64;
        }
    }
    Decision {
        delete,
        refuse_appends: used_ratio >= cfg.disk_full_ratio,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn segs() -> Vec<SegmentAge> {
        (0..4)
            .map(|i| SegmentAge {
                start: i * 100,
                size_bytes: 100,
                last_store_ms: i as i64 * 24 * H,
            })
            .collect()
    }

    #[test]
    fn expired_segments_go_at_the_delete_hour() {
        let cfg = RetentionConfig::default();
        let now = 100 * H; // segments 0 and 1 are older than 72 h
        assert!(decide(&segs(), now, 3, 0.1, 10_000, &cfg).delete.is_empty());
        assert_eq!(decide(&segs(), now, 4, 0.1, 10_000, &cfg).delete, [0, 100]);
        // Under space pressure the hour does not matter.
        assert_eq!(decide(&segs(), now, 3, 0.8, 10_000, &cfg).delete, [0, 100]);
    }

    #[test]
    fn forcible_and_hard_limits() {
        let cfg = RetentionConfig::default();
        // Nothing expired, disk at 90 %: delete oldest until under 75 %, refuse appends.
        let d = decide(&segs(), 0, 3, 0.90, 1000, &cfg);
        assert_eq!(d.delete, [0, 100]);
        assert!(d.refuse_appends);
        let d = decide(&segs(), 0, 3, 0.5, 1000, &cfg);
        assert!(d.delete.is_empty() && !d.refuse_appends);
        assert_eq!(RetentionConfig::parse_delete_when("04; 16;99;x"), [4, 16]);
    }

    #[test]
    fn deletions_are_a_prefix() {
        let cfg = RetentionConfig::default();
        let mut s = segs();
        s[0].last_store_ms = 99 * H; // the oldest is young: nothing after it may go
        assert!(decide(&s, 100 * H, 4, 0.1, 10_000, &cfg).delete.is_empty());
    }
}
