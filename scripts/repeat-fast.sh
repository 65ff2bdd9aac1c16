#!/usr/bin/env bash
# Run the fast part of the suite N times (default 10) in a shuffled order; stop at the first red run.
# The fast part: everything but the model-heavy suites (agreement cross product, live accuracy,
# throughput, runner contract on real networks), which a warm cache makes quick but not instant.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
fast=(suites/test_baselines.py suites/test_architecture.py suites/test_comparator.py suites/test_bad_inputs.py
      suites/test_fuzz_parsers.py suites/test_metrics.py suites/test_datasets.py suites/test_results.py
      suites/test_vendor_cli.py suites/test_vendor_adapters.py suites/test_report.py suites/test_fault_matrix.py
      suites/test_preprocess_parity.py suites/test_preprocess_properties.py suites/test_preprocess_inputs.py)
for i in $(seq 1 "$runs"); do
    echo "== run $i/$runs"
    python3 -m pytest -m "not npu" -q -p no:cacheprovider --random-order "${fast[@]}" \
        --gate-report "reports/repeat-$i.json" | tail -n 1
done
echo "$runs/$runs runs green"
