//! The append path: validate, place, encode straight into the write buffer, index, then wait
//! for the group commit to acknowledge. Everything before the first await is synchronous, so
//! the appends of one task (a batch) get consecutive offsets.

use std::future::poll_fn;
use std::task::Poll;

use ringmq_codec::message::record::encode_blank;

use super::{Inner, State, Store};
use crate::disk::Disk;
use crate::error::StorageError;
use crate::flush::Event;
use crate::index::{IndexEntry, key_hash};
use crate::log::record::{self, IndexKeys, Placement};
use crate::log::segment::{BLANK_MIN_LEN, place};
use crate::queue::{ConsumeQueue, CqEntry, QueueIds, Topics};
use crate::types::{AppendRequest, AppendResult, Durability, PhysOffset, QueueOffset};

/// A topic name must be usable as a directory name.
fn check_topic(topic: &str) -> Result<(), StorageError> {
    let ok = !topic.is_empty()
        && topic != "."
        && topic != ".."
        && topic.len() <= i16::MAX as usize
        && !topic.bytes().any(|b| b == b'/' || b == 0);
    if ok {
        Ok(())
    } else {
        Err(StorageError::invalid(format!(
            "topic {topic:?} cannot be stored"
        )))
    }
}

impl<D: Disk> Inner<D> {
    /// Refusals that apply before anything is encoded.
    fn admit(&self, st: &State<D::File>) -> Result<(), StorageError> {
        if self.closing.get() || self.closed.get() {
            return Err(StorageError::Closed);
        }
        if let Some(f) = &st.failure {
            return Err(StorageError::Broken {
                since: Box::new(f.cause.share()),
            });
        }
        if let Some((used_ratio, limit_ratio)) = st.disk_full {
            return Err(StorageError::DiskFull {
                used_ratio,
                limit_ratio,
            });
        }
        Ok(())
    }

    /// Waits until the write buffer has room (it holds at most two batches).
    async fn wait_for_room(&self) -> Result<(), StorageError> {
        let limit = (2 * self.cfg.flush.batch_bytes_max) as usize;
        poll_fn(|cx| {
            let st = self.st.borrow();
            if let Err(e) = self.admit(&st) {
                return Poll::Ready(Err(e));
            }
            if st.log.buf.len() < limit {
                return Poll::Ready(Ok(()));
            }
            self.room.register(cx.waker());
            self.kick.kick();
            Poll::Pending
        })
        .await
    }

    /// Encodes one record into the write buffer and indexes it. Returns its end offset.
    fn encode_one(
        &self,
        st: &mut State<D::File>,
        req: &AppendRequest<'_>,
        now_ms: i64,
    ) -> Result<(u64, AppendResult), StorageError> {
        check_topic(req.topic)?;
        if req.body.len() > self.cfg.max_message_size {
            return Err(StorageError::invalid(format!(
                "body of {} bytes exceeds maxMessageSize {}",
                req.body.len(),
                self.cfg.max_message_size
            )));
        }
        let found = IndexKeys::of(req.properties);
        let props = found.stored(req.properties);
        let len = record::encoded_len(req, &props, self.cfg.store_host)
            .map_err(|e| StorageError::invalid(e.to_string()))? as u64;
        if len + BLANK_MIN_LEN > self.cfg.segment_size {
            return Err(StorageError::invalid(format!(
                "record of {len} bytes exceeds the segment size"
            )));
        }
        let (blank, phys) = place(st.log.appended(), len, self.cfg.segment_size);
        let queue = queue_mut(&mut st.topics, req.topic, req.queue_id);
        let queue_offset = queue.next_offset();
        let at = Placement {
            phys_offset: phys,
            queue_offset,
            store_timestamp: now_ms,
            store_host: self.cfg.store_host,
        };
        if blank > 0 {
            encode_blank(blank as usize, &mut st.log.buf);
            st.log.first_ts.insert(phys, now_ms);
        }
        record::encode(req, &props, &at, &mut st.log.buf)
            .map_err(|e| StorageError::invalid(e.to_string()))?;
        queue.push(CqEntry {
            phys,
            size: len as u32,
            tag_code: req.tag_code,
        });
        let topic = queue.topic.clone();
        let seg = phys - phys % self.cfg.segment_size;
        if st
            .log
            .first_ts
            .last_key_value()
            .is_none_or(|(s, _)| *s < seg)
        {
            st.log.first_ts.insert(seg, now_ms);
        }
        for key in found.iter() {
            st.index.add(
                IndexEntry {
                    key_hash: key_hash(req.topic, key),
                    phys,
                    store_timestamp: now_ms,
                },
                true,
            );
        }
        st.arrivals.push_back((
            topic,
            req.queue_id,
            queue_offset + 1,
            phys + len,
            req.tag_code,
        ));
        let result = AppendResult {
            phys_offset: PhysOffset(phys),
            queue_offset: QueueOffset(queue_offset),
            store_timestamp: now_ms,
            size: len as u32,
        };
        Ok((phys + len, result))
    }

