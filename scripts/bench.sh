#!/usr/bin/env bash
# Run every benchmark and print one table: each figure, its target, met or
# not, under the CPU it was measured on (model, cores, SHA-NI, AVX-512).
#
#   scripts/bench.sh            full sizes (the README's performance figures)
#   scripts/bench.sh --quick    reduced sizes, one turn each: a few minutes
#   scripts/bench.sh --only evaluate,report    some benchmarks only
#
# Run as root on Linux, it also verifies package (b) with io_uring switched
# off (kernel.io_uring_disabled=2 for that one benchmark, restored after), as
# in a container whose seccomp profile refuses it; its figures are named
# package.b_no_io_uring.*. On a CPU with SHA-NI it runs the package benchmark
# again with SHA-NI switched off (AUDITPACK_SHA_NI=off, and OpenSSL's masked
# for bagit-python and the floor), which is how a CPU without it hashes; its
# figures are named package.a_no_sha_ni.* and package.b_no_sha_ni.*.
#
# The benchmarks keep their human output (saved under target/bench-logs/) and
# print one tab-separated `@figure` line per figure (benches/common/mod.rs),
# which this script collects. Ratios against bagit-python and two-thread
# `sha2` are measured in the same run as the figure they judge. Timings on a
# busy machine are noise: take the README's figures from a quiet one.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
only="evaluate,report,package,package_no_io_uring,package_no_sha_ni,m365_collect,fleet,trends,store"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --only) only="$2"; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

flag() { grep -qw "$1" /proc/cpuinfo 2>/dev/null && echo yes || echo no; }
cpu=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
cores=$(nproc 2>/dev/null || echo '?')
sha_ni=$(flag sha_ni)
avx512=$(flag avx512f)
avx2=$(flag avx2)

logs=target/bench-logs
mkdir -p "$logs"
figures="$logs/figures.tsv"
: > "$figures"

if [ "$quick" -eq 1 ]; then
  scale=0.1
  package_env=(AUDITPACK_BENCH_SCALE=0.05 AUDITPACK_BENCH_RUNS=1)
  collect_args=(--users 10000 --devices 3000 --latency-ms 20)
  fleet_env=(AUDITPACK_BENCH_SCALE=$scale)
else
  scale=1
  package_env=()
  collect_args=()
  fleet_env=()
fi

echo "building the benchmarks (release)..." >&2
cargo bench --locked --no-run >"$logs/build.log" 2>&1 || { cat "$logs/build.log" >&2; exit 2; }

failed=()
# A sed expression run over the figure lines of the next benchmark.
rename=""
run() {
  local name=$1; shift
  case ",$only," in *",$name,"*) ;; *) return 0 ;; esac
  echo "running $name..." >&2
  # Write back what the build or the benchmark before left in the page
  # cache (a release build leaves about 1 GB), which the kernel would
  # otherwise flush within 30 s (vm.dirty_expire_centisecs), in the middle
  # of whatever is being measured then.
  sync
  local start=$SECONDS
  if env "$@" >"$logs/$name.log" 2>&1; then
    grep -P '^@figure\t' "$logs/$name.log" | cut -f2- | sed "$rename" >>"$figures" || true
  else
    failed+=("$name")
    echo "  $name failed; its output is in $logs/$name.log" >&2
  fi
  echo "  $name: $((SECONDS - start)) s" >&2
}

run evaluate AUDITPACK_BENCH_SCALE=$scale cargo bench --locked --bench evaluate
run report AUDITPACK_BENCH_SCALE=$scale cargo bench --locked --bench report
run package "${package_env[@]}" cargo bench --locked --bench package
uring_switch=/proc/sys/kernel/io_uring_disabled
if [[ ",$only," == *,package_no_io_uring,* ]] && [ -w "$uring_switch" ] &&
  [ "$(cat "$uring_switch")" = 0 ]; then
  trap 'echo 0 >"$uring_switch"' EXIT
  echo 2 >"$uring_switch"
  rename='s/^package\.b\./package.b_no_io_uring./'
  run package_no_io_uring AUDITPACK_BENCH_CASE=b "${package_env[@]}" cargo bench --locked --bench package
  rename=""
  echo 0 >"$uring_switch"
  trap - EXIT
fi
if [ "$sha_ni" = yes ]; then
  rename='s/^package\.\([ab]\)\./package.\1_no_sha_ni./'
  run package_no_sha_ni AUDITPACK_SHA_NI=off "${package_env[@]}" cargo bench --locked --bench package
  rename=""
fi
run m365_collect cargo bench --locked --bench m365_collect -- "${collect_args[@]}"
run fleet "${fleet_env[@]}" cargo bench --locked --bench fleet
run trends AUDITPACK_BENCH_SCALE=$scale cargo bench --locked --bench trends
run store AUDITPACK_BENCH_SCALE=$scale cargo bench --locked --bench store

echo
echo "auditpack benchmarks, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (modified)')"
echo "CPU: ${cpu:-unknown}, $cores cores; SHA-NI: $sha_ni; AVX-512: $avx512; AVX2: $avx2"
if [ "$quick" -eq 1 ]; then
  echo "QUICK run: reduced sizes (evaluate/report x$scale with time and size targets scaled alike, package x0.05 one turn, collection 10k users); not for the README"
fi
echo
awk -F'\t' '
  BEGIN { printf "%-50s %12s %-4s %10s  %s\n", "figure", "value", "", "target", "verdict"; met = 0; judged = 0 }
  {
    printf "%-50s %12s %-4s %10s  %s\n", $1, $2, $3, $4, $5
    if ($5 == "met") { met++; judged++ } else if ($5 == "missed") { judged++ }
  }
  END { printf "\n%d of %d targets met\n", met, judged }
' "$figures"
if [ ${#failed[@]} -gt 0 ]; then
  echo "benchmarks that failed: ${failed[*]} (logs in $logs/)"
  exit 1
fi
