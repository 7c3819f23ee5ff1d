"""Benchmark harnesses behind ``campusgate bench …``: each prints one JSON object and runs the
baseline it compares against in the same process, reporting ratios beside absolute times."""
