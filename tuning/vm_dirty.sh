#!/usr/bin/env bash
# Dirty page writeback: start background writeback early so an async-flush broker never hits
# the synchronous dirty_ratio throttle, which stalls appends for hundreds of milliseconds.
. "$(dirname "$0")/lib.sh"
sysctl_knob vm.dirty_background_ratio 5 eq
sysctl_knob vm.dirty_ratio 40 eq