    /// Waits until the bytes below `end` are acknowledged at `durability`, or fails.
    async fn wait_ack(
        &self,
        epoch: u64,
        end: u64,
        durability: Durability,
    ) -> Result<(), StorageError> {
        poll_fn(|cx| {
            let st = self.st.borrow();
            let sync = durability == Durability::Synced;
            if epoch != self.generation.get() {
                let (w, d) = self.prev_marks.get();
                let done = if sync { end <= d } else { end <= w };
                return Poll::Ready(if done {
                    Ok(())
                } else {
                    Err(StorageError::WriteFailed {
                        op: "append",
                        phys_offset: end,
                        kind: std::io::ErrorKind::Other,
                        message: "the log was recovered before this append was acknowledged".into(),
                    })
                });
            }
            let mark = if sync {
                st.policy.durable()
            } else {
                st.policy.written()
            };
            if end <= mark {
                return Poll::Ready(Ok(()));
            }
            if let Some(f) = &st.failure {
                let failed_at = if sync { f.durable } else { f.written };
                if end > failed_at {
                    return Poll::Ready(Err(f.cause.share()));
                }
            }
            if self.closed.get() {
                return Poll::Ready(Err(StorageError::Closed));
            }
            let waiters = if sync {
                &self.durable_waiters
            } else {
                &self.written_waiters
            };
            waiters.register(end, cx.waker());
            Poll::Pending
        })
        .await
    }
}

fn queue_mut<'a, F>(
    topics: &'a mut Topics<F>,
    topic: &str,
    queue_id: i32,
) -> &'a mut ConsumeQueue<F> {
    if !topics.contains_key(topic) {
        topics.insert(topic.to_owned(), QueueIds::default());
    }
    let queues = topics
        .get_mut(topic)
        .unwrap_or_else(|| unreachable!("inserted above"));
    queues.get_or_insert_with(queue_id, topic, |name| ConsumeQueue::new(name, queue_id))
}

impl<D: Disk> Store<D> {
    /// Tells the group commit about bytes appended up to `end` (a chunk may start a write at
    /// once) and makes the driver end the turn. The batch is stamped with the driver's last
    /// tick rather than a clock read per append.
    fn appended(&self, epoch: u64, end: u64, wants_sync: bool) {
        let now_us = self.inner.last_tick_us.get();
        let event = Event::Appended {
            end,
            wants_sync,
            now_us,
        };
        super::driver::feed(&self.inner, epoch, event);
        self.inner.kick.kick();
    }

    /// Appends one message. Resolves when the record is written (`Durability::Written`) or
    /// durable (`Durability::Synced`); a failed write or sync fails it with the cause.
    pub async fn append(&self, req: AppendRequest<'_>) -> Result<AppendResult, StorageError> {
        let inner = &*self.inner;
        inner.wait_for_room().await?;
        let (epoch, end, result) = {
            let mut st = inner.st.borrow_mut();
            inner.admit(&st)?;
            let (end, result) = inner.encode_one(&mut st, &req, inner.clock.now_ms())?;
            (inner.generation.get(), end, result)
        };
        let wants_sync = req.durability == Durability::Synced;
        self.appended(epoch, end, wants_sync);
        inner.wait_ack(epoch, end, req.durability).await?;
        Ok(result)
    }

    /// Appends a batch (SEND_BATCH_MESSAGE): consecutive records, consecutive queue offsets
    /// per queue, one acknowledgement for all at the strongest durability asked. All or
    /// nothing is encoded: a request that fails validation rejects the batch.
    pub async fn append_batch(
        &self,
        reqs: &[AppendRequest<'_>],
    ) -> Result<Vec<AppendResult>, StorageError> {
        let inner = &*self.inner;
        inner.wait_for_room().await?;
        for r in reqs {
            check_topic(r.topic)?;
            record::encoded_len(
                r,
                &record::stored_properties(r.properties),
                inner.cfg.store_host,
            )
            .map_err(|e| StorageError::invalid(e.to_string()))?;
            if r.body.len() > inner.cfg.max_message_size {
                return Err(StorageError::invalid("batch entry exceeds maxMessageSize"));
            }
        }
        let durability = if reqs.iter().any(|r| r.durability == Durability::Synced) {
            Durability::Synced
        } else {
            Durability::Written
        };
        let (epoch, end, results) = {
            let mut st = inner.st.borrow_mut();
            inner.admit(&st)?;
            let now = inner.clock.now_ms();
            let mut results = Vec::with_capacity(reqs.len());
            let mut end = st.log.appended();
            for r in reqs {
                let (e, res) = inner.encode_one(&mut st, r, now)?;
                end = e;
                results.push(res);
            }
            (inner.generation.get(), end, results)
        };
        self.appended(epoch, end, durability == Durability::Synced);
        inner.wait_ack(epoch, end, durability).await?;
        Ok(results)
    }
}
