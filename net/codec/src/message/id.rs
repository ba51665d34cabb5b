//! Message ids (spec §4.7): the broker's offsetMsgId and the client's UNIQ_KEY.
//!
//! ```text
//!  offsetMsgId: | store ip (4 or 16) | store port i32 | physical offset i64 |  -> hex, upper case
//!  UNIQ_KEY:    | ip (4 or 16) | pid u16 | random i32 | ms since month start i32 | counter u16 |
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a string is not an offsetMsgId.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsgIdError {
    /// Neither 32 (IPv4) nor 56 (IPv6) characters.
    BadLength(usize),
    /// A character outside `0-9A-Fa-f`.
    NotHex,
    /// The port does not fit 16 bits.
    BadPort(i32),
}

impl std::fmt::Display for MsgIdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MsgIdError::BadLength(n) => {
                write!(
                    f,
                    "message id has {n} characters, expected 32 (IPv4) or 56 (IPv6)"
                )
            }
            MsgIdError::NotHex => write!(f, "message id is not upper-case hex"),
            MsgIdError::BadPort(p) => write!(f, "message id port {p} is out of range"),
        }
    }
}

impl std::error::Error for MsgIdError {}

fn hex_digit(nibble: u8) -> char {
    char::from(if nibble < 10 {
        b'0' + nibble
    } else {
        b'A' + nibble - 10
    })
}

fn push_hex(bytes: &[u8], out: &mut String) {
    for b in bytes {
        out.push(hex_digit(b >> 4));
        out.push(hex_digit(b & 0xF));
    }
}

fn unhex(text: &str) -> Result<Vec<u8>, MsgIdError> {
    fn nibble(c: u8) -> Result<u8, MsgIdError> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(MsgIdError::NotHex),
        }
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Ok(nibble(*hi)? << 4 | nibble(*lo)?),
            _ => Err(MsgIdError::NotHex),
        })
        .collect()
}

fn push_ip(ip: IpAddr, out: &mut Vec<u8>) {
    match ip {
        IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
}

/// The offsetMsgId of the record at `phys_offset` stored by `store_host`.
pub fn offset_msg_id(store_host: SocketAddr, phys_offset: i64) -> String {
    let mut raw = Vec::with_capacity(28);
    push_ip(store_host.ip(), &mut raw);
    raw.extend_from_slice(&i32::from(store_host.port()).to_be_bytes());
    raw.extend_from_slice(&phys_offset.to_be_bytes());
    let mut out = String::with_capacity(raw.len() * 2);
    push_hex(&raw, &mut out);
    out
}

/// Decodes an offsetMsgId into the store host and the physical offset.
pub fn decode_offset_msg_id(id: &str) -> Result<(SocketAddr, i64), MsgIdError> {
    let ip_len = match id.len() {
        32 => 4,
        56 => 16,
        n => return Err(MsgIdError::BadLength(n)),
    };
    let raw = unhex(id)?;
    let (ip_bytes, rest) = raw.split_at_checked(ip_len).ok_or(MsgIdError::NotHex)?;
    let (port_bytes, offset_bytes) = rest.split_at_checked(4).ok_or(MsgIdError::NotHex)?;
    let ip = match ip_len {
        4 => IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(ip_bytes).map_err(|_| MsgIdError::NotHex)?,
        )),
        _ => IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(ip_bytes).map_err(|_| MsgIdError::NotHex)?,
        )),
    };
    let port = i32::from_be_bytes(port_bytes.try_into().map_err(|_| MsgIdError::NotHex)?);
    let port = u16::try_from(port).map_err(|_| MsgIdError::BadPort(port))?;
    let offset = i64::from_be_bytes(offset_bytes.try_into().map_err(|_| MsgIdError::NotHex)?);
    Ok((SocketAddr::new(ip, port), offset))
}

/// Days since 1970-01-01 → (year, month) in the proleptic Gregorian calendar (UTC).
fn civil_year_month(days: i64) -> (i64, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32)
}

