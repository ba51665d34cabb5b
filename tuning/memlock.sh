#!/usr/bin/env bash
# RLIMIT_MEMLOCK: io_uring registered buffers count against it; 64 MiB is plenty for a
# broker's shards. This is a per-process limit: check only; to raise it, set LimitMEMLOCK= in
# the systemd unit or `ulimit -l` in the launching shell.
. "$(dirname "$0")/lib.sh"
cur=$(ulimit -l)
case $VERB in
  check|apply|revert)
    if [ "$cur" = unlimited ] || [ "$cur" -ge 65536 ]; then echo "memlock = $cur KiB (ok)";
    else echo "memlock = $cur KiB -> raise to 65536 with LimitMEMLOCK=64M or ulimit -l 65536 (not changed by this script)"; fi ;;
  *) echo "usage: $0 [check|apply|revert]" >&2; exit 2 ;;
esac
