#!/usr/bin/env bash
# kernel.io_uring_disabled must be 0: ringmq's shards each drive their own io_uring.
. "$(dirname "$0")/lib.sh"
sysctl_knob kernel.io_uring_disabled 0 eq
