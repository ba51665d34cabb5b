#!/usr/bin/env bash
# Runs every knob script with the same verb (default: check, which changes nothing).
cd "$(dirname "$0")"
for s in io_uring.sh somaxconn.sh tcp_buffers.sh vm_dirty.sh thp.sh cpu_governor.sh block_scheduler.sh memlock.sh; do
  bash "$s" "${1:-check}" || echo "$s: failed"
done
