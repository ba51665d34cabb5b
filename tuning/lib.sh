# Shared helpers for the tuning scripts. Each script tunes one knob and takes one verb:
#   check   (default) print the current value, the wanted value, and what apply would change
#   apply   change it, saving the old value under $RINGMQ_TUNING_STATE (default /var/lib/ringmq-tuning)
#   revert  restore the saved value
set -euo pipefail
STATE_DIR=${RINGMQ_TUNING_STATE:-/var/lib/ringmq-tuning}
VERB=${1:-check}

save_old() { # name value
  mkdir -p "$STATE_DIR"
  [ -f "$STATE_DIR/$1" ] || printf '%s\n' "$2" >"$STATE_DIR/$1"
}

saved() { # name
  cat "$STATE_DIR/$1" 2>/dev/null || true
}

forget() { rm -f "$STATE_DIR/$1"; }

# sysctl_knob NAME WANTED COMPARE   (COMPARE: eq = must equal, ge = at least)
sysctl_knob() {
  local name=$1 wanted=$2 cmp=$3 key=${1//./_} cur ok=no
  cur=$(sysctl -n "$name" 2>/dev/null || echo "unavailable")
  if [ "$cur" = "unavailable" ]; then echo "$name: not available on this kernel"; return 0; fi
  case $cmp in
    eq) [ "$cur" = "$wanted" ] && ok=yes ;;
    ge) [ "$cur" -ge "$wanted" ] 2>/dev/null && ok=yes ;;
  esac
  case $VERB in
    check)
      if [ $ok = yes ]; then echo "$name = $cur (ok, wanted $wanted)";
      else echo "$name = $cur -> apply would set $wanted"; fi ;;
    apply)
      if [ $ok = yes ]; then echo "$name = $cur already"; return 0; fi
      save_old "$key" "$cur"; sysctl -q -w "$name=$wanted"; echo "$name: $cur -> $wanted" ;;
    revert)
      local old; old=$(saved "$key")
      if [ -z "$old" ]; then echo "$name: nothing saved to revert"; return 0; fi
      sysctl -q -w "$name=$old"; forget "$key"; echo "$name: restored $old" ;;
    *) echo "usage: $0 [check|apply|revert]" >&2; return 2 ;;
  esac
}
