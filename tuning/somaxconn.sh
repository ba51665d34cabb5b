#!/usr/bin/env bash
# Accept backlog: bursts of client reconnects (every producer and consumer reconnects after a
# broker restart) overflow the default backlog and show up as SYN retries of 1 s or more.
. "$(dirname "$0")/lib.sh"
sysctl_knob net.core.somaxconn 4096 ge
