#!/usr/bin/env bash
# Socket buffer ceilings: large pull responses (zero-copy sendfile of up to 256 KiB per pull)
# and batched sends benefit from 16 MiB maximum buffers.
. "$(dirname "$0")/lib.sh"
sysctl_knob net.core.rmem_max 16777216 ge
sysctl_knob net.core.wmem_max 16777216 ge
