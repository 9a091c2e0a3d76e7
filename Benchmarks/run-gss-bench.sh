#!/usr/bin/env bash
# GSS benchmark, Swift against C in the same run: compiles Benchmarks/c/gss_bench.c with gcc,
# builds migauth-bench in release mode and runs `migauth-bench gss`, which starts its own
# throwaway realm (TestRealm) on 127.0.0.1 and runs the C loop with that realm's environment.
# Usage: Benchmarks/run-gss-bench.sh [--rounds N] [--markdown FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="${SCRATCH_PATH:-.build-gss}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
gcc -O2 -Wall -Wextra -o "$out/gss_bench" Benchmarks/c/gss_bench.c -lgssapi_krb5 -lkrb5 -lpthread
swift build -c release --scratch-path "$scratch" --product migauth-bench
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p')"
"$scratch/release/migauth-bench" gss --c-binary "$out/gss_bench" "$@"
