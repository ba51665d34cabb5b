//! Why a broker request failed, and the one function that turns that into a RocketMQ
//! response code and a readable remark ([`error_response`]).
//!
//! Expected outcomes (no new message, offset moved, no stored offset) are not errors: the
//! handlers answer them directly with their codes.

use ringmq_codec::codes::response as resp;
use ringmq_codec::{Command, FieldError};
use ringmq_engine::StorageError;

#[derive(Debug)]
pub enum BrokerError {
    /// A header field is missing or malformed.
    Header(FieldError),
    /// The body does not decode.
    Body {
        what: &'static str,
        reason: String,
    },
    /// Bad topic name, queue id out of range, bad admin value.
    InvalidParameter(String),
    TopicNotExist(String),
    /// Reserved topic, unwritable/unreadable broker or topic, group consume disabled.
    NoPermission(String),
    /// Message too large, properties too long, unsupported message kind.
    MessageIllegal(String),
    SubscriptionGroupNotExist(String),
    SubscriptionParseFailed(String),
    SubscriptionNotExist(String),
    SubscriptionNotLatest(String),
    /// A feature ringmq does not offer (SQL92 filtering); Java answers SYSTEM_ERROR.
    Unsupported(String),
    Storage(StorageError),
    System(String),
}

impl From<FieldError> for BrokerError {
    fn from(e: FieldError) -> Self {
        BrokerError::Header(e)
    }
}

impl From<StorageError> for BrokerError {
    fn from(e: StorageError) -> Self {
        BrokerError::Storage(e)
    }
}

impl BrokerError {
    /// The response code and remark (spec §2.1).
    pub fn code_and_remark(&self) -> (i32, String) {
        match self {
            BrokerError::Header(e) => (resp::SYSTEM_ERROR, format!("bad request header: {e}")),
            BrokerError::Body { what, reason } => (
                resp::SYSTEM_ERROR,
                format!("bad request body ({what}): {reason}"),
            ),
            BrokerError::InvalidParameter(r) => (resp::INVALID_PARAMETER, r.clone()),
            BrokerError::TopicNotExist(topic) => (
                resp::TOPIC_NOT_EXIST,
                format!("topic[{topic}] not exist, apply first please!"),
            ),
            BrokerError::NoPermission(r) => (resp::NO_PERMISSION, r.clone()),
            BrokerError::MessageIllegal(r) => (resp::MESSAGE_ILLEGAL, r.clone()),
            BrokerError::SubscriptionGroupNotExist(g) => (
                resp::SUBSCRIPTION_GROUP_NOT_EXIST,
                format!("subscription group [{g}] does not exist and may not be created"),
            ),
            BrokerError::SubscriptionParseFailed(r) => (resp::SUBSCRIPTION_PARSE_FAILED, r.clone()),
            BrokerError::SubscriptionNotExist(r) => (resp::SUBSCRIPTION_NOT_EXIST, r.clone()),
            BrokerError::SubscriptionNotLatest(r) => (resp::SUBSCRIPTION_NOT_LATEST, r.clone()),
            BrokerError::Unsupported(r) => (resp::SYSTEM_ERROR, r.clone()),
            BrokerError::Storage(e) => storage_code(e),
            BrokerError::System(r) => (resp::SYSTEM_ERROR, r.clone()),
        }
    }
}

/// Storage failures: a message the store refuses is MESSAGE_ILLEGAL; a store that cannot
/// take writes (disk full, closed, failed write) is SERVICE_NOT_AVAILABLE, which producers
/// retry on another broker (spec §2.1); anything else is SYSTEM_ERROR.
fn storage_code(e: &StorageError) -> (i32, String) {
    match e {
        StorageError::Invalid { .. } => (resp::MESSAGE_ILLEGAL, e.to_string()),
        StorageError::Closed => (
            resp::SERVICE_NOT_AVAILABLE,
            "service not available now: the store is shut down".to_owned(),
        ),
        _ if e.is_disk_full() => (
            resp::SERVICE_NOT_AVAILABLE,
            format!("service not available now: {e}"),
        ),
        StorageError::Broken { .. }
        | StorageError::WriteFailed { .. }
        | StorageError::Io { .. } => (
            resp::SERVICE_NOT_AVAILABLE,
            format!("service not available now: storage failed: {e}"),
        ),
        _ => (resp::SYSTEM_ERROR, e.to_string()),
    }
}

/// The response to `request` for `err`.
pub fn error_response(request: &Command, err: &BrokerError) -> Command {
    let (code, remark) = err.code_and_remark();
    Command::response_to(request, code).with_remark(remark)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let req = Command::request(310);
        let r = error_response(&req, &BrokerError::TopicNotExist("T".into()));
        assert_eq!(r.code, resp::TOPIC_NOT_EXIST);
        assert!(r.remark.unwrap().contains("topic[T]"));
        let full = StorageError::DiskFull {
            used_ratio: 0.95,
            limit_ratio: 0.9,
        };
        let (code, remark) = BrokerError::Storage(full).code_and_remark();
        assert_eq!(code, resp::SERVICE_NOT_AVAILABLE);
        assert!(remark.contains("disk full"), "{remark}");
        let (code, _) =
            BrokerError::Storage(StorageError::Invalid { reason: "x".into() }).code_and_remark();
        assert_eq!(code, resp::MESSAGE_ILLEGAL);
        let (code, remark) =
            BrokerError::Header(FieldError::Missing { key: "topic" }).code_and_remark();
        assert_eq!(code, resp::SYSTEM_ERROR);
        assert!(remark.contains("topic"));
    }
}
