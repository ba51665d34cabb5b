#!/usr/bin/env bash
# Transparent huge pages: "always" causes compaction stalls on the page-cache-heavy broker;
# "madvise" keeps huge pages only where asked for.
. "$(dirname "$0")/lib.sh"
f=/sys/kernel/mm/transparent_hugepage/enabled
[ -r $f ] || { echo "THP: not available"; exit 0; }
cur=$(sed 's/.*\[\(.*\)\].*/\1/' $f)
case $VERB in
  check) [ "$cur" = madvise ] && echo "THP = $cur (ok)" || echo "THP = $cur -> apply would set madvise" ;;
  apply) [ "$cur" = madvise ] && { echo "THP = madvise already"; exit 0; }
         save_old thp "$cur"; echo madvise >$f; echo "THP: $cur -> madvise" ;;
  revert) old=$(saved thp); [ -n "$old" ] || { echo "THP: nothing saved"; exit 0; }
          echo "$old" >$f; forget thp; echo "THP: restored $old" ;;
  *) echo "usage: $0 [check|apply|revert]" >&2; exit 2 ;;
esac
