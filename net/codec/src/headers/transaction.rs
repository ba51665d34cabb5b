//! Transaction headers: END_TRANSACTION (37, C→B) and CHECK_TRANSACTION_STATE (39, B→C),
//! both oneway (spec §3.10).

/// Values of [`EndTransactionRequestHeader::commit_or_rollback`]: the MessageSysFlag
/// transaction bits (`type << 2`).
pub mod commit_or_rollback {
    /// The producer does not know yet; wait for a check-back.
    pub const UNKNOWN: i32 = 0;
    /// `0x2 << 2`.
    pub const COMMIT: i32 = 8;
    /// `0x3 << 2`.
    pub const ROLLBACK: i32 = 12;
}

crate::ext_header! {
    /// END_TRANSACTION (37): the producer resolves a half message.
    pub struct EndTransactionRequestHeader {
        /// Must equal the half message's PGROUP property.
        producer_group: req String = "producerGroup",
        /// Half message's queue offset (the send response's `queueOffset`).
        tran_state_table_offset: req i64 = "tranStateTableOffset",
        /// Half message's physical offset.
        commit_log_offset: req i64 = "commitLogOffset",
        /// [`commit_or_rollback`] value.
        commit_or_rollback: req i32 = "commitOrRollback",
        from_transaction_check: opt bool = "fromTransactionCheck",
        /// The client msgId (UNIQ_KEY).
        msg_id: req String = "msgId",
        transaction_id: opt String = "transactionId",
        topic: opt String = "topic",
    }
}

crate::ext_header! {
    /// CHECK_TRANSACTION_STATE (39): the broker asks one producer of the group for a verdict.
    pub struct CheckTransactionStateRequestHeader {
        /// The real topic.
        topic: opt String = "topic",
        tran_state_table_offset: req i64 = "tranStateTableOffset",
        commit_log_offset: req i64 = "commitLogOffset",
        /// UNIQ_KEY.
        msg_id: opt String = "msgId",
        /// UNIQ_KEY.
        transaction_id: opt String = "transactionId",
        offset_msg_id: opt String = "offsetMsgId",
        /// 5.x; the client echoes it.
        broker_name: opt String = "bname",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ext;
    use crate::typed::{FieldError, Header};

    #[test]
    fn end_transaction_from_a_check_back() {
        let e = ext(&[
            ("producerGroup", "tx-group"),
            ("tranStateTableOffset", "12"),
            ("commitLogOffset", "40960"),
            ("commitOrRollback", "8"),
            ("fromTransactionCheck", "true"),
            ("msgId", "7F00000100002A9F0000000000000001"),
            ("transactionId", "7F00000100002A9F0000000000000001"),
            ("topic", "TopicTest"),
            ("oway", "true"),
        ]);
        let h = EndTransactionRequestHeader::decode(&e).unwrap();
        assert_eq!(h.commit_or_rollback, commit_or_rollback::COMMIT);
        assert_eq!(h.commit_log_offset, 40_960);
        assert_eq!(h.from_transaction_check, Some(true));
        assert_eq!(EndTransactionRequestHeader::decode(&h.to_ext()), Ok(h));
    }

    #[test]
    fn end_transaction_errors() {
        let mut e = ext(&[
            ("producerGroup", "g"),
            ("tranStateTableOffset", "1"),
            ("commitLogOffset", "2"),
            ("commitOrRollback", "12"),
            ("msgId", "m"),
        ]);
        let h = EndTransactionRequestHeader::decode(&e).unwrap();
        assert_eq!(h.commit_or_rollback, commit_or_rollback::ROLLBACK);
        assert_eq!(h.to_ext(), e);
        e.insert("commitOrRollback", "COMMIT");
        assert!(matches!(
            EndTransactionRequestHeader::decode(&e),
            Err(FieldError::Malformed {
                key: "commitOrRollback",
                ..
            })
        ));
        e.remove("msgId");
        e.insert("commitOrRollback", "0");
        assert_eq!(
            EndTransactionRequestHeader::decode(&e),
            Err(FieldError::Missing { key: "msgId" })
        );
    }

    #[test]
    fn check_transaction_state_round_trip() {
        let h = CheckTransactionStateRequestHeader {
            topic: Some("TopicTest".into()),
            tran_state_table_offset: 3,
            commit_log_offset: 8192,
            msg_id: Some("u".into()),
            transaction_id: Some("u".into()),
            offset_msg_id: Some("0A00000100002A9F0000000000002000".into()),
            broker_name: Some("broker-a".into()),
        };
        let e = h.to_ext();
        assert_eq!(e.get("bname"), Some("broker-a"));
        assert_eq!(CheckTransactionStateRequestHeader::decode(&e), Ok(h));
        let minimal = ext(&[("tranStateTableOffset", "0"), ("commitLogOffset", "0")]);
        assert!(CheckTransactionStateRequestHeader::decode(&minimal).is_ok());
        assert_eq!(
            CheckTransactionStateRequestHeader::decode(&ext(&[("commitLogOffset", "0")])),
            Err(FieldError::Missing {
                key: "tranStateTableOffset"
            })
        );
    }
}
