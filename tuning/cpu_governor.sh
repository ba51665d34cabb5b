#!/usr/bin/env bash
# CPU frequency governor: "performance" avoids ramp-up latency on a shard core that idles
# between bursts (visible as a slow first request after a pause).
. "$(dirname "$0")/lib.sh"
govs=$(ls /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor 2>/dev/null || true)
[ -n "$govs" ] || { echo "cpufreq: not exposed on this machine (VM or fixed frequency)"; exit 0; }
for g in $govs; do
  cpu=$(echo "$g" | sed 's|.*/\(cpu[0-9]*\)/.*|\1|'); cur=$(cat "$g")
  case $VERB in
    check) [ "$cur" = performance ] && echo "$cpu = $cur (ok)" || echo "$cpu = $cur -> apply would set performance" ;;
    apply) [ "$cur" = performance ] || { save_old "gov_$cpu" "$cur"; echo performance >"$g"; echo "$cpu: $cur -> performance"; } ;;
    revert) old=$(saved "gov_$cpu"); [ -z "$old" ] || { echo "$old" >"$g"; forget "gov_$cpu"; echo "$cpu: restored $old"; } ;;
    *) echo "usage: $0 [check|apply|revert]" >&2; exit 2 ;;
  esac
done
