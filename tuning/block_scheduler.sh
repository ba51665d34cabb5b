#!/usr/bin/env bash
# Block devices: NVMe/virtio queues want scheduler "none" (the device orders requests
# itself) and nomerges=2 (skip merge attempts) so an fdatasync is not queued behind merging.
# Set RINGMQ_DEVICES="nvme0n1 vda" to limit the devices touched.
. "$(dirname "$0")/lib.sh"
devs=${RINGMQ_DEVICES:-$(ls /sys/block | grep -E '^(nvme|vd|sd|xvd)' || true)}
for d in $devs; do
  s=/sys/block/$d/queue/scheduler; m=/sys/block/$d/queue/nomerges
  [ -w "$s" ] || { echo "$d: scheduler not writable"; continue; }
  cur=$(sed 's/.*\[\(.*\)\].*/\1/' "$s"); curm=$(cat "$m")
  case $VERB in
    check) echo "$d: scheduler=$cur nomerges=$curm (wanted none, 2)" ;;
    apply) save_old "sched_$d" "$cur"; save_old "nomerges_$d" "$curm"
           echo none >"$s" 2>/dev/null || echo "$d: scheduler none unsupported"
           echo 2 >"$m"; echo "$d: scheduler=$(sed 's/.*\[\(.*\)\].*/\1/' "$s") nomerges=2" ;;
    revert) o=$(saved "sched_$d"); om=$(saved "nomerges_$d")
            [ -z "$o" ] || echo "$o" >"$s"; [ -z "$om" ] || echo "$om" >"$m"
            forget "sched_$d"; forget "nomerges_$d"; echo "$d: restored" ;;
    *) echo "usage: $0 [check|apply|revert]" >&2; exit 2 ;;
  esac
done