/// (year, month) → days since 1970-01-01 of that month's first day.
fn days_from_civil(year: i64, month: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Start of the calendar month (UTC) holding `now_ms`, and the start of the next one.
fn month_bounds_ms(now_ms: i64) -> (i64, i64) {
    let (year, month) = civil_year_month(now_ms.div_euclid(86_400_000));
    let start = days_from_civil(year, month) * 86_400_000;
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    (start, days_from_civil(ny, nm) * 86_400_000)
}

/// Generates UNIQ_KEYs for messages that arrive without one, in the client's layout with the
/// broker's own address. The month is taken in UTC (Java uses the local calendar; only
/// uniqueness matters to anyone reading it). Time is an input: the caller passes `now_ms`.
#[derive(Debug, Clone)]
pub struct UniqKeyGenerator {
    /// Hex of ip | pid | random, fixed for the process.
    prefix: String,
    month_start_ms: i64,
    next_month_ms: i64,
    counter: u16,
}

impl UniqKeyGenerator {
    /// `pid` and `random` come from the caller (process id, any per-process random int).
    pub fn new(ip: IpAddr, pid: u32, random: i32) -> Self {
        let mut raw = Vec::with_capacity(22);
        push_ip(ip, &mut raw);
        raw.extend_from_slice(&((pid & 0xFFFF) as u16).to_be_bytes());
        raw.extend_from_slice(&random.to_be_bytes());
        let mut prefix = String::with_capacity(44);
        push_hex(&raw, &mut prefix);
        UniqKeyGenerator {
            prefix,
            month_start_ms: 0,
            next_month_ms: 0,
            counter: 0,
        }
    }

    /// The next id at wall-clock time `now_ms` (epoch milliseconds).
    pub fn next_id(&mut self, now_ms: i64) -> String {
        if now_ms < self.month_start_ms || now_ms >= self.next_month_ms {
            (self.month_start_ms, self.next_month_ms) = month_bounds_ms(now_ms);
        }
        let since = (now_ms - self.month_start_ms) as i32;
        let counter = self.counter;
        self.counter = self.counter.wrapping_add(1);
        let mut out = String::with_capacity(self.prefix.len() + 12);
        out.push_str(&self.prefix);
        push_hex(&since.to_be_bytes(), &mut out);
        push_hex(&counter.to_be_bytes(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_msg_id_round_trip() {
        let host: SocketAddr = "192.168.1.10:10911".parse().unwrap();
        let id = offset_msg_id(host, 0x1234);
        assert_eq!(id, "C0A8010A00002A9F0000000000001234");
        assert_eq!(decode_offset_msg_id(&id).unwrap(), (host, 0x1234));
        assert_eq!(
            decode_offset_msg_id(&id.to_lowercase()).unwrap(),
            (host, 0x1234)
        );
        let v6: SocketAddr = "[::1]:10911".parse().unwrap();
        let id6 = offset_msg_id(v6, 7);
        assert_eq!(id6.len(), 56);
        assert_eq!(decode_offset_msg_id(&id6).unwrap(), (v6, 7));
        assert_eq!(decode_offset_msg_id("XYZ"), Err(MsgIdError::BadLength(3)));
        assert_eq!(
            decode_offset_msg_id(&"G".repeat(32)),
            Err(MsgIdError::NotHex)
        );
    }

    #[test]
    fn month_math() {
        // 2024-03-15T12:00:00Z; March 2024 starts at 1709251200000.
        let (start, next) = month_bounds_ms(1_710_504_000_000);
        assert_eq!(start, 1_709_251_200_000);
        assert_eq!(next, 1_711_929_600_000);
        assert_eq!(month_bounds_ms(0), (0, 31 * 86_400_000));
        let (s, n) = month_bounds_ms(1_733_011_200_000 - 1); // 2024-11-30T23:59:59.999Z
        assert_eq!(n, 1_733_011_200_000);
        assert!(s < n);
    }

    #[test]
    fn uniq_keys_are_distinct_and_well_formed() {
        let mut g = UniqKeyGenerator::new("10.0.0.1".parse().unwrap(), 0x12345, 7);
        let a = g.next_id(1_710_504_000_000);
        let b = g.next_id(1_710_504_000_000);
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.starts_with("0A000001234500000007"));
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        );
    }
}
