#!/usr/bin/env bash
# Regenerates the measured rows shipped in leaderboard/submissions/: runs every model that runs
# offline on the embedded set (all metrics, offline judge, latency per resolution), checks each run
# and writes its results-only submission file. Rerunning resumes the run folders under $RUNS.
#
#   bash scripts/make-leaderboard.sh            # identity, ours, and 3dlut/rsfnet when installed
#   MODELS="ours" bash scripts/make-leaderboard.sh
#
# CPU is enough (a few minutes per model on 2 cores). Then `iretouch-bench leaderboard` shows them.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-runs/leaderboard}"
BY="${BY:-iretouch-bench maintainers (scripts/make-leaderboard.sh)}"
bench() { python -m iretouch_bench "$@"; }
if [ -z "${MODELS:-}" ]; then
    MODELS="identity ours"
    for m in 3dlut rsfnet; do  # the offline baselines, once their adapters are installed
        if bench models list | awk '{print $1}' | grep -qx "$m"; then MODELS="$MODELS $m"; fi
    done
fi
for m in $MODELS; do
    rc=0
    bench run --model "$m" --latency --quiet --out "$RUNS/$m" || rc=$?
    if [ "$rc" -ne 0 ]; then echo "make-leaderboard: run of $m exited $rc; not submitted" >&2; exit "$rc"; fi
    bench submit "$RUNS/$m" --generated-by "$BY" --scored-by "$BY" --out leaderboard/submissions
done
bench leaderboard --with-published
